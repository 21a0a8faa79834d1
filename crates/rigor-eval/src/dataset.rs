//! Task instances and predictions in the SWE-bench formats.
//!
//! Reads a dataset (JSONL, or a JSON list) of [`Instance`]s and predictions (JSONL, a JSON list, or
//! a JSON object keyed by instance id) of [`Prediction`]s. `FAIL_TO_PASS` / `PASS_TO_PASS` may be
//! JSON strings holding a list (the published files) or lists. A bad row does not stop loading:
//! it becomes a [`RowError`] naming the file, the row and the field, and the other rows load.
//! Which fields a row must have depends on its [`Purpose`]: grading needs the commit and the test
//! patch, localization only the issue and its gold locations (a gold patch, or `gold_files` /
//! `gold_modules` / `gold_functions` labelled by hand).
//! This module does not touch repositories or run anything.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One task instance of a SWE-bench-format dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// `owner__name-number`.
    pub instance_id: String,
    /// `owner/name`.
    pub repo: String,
    /// The commit the task starts from (localization: empty means the directory as it is).
    #[serde(default)]
    pub base_commit: String,
    /// The reference (gold) patch.
    #[serde(default)]
    pub patch: String,
    /// The patch adding or changing the tests that grade the task (required for grading).
    #[serde(default)]
    pub test_patch: String,
    /// The issue text.
    #[serde(default)]
    pub problem_statement: String,
    /// Hints from the issue discussion.
    #[serde(default)]
    pub hints_text: String,
    /// Version of the repository; selects the environment spec.
    #[serde(default)]
    pub version: String,
    /// Tests that fail before the gold patch and pass after it.
    #[serde(rename = "FAIL_TO_PASS", default)]
    pub fail_to_pass: Vec<String>,
    /// Tests that pass before and after.
    #[serde(rename = "PASS_TO_PASS", default)]
    pub pass_to_pass: Vec<String>,
    /// Commit whose dependency files define the environment (defaults to `base_commit`).
    #[serde(default)]
    pub environment_setup_commit: String,
    /// When the issue was created (RFC 3339): the date bound of what an instance's own install
    /// resolves.
    #[serde(default)]
    pub created_at: String,
    /// Newer datasets: the official evaluation script (run with `--eval-script dataset`, and
    /// when no spec exists; see [`crate::prepared::dataset_script`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_script: Option<String>,
    /// Newer datasets: the name of the official log parser (e.g. `parse_log_pydicom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_parser: Option<String>,
    /// Newer datasets: `pass_and_fail` or `fail_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_type: Option<String>,
    /// GitTaskBench-style value of the task to a developer, in USD (for the α-value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_value_usd: Option<f64>,
    /// Localization datasets: gold files, given instead of (or besides) a gold patch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gold_files: Vec<String>,
    /// Localization datasets: gold top-level entities (`path:Class`, `path:function`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gold_modules: Vec<String>,
    /// Localization datasets: gold functions and methods (`path:Class.method`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gold_functions: Vec<String>,
}

/// What a dataset is loaded for; it decides which fields a row must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Running and grading tests (`rigor eval`): `instance_id`, `repo`, `base_commit` and
    /// `test_patch` must be non-empty strings.
    Grading,
    /// Localization (`rigor localize-eval`): `instance_id`, `repo` and `problem_statement` must be
    /// non-empty strings, and the row needs gold locations (a `patch` or `gold_*` lists);
    /// `base_commit` may be empty or absent (the repository directory is used as it is).
    Localization,
}

impl Purpose {
    /// Fields that must be non-empty strings.
    fn required(self) -> &'static [&'static str] {
        match self {
            Purpose::Grading => &["instance_id", "repo", "base_commit", "test_patch"],
            Purpose::Localization => &["instance_id", "repo", "problem_statement"],
        }
    }
}

impl Instance {
    /// The commit that defines the environment.
    pub fn env_commit(&self) -> &str {
        if self.environment_setup_commit.is_empty() { &self.base_commit } else { &self.environment_setup_commit }
    }
}

/// One prediction in the official format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The instance it answers.
    pub instance_id: String,
    /// Who made it; names the log directory.
    pub model_name_or_path: String,
    /// The patch; `None` when the model produced nothing.
    pub model_patch: Option<String>,
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{file}: row {row}{}: {message}", instance_id.as_deref().map(|i| format!(" ({i})")).unwrap_or_default())]
pub struct RowError {
    /// The file.
    pub file: String,
    /// 1-based row (line of a JSONL file, element of a JSON list).
    pub row: usize,
    /// The instance id, when it could be read.
    pub instance_id: Option<String>,
    /// What is wrong, naming the field.
    pub message: String,
}

