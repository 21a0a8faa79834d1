//! The persisted index: incremental updates after edit, rename and delete; entity details; the
//! editor's syntax check; localization on fixture issues.

mod common;
use common::*;

use rigor_graph::localize::Level;
use rigor_graph::{EdgeKind, Index, Retriever, SyntaxCheck};
use rigor_tools::edit::EditCheck;

use rigor_test_support::fixtures::SHOP;

#[test]
fn entities_carry_spans_signatures_and_docstrings() {
    let (_dir, g) = graph_of(SHOP);
    let n = g.lookup("shop/cart.py:Cart.add_item").unwrap();
    let e = g.entity(n).unwrap();
    assert_eq!((e.start_line, e.end_line), (10, 11));
    assert_eq!(e.signature, "def add_item(self, item, quantity=1)");
    let cart = g.entity(g.lookup("shop/cart.py:Cart").unwrap()).unwrap();
    assert_eq!(cart.doc, "A shopping cart.");
    assert!(edges(&g, EdgeKind::Contains).contains(&"shop/cart.py:Cart -> shop/cart.py:Cart.total".to_string()));
    assert!(edges(&g, EdgeKind::Contains).contains(&"shop -> shop/cart.py".to_string()));
    assert!(edges(&g, EdgeKind::Contains).contains(&". -> shop".to_string()));
}

#[test]
fn reindexing_touches_only_edited_renamed_and_deleted_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), SHOP);
    let mut index = Index::open(dir.path()).unwrap();
    let first = index.update().unwrap();
    assert_eq!((first.added, first.changed, first.removed, first.files), (5, 0, 0, 5));
    assert!(dir.path().join(".rigor/index/index.sqlite").exists());

    // Nothing changed: nothing parsed.
    let mut reopened = Index::open(dir.path()).unwrap();
    assert_eq!(reopened.records().len(), 5, "loaded from disk");
    let same = reopened.update().unwrap();
    assert_eq!((same.added, same.changed, same.removed), (0, 0, 0));

    // Edit one file: one file parsed, and the graph sees the new function.
    std::fs::write(
        dir.path().join("shop/pricing.py"),
        "def apply_discount(amount, coupon):\n    return amount\n\n\ndef clamp_price(amount):\n    return max(amount, 0)\n",
    )
    .unwrap();
    let edit = reopened.update().unwrap();
    assert_eq!((edit.added, edit.changed, edit.removed), (0, 1, 0));
    let g = reopened.graph();
    assert!(g.lookup("shop/pricing.py:clamp_price").is_some());
    assert!(g.lookup("shop/pricing.py:round_price").is_none());
    assert!(edges(&g, EdgeKind::Invokes).contains(&"shop/cart.py:Cart.total -> shop/pricing.py:apply_discount".into()));

    // Touch without change: re-hashed, not parsed.
    let text = std::fs::read(dir.path().join("shop/cart.py")).unwrap();
    std::fs::write(dir.path().join("shop/cart.py"), &text).unwrap();
    let touched = reopened.update().unwrap();
    assert_eq!(touched.changed, 0);

    // Rename: one row removed, one added; the import now fails to resolve and is kept as unresolved.
    std::fs::rename(dir.path().join("shop/pricing.py"), dir.path().join("shop/prices.py")).unwrap();
    let renamed = reopened.update().unwrap();
    assert_eq!((renamed.added, renamed.changed, renamed.removed), (1, 0, 1));
    let g = reopened.graph();
    assert!(g.lookup("shop/prices.py:clamp_price").is_some());
    assert!(unresolved(&g, EdgeKind::Imports).contains(&"shop/cart.py: shop.pricing.apply_discount".into()));

    // Delete.
    std::fs::remove_file(dir.path().join("shop/shipping.py")).unwrap();
    let deleted = reopened.update().unwrap();
    assert_eq!((deleted.removed, deleted.files), (1, 4));
    assert!(reopened.graph().lookup("shop/shipping.py").is_none());

    // The persisted state matches: a fresh open sees four files and needs no parsing.
    let mut again = Index::open(dir.path()).unwrap();
    assert_eq!(again.records().len(), 4);
    assert_eq!(again.update().unwrap().changed, 0);
}

