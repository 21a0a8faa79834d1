//! Repairs of the arguments small models invent: a close but wrong argument name (`file` for
//! `path`, `old` for `old_str`) is renamed to the one the schema has, and the editor's missing or
//! unknown `command` is inferred from the other arguments. Every repair is said, so the model
//! learns the right names from the observation; arguments it cannot place are left alone (the
//! tool then reports what is missing).

use rigor_protocol::ToolSpec;
use serde_json::{Map, Value};

/// Names small models use for an argument, by the argument's real name.
const ALIASES: &[(&str, &[&str])] = &[
    ("path", &["file", "filename", "file_path", "filepath", "file_name", "dir", "directory"]),
    ("command", &["cmd", "shell", "script"]),
    ("old_str", &["old", "old_text", "old_string", "search", "find", "original", "before"]),
    ("new_str", &["new", "new_text", "new_string", "replace", "replacement", "after"]),
    ("file_text", &["content", "contents", "text", "file_content"]),
    ("insert_line", &["line", "line_number", "after_line"]),
    ("pattern", &["regex", "query"]),
    ("summary", &["message", "result"]),
];

/// Repairs `args` for `spec` in place; returns one sentence per repair (empty: nothing changed).
pub fn repair(spec: &ToolSpec, args: &mut Value) -> Vec<String> {
    let Some(properties) = spec.parameters.get("properties").and_then(Value::as_object) else { return Vec::new() };
    let Some(object) = args.as_object_mut() else { return Vec::new() };
    let mut notes = Vec::new();
    let unknown: Vec<String> = object.keys().filter(|k| !properties.contains_key(*k)).cloned().collect();
    for key in unknown {
        let Some(target) = closest(&key, properties) else { continue };
        if object.contains_key(target) {
            continue;
        }
        if let Some(value) = object.remove(&key) {
            object.insert(target.to_string(), value);
            notes.push(format!("`{}` has no argument `{key}`: it was taken as `{target}`.", spec.name));
        }
    }
    if let Some(note) = infer_command(spec, properties, object) {
        notes.push(note);
    }
    if let Some(note) = new_text_as_file_text(spec, properties, object) {
        notes.push(note);
    }
    notes
}

/// For the editor's `insert` and `str_replace`, new text sent as `file_text` (the argument of
/// `create`) taken as `new_str` (measured: Qwen2.5-Coder-1.5B inserted a test that way).
fn new_text_as_file_text(
    spec: &ToolSpec,
    properties: &Map<String, Value>,
    object: &mut Map<String, Value>,
) -> Option<String> {
    let command = object.get("command").and_then(Value::as_str)?.to_string();
    if !matches!(command.as_str(), "insert" | "str_replace")
        || !properties.contains_key("new_str")
        || object.contains_key("new_str")
    {
        return None;
    }
    let text = object.remove("file_text")?;
    object.insert("new_str".into(), text);
    Some(format!("`{}` takes the new text of `{command}` as `new_str`: `file_text` was taken as `new_str`.", spec.name))
}

/// The schema's argument that `key` stands for: an alias, or a name at most two edits away.
fn closest<'p>(key: &str, properties: &'p Map<String, Value>) -> Option<&'p str> {
    let lower = key.to_ascii_lowercase();
    let by_alias = ALIASES
        .iter()
        .find(|(_, aliases)| aliases.contains(&lower.as_str()))
        .and_then(|(name, _)| properties.keys().find(|k| k == name));
    by_alias
        .or_else(|| {
            properties.keys().filter(|k| edit_distance(&lower, k) <= 2).min_by_key(|k| edit_distance(&lower, k))
        })
        .map(String::as_str)
}