/// Errors that make a whole file unreadable.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is neither JSONL nor a JSON list/object.
    #[error("{path} is neither JSON Lines nor a JSON list or object: {message}")]
    Format {
        /// The file.
        path: String,
        /// Parser message.
        message: String,
    },
}

/// A 1-based row number and the row, or why it is not JSON.
type Row = (usize, Result<Value, String>);

/// Rows of a JSONL file or a JSON list; a JSON object keyed by id yields its values (1-based rows).
fn rows(path: &Path) -> Result<Vec<Row>, DatasetError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| DatasetError::Io { path: path.display().to_string(), source })?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || (trimmed.starts_with('{') && serde_json::from_str::<Value>(trimmed).is_ok()) {
        // A whole-file JSON document, unless it is a one-line JSONL file holding a single object.
        if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
            return Ok(match value {
                Value::Array(items) => items.into_iter().enumerate().map(|(i, v)| (i + 1, Ok(v))).collect(),
                Value::Object(map) if !map.contains_key("instance_id") => map
                    .into_iter()
                    .enumerate()
                    .map(|(i, (key, mut v))| {
                        if let Value::Object(o) = &mut v {
                            o.entry("instance_id").or_insert(Value::String(key));
                        }
                        (i + 1, Ok(v))
                    })
                    .collect(),
                other => vec![(1, Ok(other))],
            });
        }
    }
    if trimmed.starts_with('[') {
        let err = serde_json::from_str::<Value>(trimmed).err().map(|e| e.to_string()).unwrap_or_default();
        return Err(DatasetError::Format { path: path.display().to_string(), message: err });
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, serde_json::from_str::<Value>(line).map_err(|e| format!("invalid JSON: {e}"))))
        .collect())
}

/// A list of strings, or a JSON string holding one, or nothing: normalised to a list (`what` names
/// the items in the error).
fn string_list(row: &serde_json::Map<String, Value>, field: &str, what: &str) -> Result<Vec<String>, String> {
    let to_list = |v: &Value| -> Result<Vec<String>, String> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).ok_or_else(|| format!("field {field}: items must be strings")))
                .collect(),
            _ => Err(format!("field {field} must be a list of {what} (or a JSON string holding one)")),
        }
    };
    match row.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => {
            let parsed: Value = serde_json::from_str(s).map_err(|e| format!("field {field}: not a JSON list: {e}"))?;
            to_list(&parsed)
        }
        Some(other) => to_list(other),
    }
}

/// Refuses an instance id that is not a plain file name: it names the instance's log directory
/// and worktree, which are removed and re-created (`../x` would reach outside the run).
fn check_instance_id(id: &str) -> Result<(), String> {
    let plain = id.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if plain && !id.starts_with('.') {
        Ok(())
    } else {
        Err(format!(
            "field instance_id {id:?} is not a plain name (letters, digits, `._+-`, not starting with a dot): \
             it names a directory"
        ))
    }
}

fn instance_from(value: Value, purpose: Purpose) -> Result<Instance, String> {
    let Value::Object(mut row) = value else { return Err("a row must be a JSON object".into()) };
    for &field in purpose.required() {
        match row.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) => return Err(format!("field {field} is empty")),
            Some(_) => return Err(format!("field {field} must be a string")),
            None => return Err(format!("missing field {field}")),
        }
    }
    if let Some(Value::String(id)) = row.get("instance_id") {
        check_instance_id(id)?;
    }
    for (field, what) in [
        ("FAIL_TO_PASS", "test names"),
        ("PASS_TO_PASS", "test names"),
        ("gold_files", "paths"),
        ("gold_modules", "locations"),
        ("gold_functions", "locations"),
    ] {
        let list = string_list(&row, field, what)?;
        row.insert(field.into(), serde_json::json!(list));
    }
    for field in [
        "patch",
        "problem_statement",
        "hints_text",
        "version",
        "environment_setup_commit",
        "base_commit",
        "test_patch",
        "created_at",
    ] {
        match row.get(field) {
            Some(Value::Null) => {
                row.remove(field);
            }
            Some(Value::Number(n)) => {
                // versions are sometimes numbers (e.g. 0.6): keep their text
                let text = n.to_string();
                row.insert(field.into(), Value::String(text));
            }
            _ => {}
        }
    }
    let instance: Instance = serde_json::from_value(Value::Object(row)).map_err(|e| e.to_string())?;
    let no_gold = instance.patch.trim().is_empty()
        && instance.gold_files.is_empty()
        && instance.gold_modules.is_empty()
        && instance.gold_functions.is_empty();
    if purpose == Purpose::Localization && no_gold {
        return Err(
            "no gold locations: a localization row needs a patch or gold_files/gold_modules/gold_functions".into()
        );
    }
    Ok(instance)
}

fn id_of(value: &Result<Value, String>) -> Option<String> {
    value.as_ref().ok()?.get("instance_id")?.as_str().map(str::to_owned)
}

