//! Graph extraction per language: small fixtures with their exact nodes and edges, including an
//! import that resolves to a file of the repository and one that does not (kept as unresolved).

mod common;
use common::*;

#[test]
fn python_graph() {
    let (_dir, g) = graph_of(&[
        (
            "pkg/__init__.py",
            r#"from .models import Model
"#,
        ),
        (
            "pkg/models.py",
            r#"import os
from pkg.util import helper, missing_name


class Base:
    """A base model."""

    def save(self):
        return helper(self)


@decorator
class Model(Base):
    def save(self, force=False):
        """Save it."""
        super().save()
        self.validate()
        os.path.join("a", "b")
        return Helper().run()

    def validate(self):
        def inner():
            return 1
        return inner()
"#,
        ),
        (
            "pkg/util.py",
            r#"import numpy as np


def helper(x):
    return np.array(x)


class Helper:
    def run(self):
        return helper(1)
"#,
        ),
    ]);
    let expected = "\
class pkg/models.py:Base\n\
class pkg/models.py:Model\n\
class pkg/util.py:Helper\n\
function pkg/models.py:Model.validate.inner\n\
function pkg/util.py:helper\n\
method pkg/models.py:Base.save\n\
method pkg/models.py:Model.save\n\
method pkg/models.py:Model.validate\n\
method pkg/util.py:Helper.run\n\
imports pkg/__init__.py -> pkg/models.py:Model\n\
imports pkg/models.py -> pkg/util.py\n\
imports pkg/models.py -> pkg/util.py:helper\n\
unresolved imports pkg/models.py: os\n\
unresolved imports pkg/util.py: numpy\n\
invokes pkg/models.py:Base.save -> pkg/util.py:helper\n\
invokes pkg/models.py:Model.save -> pkg/models.py:Base.save\n\
invokes pkg/models.py:Model.save -> pkg/models.py:Model.validate\n\
invokes pkg/models.py:Model.save -> pkg/util.py:Helper\n\
invokes pkg/models.py:Model.save -> pkg/util.py:Helper.run\n\
invokes pkg/models.py:Model.validate -> pkg/models.py:Model.validate.inner\n\
invokes pkg/util.py:Helper.run -> pkg/util.py:helper\n\
unresolved invokes pkg/models.py:Model.save: os.path.join\n\
unresolved invokes pkg/models.py:Model.save: super\n\
unresolved invokes pkg/util.py:helper: np.array\n\
inherits pkg/models.py:Model -> pkg/models.py:Base\n\
";
    assert_eq!(dump(&g), expected);
}

#[test]
fn rust_graph() {
    let (_dir, g) = graph_of(&[
        (
            "Cargo.toml",
            r#"[package]
name = "demo-app"
version = "0.1.0"
"#,
        ),
        (
            "src/config.rs",
            r#"/// Settings.
#[derive(Debug)]
pub struct Config {
    pub port: u16,
}

pub trait Validate {
    fn validate(&self) -> bool;
}

impl Config {
    pub fn new() -> Self {
        Config { port: default_port() }
    }
}

impl Validate for Config {
    fn validate(&self) -> bool {
        self.port > 0
    }
}

fn default_port() -> u16 {
    8080
}
"#,
        ),
        (
            "src/lib.rs",
            r#"//! Demo.
mod config;
pub mod net;

use crate::config::Config;
use serde::Deserialize;

/// Starts everything.
pub fn start() -> Config {
    let c = Config::new();
    net::client::connect(&c);
    c.validate();
    c
}
"#,
        ),
        (
            "src/net/client.rs",
            r#"use super::super::config::Config;

pub fn connect(c: &Config) {
    std::println!("{}", c.port);
}
"#,
        ),
        (
            "src/net/mod.rs",
            r#"pub mod client;
"#,
        ),
    ]);
    let expected = "\
class src/config.rs:Config\n\
class src/config.rs:Validate\n\
function src/config.rs:default_port\n\
function src/lib.rs:start\n\
function src/net/client.rs:connect\n\
method src/config.rs:Config.new\n\
method src/config.rs:Config.validate\n\
method src/config.rs:Validate.validate\n\
imports src/lib.rs -> src/config.rs\n\
imports src/lib.rs -> src/config.rs:Config\n\
imports src/lib.rs -> src/net/mod.rs\n\
imports src/net/client.rs -> src/config.rs:Config\n\
imports src/net/mod.rs -> src/net/client.rs\n\
unresolved imports src/lib.rs: serde::Deserialize\n\
invokes src/config.rs:Config.new -> src/config.rs:default_port\n\
invokes src/lib.rs:start -> src/config.rs:Config.new\n\
invokes src/lib.rs:start -> src/net/client.rs:connect\n\
unresolved invokes src/lib.rs:start: c.validate\n\
inherits src/config.rs:Config -> src/config.rs:Validate\n\
";
    assert_eq!(dump(&g), expected);
}