/// For a tool with an enum `command` (the editor), a missing or unknown one inferred from the
/// other arguments: `old_str` → `str_replace`, `insert_line` → `insert`, `file_text` → `create`.
fn infer_command(spec: &ToolSpec, properties: &Map<String, Value>, object: &mut Map<String, Value>) -> Option<String> {
    let options: Vec<&str> =
        properties.get("command")?.get("enum")?.as_array()?.iter().filter_map(Value::as_str).collect();
    let given = object.get("command").and_then(Value::as_str).map(str::to_string);
    if given.as_deref().is_some_and(|c| options.contains(&c)) {
        return None;
    }
    let inferred = [("old_str", "str_replace"), ("insert_line", "insert"), ("file_text", "create")]
        .iter()
        .find(|(arg, command)| object.contains_key(*arg) && options.contains(command))?
        .1;
    object.insert("command".into(), Value::String(inferred.into()));
    Some(match given {
        Some(wrong) => format!("`{}` has no command `{wrong}`: it was taken as `{inferred}`.", spec.name),
        None => format!("`{}` needs a `command`: it was taken as `{inferred}`.", spec.name),
    })
}

/// Levenshtein distance (ASCII names; short strings).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn editor() -> ToolSpec {
        ToolSpec {
            name: "edit".into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {
                "command": {"type": "string", "enum": ["str_replace", "insert", "create", "undo"]},
                "path": {"type": "string"}, "old_str": {"type": "string"}, "new_str": {"type": "string"},
                "insert_line": {"type": "integer"}, "file_text": {"type": "string"}},
                "required": ["command", "path"]}),
        }
    }

    #[test]
    fn invented_names_are_renamed_and_said() {
        let mut args = json!({"command": "str_replace", "file": "calc.py", "old": "a - b", "new_str": "a + b"});
        let notes = repair(&editor(), &mut args);
        assert_eq!(args, json!({"command": "str_replace", "path": "calc.py", "old_str": "a - b", "new_str": "a + b"}));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("`file`") && notes[0].contains("`path`"), "{notes:?}");
        // A typo within two edits.
        let mut args = json!({"command": "create", "pth": "x.py", "file_txt": "x = 1\n"});
        repair(&editor(), &mut args);
        assert_eq!(args, json!({"command": "create", "path": "x.py", "file_text": "x = 1\n"}));
    }

    #[test]
    fn a_wrong_or_missing_editor_command_is_inferred() {
        let mut args = json!({"command": "python", "path": "calc.py", "old_str": "-", "new_str": "+"});
        let notes = repair(&editor(), &mut args);
        assert_eq!(args["command"], "str_replace");
        assert!(notes[0].contains("no command `python`"), "{notes:?}");
        let mut args = json!({"path": "new.py", "file_text": "x"});
        assert!(repair(&editor(), &mut args)[0].contains("needs a `command`"));
        assert_eq!(args["command"], "create");
    }

    #[test]
    fn new_text_sent_as_file_text_of_an_insert_is_taken_as_new_str() {
        let mut args = json!({"command": "insert", "path": "t.py", "file_text": "x = 1\n", "insert_line": 3});
        let notes = repair(&editor(), &mut args);
        assert_eq!(args, json!({"command": "insert", "path": "t.py", "new_str": "x = 1\n", "insert_line": 3}));
        assert!(notes[0].contains("`file_text` was taken as `new_str`"), "{notes:?}");
        // `create` keeps its `file_text`; an insert with both keeps both (the tool says what is wrong).
        let mut args = json!({"command": "create", "path": "t.py", "file_text": "x"});
        assert!(repair(&editor(), &mut args).is_empty());
        let mut args = json!({"command": "insert", "path": "t.py", "file_text": "x", "new_str": "y", "insert_line": 1});
        assert!(repair(&editor(), &mut args).is_empty());
    }

    #[test]
    fn valid_and_unplaceable_arguments_are_left_alone() {
        let mut args = json!({"command": "undo", "path": "a.py"});
        assert!(repair(&editor(), &mut args).is_empty());
        let mut args = json!({"command": "str_replace", "path": "a.py", "flavour": "x", "file": "b.py"});
        assert!(repair(&editor(), &mut args).is_empty(), "`path` is given: `file` is not renamed onto it");
        assert!(args.get("flavour").is_some());
    }
}