/// Loads a dataset for grading: the instances that parsed, and an error for each row that did not.
pub fn load_dataset(path: &Path) -> Result<(Vec<Instance>, Vec<RowError>), DatasetError> {
    load_dataset_for(path, Purpose::Grading)
}

/// Loads a dataset for `purpose`: the instances that have what it needs, and an error for each
/// row that has not (or did not parse).
pub fn load_dataset_for(path: &Path, purpose: Purpose) -> Result<(Vec<Instance>, Vec<RowError>), DatasetError> {
    let mut instances = Vec::new();
    let mut errors = Vec::new();
    for (row, value) in rows(path)? {
        let instance_id = id_of(&value);
        match value.and_then(|v| instance_from(v, purpose)) {
            Ok(instance) => instances.push(instance),
            Err(message) => errors.push(RowError { file: path.display().to_string(), row, instance_id, message }),
        }
    }
    Ok((instances, errors))
}

fn prediction_from(value: Value) -> Result<Prediction, String> {
    let Value::Object(row) = value else { return Err("a row must be a JSON object".into()) };
    let instance_id = match row.get("instance_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("missing or empty field instance_id".into()),
    };
    check_instance_id(&instance_id)?;
    let model = match row.get("model_name_or_path") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) => "unknown".into(),
        _ => return Err("field model_name_or_path must be a string".into()),
    };
    let model_patch = match row.get("model_patch") {
        Some(Value::String(s)) => Some(s.clone()),
        None | Some(Value::Null) => None,
        _ => return Err("field model_patch must be a string or null".into()),
    };
    Ok(Prediction { instance_id, model_name_or_path: model, model_patch })
}

/// Loads predictions: those that parsed, and an error for each row that did not.
pub fn load_predictions(path: &Path) -> Result<(Vec<Prediction>, Vec<RowError>), DatasetError> {
    let mut predictions = Vec::new();
    let mut errors = Vec::new();
    for (row, value) in rows(path)? {
        let instance_id = id_of(&value);
        match value.and_then(prediction_from) {
            Ok(p) => predictions.push(p),
            Err(message) => errors.push(RowError { file: path.display().to_string(), row, instance_id, message }),
        }
    }
    Ok((predictions, errors))
}

/// The name gold predictions are recorded under, as in the official harness.
pub const GOLD_MODEL: &str = "gold";

/// Predictions that are the dataset's own patches (`--predictions gold`).
pub fn gold_predictions(instances: &[Instance]) -> Vec<Prediction> {
    instances
        .iter()
        .map(|i| Prediction {
            instance_id: i.instance_id.clone(),
            model_name_or_path: GOLD_MODEL.into(),
            model_patch: Some(i.patch.clone()),
        })
        .collect()
}

/// Predictions keyed by instance id (a later row for the same id wins, as in the official harness).
pub fn by_instance(predictions: Vec<Prediction>) -> BTreeMap<String, Prediction> {
    predictions.into_iter().map(|p| (p.instance_id.clone(), p)).collect()
}