#[test]
fn javascript_graph() {
    let (_dir, g) = graph_of(&[
        (
            "src/index.js",
            r#"import { parse, missing } from "./lib/parser";
import React from "react";
const util = require("./lib/util");

/** The app. */
export class App extends Base {
  render() {
    return parse(this.text);
  }
}

export const run = (x) => {
  const app = new App();
  util.helper(x);
  return app.render();
};
"#,
        ),
        (
            "src/lib/parser.js",
            r#"export function parse(text) {
  return tokenize(text);
}

function tokenize(t) { return t.split(" "); }

export class Base {}
"#,
        ),
        (
            "src/lib/util.js",
            r#"function helper(x) { return x; }
module.exports = { helper };
"#,
        ),
    ]);
    let expected = "\
class src/index.js:App\n\
class src/lib/parser.js:Base\n\
function src/index.js:run\n\
function src/lib/parser.js:parse\n\
function src/lib/parser.js:tokenize\n\
function src/lib/util.js:helper\n\
method src/index.js:App.render\n\
imports src/index.js -> src/lib/parser.js\n\
imports src/index.js -> src/lib/parser.js:parse\n\
imports src/index.js -> src/lib/util.js\n\
unresolved imports src/index.js: react.default\n\
invokes src/index.js:App.render -> src/lib/parser.js:parse\n\
invokes src/index.js:run -> src/index.js:App\n\
invokes src/index.js:run -> src/index.js:App.render\n\
invokes src/index.js:run -> src/lib/util.js:helper\n\
invokes src/lib/parser.js:parse -> src/lib/parser.js:tokenize\n\
unresolved invokes src/lib/parser.js:tokenize: t.split\n\
inherits src/index.js:App -> src/lib/parser.js:Base\n\
";
    assert_eq!(dump(&g), expected);
}

#[test]
fn typescript_and_tsx_graph() {
    let (_dir, g) = graph_of(&[
        (
            "src/repo.ts",
            r#"export interface Entity { id: number }

export class Repo {
  lookup(name: string): string {
    return normalize(name);
  }
}

export function normalize(s: string): string { return s.trim(); }
"#,
        ),
        (
            "src/service.ts",
            r#"import { Repo, Entity } from "./repo";
import * as path from "path";

export interface Service extends Entity {
  id: number;
}

export class UserService implements Service {
  id = 1;
  constructor(private repo: Repo) {}

  find(name: string): string {
    return this.repo.lookup(name);
  }
}
"#,
        ),
        (
            "src/view.tsx",
            r#"import { UserService } from "./service";

export function View(props: { svc: UserService }) {
  return <div>{props.svc.find("x")}</div>;
}
"#,
        ),
    ]);
    let expected = "\
class src/repo.ts:Entity\n\
class src/repo.ts:Repo\n\
class src/service.ts:Service\n\
class src/service.ts:UserService\n\
function src/repo.ts:normalize\n\
function src/view.tsx:View\n\
method src/repo.ts:Repo.lookup\n\
method src/service.ts:UserService.constructor\n\
method src/service.ts:UserService.find\n\
imports src/service.ts -> src/repo.ts:Entity\n\
imports src/service.ts -> src/repo.ts:Repo\n\
imports src/view.tsx -> src/service.ts:UserService\n\
unresolved imports src/service.ts: path\n\
invokes src/repo.ts:Repo.lookup -> src/repo.ts:normalize\n\
invokes src/service.ts:UserService.find -> src/repo.ts:Repo.lookup\n\
invokes src/view.tsx:View -> src/service.ts:UserService.find\n\
unresolved invokes src/repo.ts:normalize: s.trim\n\
inherits src/service.ts:Service -> src/repo.ts:Entity\n\
inherits src/service.ts:UserService -> src/service.ts:Service\n\
";
    assert_eq!(dump(&g), expected);
}

#[test]
fn go_graph() {
    let (_dir, g) = graph_of(&[
        (
            "go.mod",
            r#"module example.com/demo

go 1.22
"#,
        ),
        (
            "main.go",
            r#"package main

import (
	"fmt"
	"example.com/demo/store"
)

func main() {
	s := store.NewStore()
	s.Put("k")
	fmt.Println(helper())
}

func helper() int { return 1 }
"#,
        ),
        (
            "store/store.go",
            r#"package store

// Store keeps values.
type Store struct {
	Base
	items map[string]bool
}

type Base struct{}

func NewStore() *Store {
	return &Store{items: map[string]bool{}}
}

// Put adds a key.
func (s *Store) Put(k string) {
	s.items[k] = true
	s.log(k)
}

func (s *Store) log(k string) {}
"#,
        ),
    ]);
    let expected = "\
class store/store.go:Base\n\
class store/store.go:Store\n\
function main.go:helper\n\
function main.go:main\n\
function store/store.go:NewStore\n\
method store/store.go:Store.Put\n\
method store/store.go:Store.log\n\
imports main.go -> store\n\
unresolved imports main.go: fmt\n\
invokes main.go:main -> main.go:helper\n\
invokes main.go:main -> store/store.go:NewStore\n\
invokes main.go:main -> store/store.go:Store.Put\n\
invokes store/store.go:Store.Put -> store/store.go:Store.log\n\
unresolved invokes main.go:main: fmt.Println\n\
inherits store/store.go:Store -> store/store.go:Base\n\
";
    assert_eq!(dump(&g), expected);
}

