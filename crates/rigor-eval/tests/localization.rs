//! The localization evaluation on the harness's rows and clones: a row with a `base_commit` is
//! evaluated on that commit of a real git clone, with gold derived from its patch; a row without
//! one uses the directory as it is; the development set loads as localization rows only.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use rigor_eval::dataset::{Purpose, load_dataset, load_dataset_for};
use rigor_eval::localization::{evaluate, summarize};

use rigor_test_support::fixtures::SHOP;

fn write_tree(root: &Path) {
    for (path, text) in SHOP {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const PATCH: &str = "--- a/shop/shipping.py\n+++ b/shop/shipping.py\n@@ -2,3 +2,3 @@\n     def cost_for_weight(self, kilograms):\n         \"\"\"Shipping cost by parcel weight.\"\"\"\n-        return 4.5 + kilograms * 0.8\n+        return 4.5 + max(kilograms, 0) * 0.8\n";
const ISSUE: &str = "ShippingRate.cost_for_weight returns a negative cost for a negative weight";

fn dataset(dir: &Path, rows: &[serde_json::Value]) -> std::path::PathBuf {
    let path = dir.join("rows.jsonl");
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_row_with_a_base_commit_is_evaluated_on_that_commit_with_gold_from_the_patch() {
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("acme__shop");
    write_tree(&repo);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]);
    let base = git(&repo, &["rev-parse", "HEAD"]);
    // A later commit must not leak into the evaluation of the base commit.
    std::fs::remove_file(repo.join("shop/shipping.py")).unwrap();
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "later"]);
    // A localization row: no test patch, no tests.
    let path = dataset(
        repos.path(),
        &[serde_json::json!({
            "instance_id": "acme__shop-1", "repo": "acme/shop", "base_commit": base,
            "problem_statement": ISSUE, "patch": PATCH,
        })],
    );
    let (grading, errors) = load_dataset(&path).unwrap();
    assert!(grading.is_empty() && errors[0].message.contains("test_patch"), "{errors:?}");
    let (rows, errors) = load_dataset_for(&path, Purpose::Localization).unwrap();
    assert!(errors.is_empty(), "{errors:?}");

    let result = evaluate(&rows[0], repos.path());
    assert_eq!(result.error, None);
    assert_eq!(result.gold.functions.iter().collect::<Vec<_>>(), ["shop/shipping.py:ShippingRate.cost_for_weight"]);
    assert_eq!(result.gold.modules.iter().collect::<Vec<_>>(), ["shop/shipping.py:ShippingRate"]);
    assert_eq!((result.file_rank, result.module_rank, result.function_rank), (Some(1), Some(1), Some(1)));
    let report = summarize(vec![result]);
    assert_eq!(report.function.at, [1.0, 1.0, 1.0, 1.0]);
}

#[test]
fn a_row_without_a_base_commit_uses_a_plain_directory_and_one_with_a_commit_needs_git() {
    let repos = tempfile::tempdir().unwrap();
    // An unpacked source tree, no git, under the name-only layout.
    write_tree(&repos.path().join("shop"));
    let row = |id: &str, base: &str| {
        serde_json::json!({
            "instance_id": id, "repo": "acme/shop", "base_commit": base, "problem_statement": ISSUE,
            "gold_files": ["shop/shipping.py"], "gold_functions": ["shop/shipping.py:ShippingRate.cost_for_weight"],
        })
    };
    let path = dataset(repos.path(), &[row("as-it-is", ""), row("at-a-commit", "0123abc")]);
    let (rows, errors) = load_dataset_for(&path, Purpose::Localization).unwrap();
    assert!(errors.is_empty(), "{errors:?}");

    let as_it_is = evaluate(&rows[0], repos.path());
    assert_eq!(as_it_is.error, None);
    assert_eq!((as_it_is.file_rank, as_it_is.module_rank, as_it_is.function_rank), (Some(1), None, Some(1)));

    let at_commit = evaluate(&rows[1], repos.path());
    let error = at_commit.error.clone().unwrap();
    assert!(error.contains("not a git repository") && error.contains("git clone"), "{error}");
    let report = summarize(vec![as_it_is, at_commit]);
    // The failed instance counts as a miss at every level it could have had gold.
    assert_eq!((report.file.n, report.function.n, report.module.n), (2, 2, 1));
    assert_eq!(report.file.at, [0.5; 4]);
}

#[test]
fn the_development_set_loads_as_localization_rows_only() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rigor-graph/tests/data/dev-localize.jsonl");
    let (rows, errors) = load_dataset_for(&path, Purpose::Localization).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r.base_commit.is_empty() && !r.gold_files.is_empty()));
    let (graded, errors) = load_dataset(&path).unwrap();
    assert!(graded.is_empty());
    assert_eq!(errors.len(), 12);
    assert!(errors.iter().all(|e| e.message == "field base_commit is empty"), "{errors:?}");
}