/// A model name safe as a directory name (`/` becomes `__`, as in the official harness; a name
/// that would still be `.`, `..` or hidden gets a `_` in front).
pub fn model_dir_name(model: &str) -> String {
    let name = model.replace(['/', '\\', '\0'], "__");
    if name.is_empty() || name.starts_with('.') { format!("_{name}") } else { name }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const ROW: &str = r#"{"instance_id":"a__b-1","repo":"a/b","base_commit":"abc","patch":"p","test_patch":"t","version":0.6,"FAIL_TO_PASS":"[\"t1\"]","PASS_TO_PASS":["t2","t3"]}"#;

    #[test]
    fn ids_and_model_names_that_would_leave_the_run_directory_are_refused_or_made_safe() {
        let dir = tempfile::tempdir().unwrap();
        let row = |id: &str| {
            format!(
                r#"{{"instance_id":{id:?},"repo":"a/b","base_commit":"c","test_patch":"t","FAIL_TO_PASS":[],"PASS_TO_PASS":[]}}"#
            )
        };
        let rows = ["../../etc", "a/b-1", ".hidden", "ok__fine-1.2"].map(row).join("\n");
        let (instances, errors) = load_dataset(&write(dir.path(), "d.jsonl", &rows)).unwrap();
        assert_eq!(instances.iter().map(|i| i.instance_id.as_str()).collect::<Vec<_>>(), ["ok__fine-1.2"]);
        assert_eq!(errors.len(), 3);
        assert!(errors[0].message.contains("not a plain name"), "{}", errors[0]);
        let pred = r#"{"instance_id":"..","model_name_or_path":"m","model_patch":""}"#;
        let (preds, errors) = load_predictions(&write(dir.path(), "p.jsonl", pred)).unwrap();
        assert!(preds.is_empty() && errors.len() == 1);
        for (model, dir) in [("..", "_.."), ("org/m", "org__m"), (".", "_."), ("", "_")] {
            assert_eq!(model_dir_name(model), dir);
        }
    }

    #[test]
    fn jsonl_with_string_and_list_test_fields_and_numeric_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "d.jsonl", &format!("{ROW}\n\n"));
        let (instances, errors) = load_dataset(&path).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(instances[0].fail_to_pass, vec!["t1"]);
        assert_eq!(instances[0].pass_to_pass, vec!["t2", "t3"]);
        assert_eq!(instances[0].version, "0.6");
        assert_eq!(instances[0].env_commit(), "abc");
    }

    #[test]
    fn a_bad_row_names_row_and_field_and_the_rest_loads() {
        let dir = tempfile::tempdir().unwrap();
        let bad = r#"{"instance_id":"x__y-2","repo":"x/y","base_commit":"abc","FAIL_TO_PASS":"[]"}"#;
        let path = write(dir.path(), "d.jsonl", &format!("{bad}\nnot json\n{ROW}\n"));
        let (instances, errors) = load_dataset(&path).unwrap();
        assert_eq!(instances.len(), 1);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].row, 1);
        assert_eq!(errors[0].instance_id.as_deref(), Some("x__y-2"));
        assert!(errors[0].to_string().contains("missing field test_patch"), "{}", errors[0]);
        assert!(errors[1].message.contains("invalid JSON"));
    }

    #[test]
    fn localization_rows_need_an_issue_and_gold_but_no_tests_or_commit() {
        let dir = tempfile::tempdir().unwrap();
        let rows = [
            r#"{"instance_id":"l-1","repo":"a/b","base_commit":"","problem_statement":"i","gold_files":["x.py"],"gold_functions":"[\"x.py:f\"]"}"#,
            r#"{"instance_id":"l-2","repo":"a/b","base_commit":null,"problem_statement":"i","patch":"p"}"#,
            r#"{"instance_id":"l-3","repo":"a/b","problem_statement":"i"}"#,
            r#"{"instance_id":"l-4","repo":"a/b","gold_files":["x.py"]}"#,
            r#"{"instance_id":"l-5","repo":"a/b","problem_statement":"i","gold_modules":[1]}"#,
        ];
        // A complete row loads for localization too.
        let full = ROW.replacen('{', r#"{"problem_statement":"i","#, 1);
        let path = write(dir.path(), "d.jsonl", &format!("{}\n{full}\n", rows.join("\n")));
        let (instances, errors) = load_dataset_for(&path, Purpose::Localization).unwrap();
        let ids: Vec<&str> = instances.iter().map(|i| i.instance_id.as_str()).collect();
        assert_eq!(ids, ["l-1", "l-2", "a__b-1"], "{errors:?}");
        assert_eq!(instances[0].gold_functions, vec!["x.py:f"]);
        assert_eq!(instances[1].base_commit, "");
        let messages: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.message.as_str())).collect();
        assert_eq!(messages[0].0, 3);
        assert!(messages[0].1.contains("no gold locations"), "{messages:?}");
        assert_eq!(messages[1], (4, "missing field problem_statement"));
        assert!(messages[2].1.contains("gold_modules"), "{messages:?}");

        // The same file for grading: only the complete row.
        let (instances, errors) = load_dataset(&path).unwrap();
        assert_eq!(instances.len(), 1);
        assert_eq!(errors.len(), 5);
        // Rows without gold fields serialize as before.
        assert!(!serde_json::to_string(&instances[0]).unwrap().contains("gold_"));
    }

    #[test]
    fn json_list_dataset_and_predictions_as_list_dict_and_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "d.json", &format!("[{ROW}]"));
        assert_eq!(load_dataset(&path).unwrap().0.len(), 1);

        let list =
            write(dir.path(), "p.json", r#"[{"instance_id":"a__b-1","model_name_or_path":"m/x","model_patch":"d"}]"#);
        let dict = write(dir.path(), "p2.json", r#"{"a__b-1":{"model_name_or_path":"m","model_patch":null}}"#);
        let jsonl = write(
            dir.path(),
            "p3.jsonl",
            "{\"instance_id\":\"a__b-1\",\"model_name_or_path\":\"m\",\"model_patch\":\"d\"}\n{\"model_patch\":1}\n",
        );
        assert_eq!(load_predictions(&list).unwrap().0[0].model_name_or_path, "m/x");
        let (p, _) = load_predictions(&dict).unwrap();
        assert_eq!(p[0].instance_id, "a__b-1");
        assert_eq!(p[0].model_patch, None);
        let (p, errors) = load_predictions(&jsonl).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(errors[0].row, 2);
        assert_eq!(model_dir_name("org/model"), "org__model");
    }
}