#[test]
fn java_graph() {
    let (_dir, g) = graph_of(&[
        (
            "src/main/java/com/acme/App.java",
            r#"package com.acme;

import com.acme.util.Strings;
import java.util.List;

/** The application. */
public class App extends Base implements Runnable {
    public App() {}

    @Override
    public void run() {
        String s = Strings.trim(" x ");
        helper();
    }

    private void helper() {}
}

class Base {}
"#,
        ),
        (
            "src/main/java/com/acme/util/Strings.java",
            r#"package com.acme.util;

public final class Strings {
    public static String trim(String s) {
        return s.trim();
    }
}
"#,
        ),
    ]);
    let expected = "\
class src/main/java/com/acme/App.java:App\n\
class src/main/java/com/acme/App.java:Base\n\
class src/main/java/com/acme/util/Strings.java:Strings\n\
method src/main/java/com/acme/App.java:App.App\n\
method src/main/java/com/acme/App.java:App.helper\n\
method src/main/java/com/acme/App.java:App.run\n\
method src/main/java/com/acme/util/Strings.java:Strings.trim\n\
imports src/main/java/com/acme/App.java -> src/main/java/com/acme/util/Strings.java:Strings\n\
unresolved imports src/main/java/com/acme/App.java: java.util.List\n\
invokes src/main/java/com/acme/App.java:App.run -> src/main/java/com/acme/App.java:App.helper\n\
invokes src/main/java/com/acme/App.java:App.run -> src/main/java/com/acme/util/Strings.java:Strings.trim\n\
inherits src/main/java/com/acme/App.java:App -> src/main/java/com/acme/App.java:Base\n\
unresolved inherits src/main/java/com/acme/App.java:App: Runnable\n\
";
    assert_eq!(dump(&g), expected);
}

#[test]
fn c_graph() {
    let (_dir, g) = graph_of(&[
        (
            "include/util.h",
            r#"int add(int a, int b);
"#,
        ),
        (
            "main.c",
            r#"#include <stdio.h>
#include "include/util.h"

typedef struct { int x; } Point;

/* Entry point. */
int main(void) {
    printf("%d\n", add(1, 2));
    return 0;
}
"#,
        ),
        (
            "util.c",
            r#"#include "include/util.h"

int add(int a, int b) { return a + b; }
"#,
        ),
    ]);
    let expected = "\
class main.c:Point\n\
function main.c:main\n\
function util.c:add\n\
imports main.c -> include/util.h\n\
imports util.c -> include/util.h\n\
unresolved imports main.c: <stdio.h>\n\
invokes main.c:main -> util.c:add\n\
unresolved invokes main.c:main: printf\n\
";
    assert_eq!(dump(&g), expected);
}

#[test]
fn cpp_graph() {
    let (_dir, g) = graph_of(&[
        (
            "src/shape.cpp",
            r#"#include "shape.hpp"
#include <vector>

namespace geo {
double total(const std::vector<Shape*>& shapes) {
    double t = 0;
    for (auto s : shapes) t += s->area();
    return t;
}
}

void Printer::print(int x) { helper(x); }
static void helper(int x) {}
"#,
        ),
        (
            "src/shape.hpp",
            r#"#pragma once
#include <string>

namespace geo {
class Shape {
public:
    virtual double area() const = 0;
};

class Circle : public Shape {
public:
    double area() const override { return 3.14 * r * r; }
    double r;
};
}
"#,
        ),
    ]);
    let expected = "\
class src/shape.cpp:geo\n\
class src/shape.hpp:geo\n\
class src/shape.hpp:geo.Circle\n\
class src/shape.hpp:geo.Shape\n\
function src/shape.cpp:geo.total\n\
function src/shape.cpp:helper\n\
method src/shape.cpp:Printer.print\n\
method src/shape.hpp:geo.Circle.area\n\
imports src/shape.cpp -> src/shape.hpp\n\
unresolved imports src/shape.cpp: <vector>\n\
unresolved imports src/shape.hpp: <string>\n\
invokes src/shape.cpp:Printer.print -> src/shape.cpp:helper\n\
invokes src/shape.cpp:geo.total -> src/shape.hpp:geo.Circle.area\n\
inherits src/shape.hpp:geo.Circle -> src/shape.hpp:geo.Shape\n\
";
    assert_eq!(dump(&g), expected);
}
