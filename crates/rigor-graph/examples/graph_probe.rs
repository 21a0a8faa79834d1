//! Benchmark probe for `bench/graph.sh`: runs rigor's regex `search` tool once over a directory
//! (`graph_probe search DIR PATTERN`), the way the agent does, so that it can be timed beside
//! ripgrep. Prints the number of result lines on stderr and the tool's output on stdout.
//! `graph_probe profile DIR -` times the extraction stages on one thread (parse, full extract);
//! `graph_probe extract DIR -` only extracts every file once, on one thread, for an instruction
//! count (`valgrind --tool=callgrind`) that the machine's load does not disturb.

use rigor_tools::{Tool, ToolContext};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // SAFETY: first tree-sitter call of the process, before any other thread uses it.
    unsafe { rigor_graph::lang::use_fast_allocator() };
    let args: Vec<String> = std::env::args().collect();
    let (Some(cmd), Some(dir), Some(pattern)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: graph_probe search DIR PATTERN");
        std::process::exit(2);
    };
    if cmd == "extract" {
        for entry in ignore::WalkBuilder::new(dir).build().flatten() {
            if let Some(lang) = rigor_graph::lang::Lang::from_path(entry.path())
                && let Ok(text) = std::fs::read_to_string(entry.path())
            {
                std::hint::black_box(rigor_graph::extract::extract(lang, &text));
            }
        }
        return;
    }
    if cmd == "profile" {
        profile(dir);
        return;
    }
    if cmd != "search" {
        eprintln!("unknown command {cmd}");
        std::process::exit(2);
    }
    let mut ctx = ToolContext::new(dir);
    ctx.max_output_chars = usize::MAX;
    let out =
        rigor_tools::search::SearchTool.run(serde_json::json!({"pattern": pattern, "max_results": 100000}), &ctx).await;
    eprintln!("{} lines", out.content.lines().count());
    print!("{}", out.content);
}

fn profile(dir: &str) {
    let mut files = Vec::new();
    for entry in ignore::WalkBuilder::new(dir).build().flatten() {
        if let Some(lang) = rigor_graph::lang::Lang::from_path(entry.path())
            && let Ok(text) = std::fs::read_to_string(entry.path())
        {
            files.push((lang, text));
        }
    }
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    let t = std::time::Instant::now();
    for (lang, text) in &files {
        let mut p = rigor_graph::lang::parser_for(*lang).unwrap_or_else(tree_sitter_missing);
        let _ = p.parse(text, None);
    }
    let parse = t.elapsed();
    let t = std::time::Instant::now();
    for (lang, text) in &files {
        let _ = rigor_graph::extract::extract(*lang, text);
    }
    let full = t.elapsed();
    let t = std::time::Instant::now();
    for (_, text) in &files {
        rigor_graph::tokenize::for_each_term(text, |_| {});
    }
    let terms = t.elapsed();
    let t = std::time::Instant::now();
    for (lang, text) in &files {
        let mut p = rigor_graph::lang::parser_for(*lang).unwrap_or_else(tree_sitter_missing);
        if let Some(tree) = p.parse(text, None) {
            let mut c = tree.walk();
            let mut n = 0usize;
            loop {
                n += c.node().kind().len();
                if c.goto_first_child() || c.goto_next_sibling() {
                    continue;
                }
                loop {
                    if !c.goto_parent() {
                        break;
                    }
                    if c.goto_next_sibling() {
                        break;
                    }
                }
                if c.node().id() == tree.root_node().id() {
                    break;
                }
            }
            std::hint::black_box(n);
        }
    }
    eprintln!("parse + walk {:?}", t.elapsed());
    eprintln!(
        "{} files, {} MB: parse {:?}, tokenize {:?}, full extract {:?}",
        files.len(),
        bytes / 1_000_000,
        parse,
        terms,
        full
    );
}

fn tree_sitter_missing() -> tree_sitter::Parser {
    std::process::exit(3)
}