#[test]
fn a_syntax_breaking_edit_is_rejected_with_its_line() {
    let check = SyntaxCheck;
    let good = "def f(x):\n    return x\n";
    let bad = "def f(x):\n    return (x\n\ndef g():\n    pass\n";
    let err = check.check(std::path::Path::new("a.py"), Some(good), bad).unwrap_err();
    assert!(err.contains("syntax error") && err.contains("line "), "{err}");
    assert!(check.check(std::path::Path::new("a.py"), Some(good), "def f(x):\n    return x + 1\n").is_ok());
    // A file that was already broken may be edited; non-code files are not checked.
    assert!(check.check(std::path::Path::new("a.py"), Some(bad), bad).is_ok());
    assert!(check.check(std::path::Path::new("notes.txt"), Some(good), "((((").is_ok());
    assert!(check.check(std::path::Path::new("lib.rs"), None, "fn main( {").is_err());
}

fn top_file(issue: &str) -> String {
    let (_dir, g) = graph_of(SHOP);
    let r = Retriever::new(g);
    r.localize(issue, Level::File, 3)[0].path.clone()
}

#[test]
fn localization_ranks_the_gold_file_first() {
    // A traceback.
    let traceback = "Checkout crashes:\nTraceback (most recent call last):\n  File \"/app/tests/test_cart.py\", line 5, in test_total\n    assert Cart().total() == 0\n  File \"/app/shop/cart.py\", line 15, in total\n    return apply_discount(subtotal, self.coupon)\nAttributeError: 'Cart' object has no attribute 'coupon'";
    assert_eq!(top_file(traceback), "shop/cart.py");
    // A dotted name.
    assert_eq!(top_file("ShippingRate.cost_for_weight is wrong for heavy parcels"), "shop/shipping.py");
    // Only a description.
    assert_eq!(top_file("percentage coupons are applied twice to the amount"), "shop/pricing.py");
    assert_eq!(top_file("reserving units in the warehouse ignores the count"), "shop/inventory.py");
}

#[test]
fn localization_ranks_functions_and_modules() {
    let (_dir, g) = graph_of(SHOP);
    let r = Retriever::new(g);
    let f = r.localize("Cart.total ignores the coupon", Level::Function, 3);
    assert_eq!(f[0].id, "shop/cart.py:Cart.total");
    let m = r.localize("Cart.total ignores the coupon", Level::Module, 3);
    assert_eq!(m[0].id, "shop/cart.py:Cart");
}

#[test]
fn an_update_without_added_or_removed_files_reads_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), SHOP);
    write(dir.path(), &[(".gitignore", "*.log\n"), ("notes.log", "x\n")]);
    let root = dir.path();
    let mut index = Index::open(root).unwrap();
    age_tree(root);
    let first = index.update().unwrap();
    assert!(first.walked, "a first update walks");
    assert_eq!(first.files, 5);
    // Creating `.rigor` changed the root just now: too recent to trust, so one more walk.
    age_tree(root);
    assert!(index.update().unwrap().walked);

    // Nothing changed: the recorded directories are as they were, nothing is walked.
    let mut reopened = Index::open(root).unwrap();
    let same = reopened.update().unwrap();
    assert!(!same.walked, "the recorded scan is trusted after a reopen");
    assert_eq!((same.added, same.changed, same.removed), (0, 0, 0));

    // An edit in place changes no directory: found by stat, still no walk.
    std::fs::write(root.join("shop/pricing.py"), "def clamp_price(amount):\n    return max(amount, 0)\n").unwrap();
    age(&root.join("shop/pricing.py"), 1800);
    let edit = reopened.update().unwrap();
    assert!(!edit.walked);
    assert_eq!((edit.added, edit.changed, edit.removed), (0, 1, 0));
    assert!(reopened.graph().lookup("shop/pricing.py:clamp_price").is_some());

    // A new file changes its directory's mtime: walked, and found.
    std::fs::write(root.join("shop/tax.py"), "def vat(amount):\n    return amount * 0.2\n").unwrap();
    let added = reopened.update().unwrap();
    assert!(added.walked);
    assert_eq!(added.added, 1);
    // That directory was too recent to trust, so the next update walks again; once it is old, not.
    assert!(reopened.update().unwrap().walked);
    age_tree(root);
    assert!(reopened.update().unwrap().walked, "the aged stats differ from the recorded ones");
    assert!(!reopened.update().unwrap().walked);

    // An ignore file edited in place (its directory unchanged): walked, and obeyed.
    std::fs::write(root.join(".gitignore"), "*.log\nshop/inventory.py\n").unwrap();
    age(&root.join(".gitignore"), 600);
    let ignored = reopened.update().unwrap();
    assert!(ignored.walked);
    assert_eq!(ignored.removed, 1);

    // A deletion changes the directory: walked, removed.
    std::fs::remove_file(root.join("shop/shipping.py")).unwrap();
    let deleted = reopened.update().unwrap();
    assert!(deleted.walked);
    assert_eq!((deleted.removed, deleted.files), (1, 4));
}

#[test]
fn a_file_rewritten_within_the_timestamp_granularity_is_not_missed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), SHOP);
    let root = dir.path();
    let path = root.join("shop/pricing.py");
    let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut index = Index::open(root).unwrap();
    index.update().unwrap();
    // Rewritten with the same size in the same clock tick: its stat is the one indexed.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("round_price", "round_total")).unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(stamp).unwrap();
    let update = index.update().unwrap();
    assert_eq!(update.changed, 1, "a recent stat is hashed again, never trusted");
    assert!(index.graph().lookup("shop/pricing.py:round_total").is_some());
}

#[test]
fn an_update_without_a_walk_keeps_the_crate_names_of_the_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        &[
            ("Cargo.toml", "[workspace]\nmembers = [\"a\", \"b\"]\n"),
            ("a/Cargo.toml", "[package]\nname = \"alpha-core\"\n"),
            ("a/src/lib.rs", "pub fn shared() -> u8 {\n    1\n}\n"),
            ("b/Cargo.toml", "[package]\nname = \"beta\"\n"),
            ("b/src/lib.rs", "use alpha_core::shared;\n\npub fn run() -> u8 {\n    shared()\n}\n"),
        ],
    );
    let mut index = Index::open(root).unwrap();
    index.update().unwrap();
    age_tree(root);
    index.update().unwrap();
    let walked = edges(&index.graph(), EdgeKind::Imports);
    assert!(walked.iter().any(|e| e.starts_with("b/src/lib.rs -> a/src/lib.rs")), "{walked:?}");
    let mut reopened = Index::open(root).unwrap();
    assert!(!reopened.update().unwrap().walked);
    assert_eq!(edges(&reopened.graph(), EdgeKind::Imports), walked, "the crate `alpha_core` still resolves");
}

#[test]
fn vendored_code_is_not_indexed_unless_it_is_a_python_package() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        &[
            ("app/main.py", "from app.vendors.models import Seller\n\n\ndef run():\n    return Seller()\n"),
            ("app/vendors/__init__.py", ""),
            ("app/vendors/models.py", "class Seller:\n    pass\n"),
            ("static/js/vendor/jquery.js", "function jQuery(selector) { return selector; }\n"),
            ("third_party/zlib/inflate.c", "int inflate(void) { return 0; }\n"),
            ("vendor/github.com/pkg/errors/errors.go", "package errors\n\nfunc New() {}\n"),
        ],
    );
    let mut index = Index::open(root).unwrap();
    index.update().unwrap();
    age_tree(root);
    index.update().unwrap();
    let files: Vec<&str> = index.records().keys().map(String::as_str).collect();
    assert_eq!(files, ["app/main.py", "app/vendors/__init__.py", "app/vendors/models.py"]);
    assert!(edges(&index.graph(), EdgeKind::Invokes).iter().any(|e| e.contains("app/vendors/models.py:Seller")));

    // A vendor directory that becomes a Python package is indexed by the next update, though
    // no directory that was walked changed.
    let mut reopened = Index::open(root).unwrap();
    assert!(!reopened.update().unwrap().walked);
    write(root, &[("static/js/vendor/__init__.py", "")]);
    let update = reopened.update().unwrap();
    assert!(update.walked, "the missing package marker is watched");
    assert!(reopened.records().contains_key("static/js/vendor/jquery.js"));
}
