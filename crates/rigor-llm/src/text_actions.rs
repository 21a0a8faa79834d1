//! Tool calls for models without native function calling.
//!
//! [`TextActions`] wraps another provider. It sends no `tools`; instead it describes them at
//! the end of the system message and asks for one fenced block per reply, whose info string is
//! the tool's name and whose body is the JSON arguments object:
//!
//! ````text
//! ```view
//! {"path": "calc.py"}
//! ```
//! ````
//!
//! For a tool with exactly one required string parameter (like `bash`'s `command`), a body that
//! is not such a JSON object is taken as that parameter's value, so a plain ```` ```bash ````
//! block works. History is converted for the inner provider: assistant tool calls are re-rendered
//! as those blocks, tool results become user messages starting `Observation from <tool>:`.

use async_trait::async_trait;
use rigor_protocol::{Message, Role, ToolCall, ToolSpec};
use serde_json::{Map, Value};

use crate::{ChatRequest, ChatResponse, Provider, ProviderError, StreamSink};

/// The heading of the action format's part of the system message: a conversation that has it
/// is driven by text actions (a server may then stop generation after the action).
pub const ACTION_FORMAT_HEADING: &str = "# How to act";

/// How a tool's result starts in a text-action conversation; a model that writes it has begun
/// to invent the result.
pub const OBSERVATION_PREFIX: &str = "Observation from";

/// Drives a model through the fenced-block action format instead of native tool calls.
pub struct TextActions {
    inner: Box<dyn Provider>,
    /// What the parser recovered from, by call id: told to the model with that call's result.
    notes: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl TextActions {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Provider>) -> Self {
        Self { inner, notes: Default::default() }
    }

    /// The request actually sent to the inner provider.
    pub fn inner_request(request: &ChatRequest) -> ChatRequest {
        Self::noted_request(request, &std::collections::HashMap::new())
    }

    fn noted_request(request: &ChatRequest, notes: &std::collections::HashMap<String, String>) -> ChatRequest {
        ChatRequest {
            messages: convert_history_noted(&request.messages, &request.tools, notes),
            tools: Vec::new(),
            max_output_tokens: request.max_output_tokens,
            temperature: request.temperature,
        }
    }
}

#[async_trait]
impl Provider for TextActions {
    fn id(&self) -> String {
        self.inner.id()
    }

    fn context_window(&self) -> u64 {
        self.inner.context_window()
    }

    fn action_hint(&self) -> Option<String> {
        Some(
            "Reply with exactly one fenced block naming the tool, for example\n\n```bash\nls\n```\n\nor\n\n```view\n{\"path\": \"README.md\"}\n```"
                .into(),
        )
    }

    async fn chat(&self, request: &ChatRequest, sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
        let inner_request = {
            let notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
            Self::noted_request(request, &notes)
        };
        let mut response = self.inner.chat(&inner_request, sink).await?;
        let id = format!("text-{}", next_call_number(&request.messages));
        let parsed = read_action(&response.message.content, &request.tools, &id);
        if let (Some(call), false) = (&parsed.call, parsed.notes.is_empty()) {
            self.notes.lock().unwrap_or_else(|p| p.into_inner()).insert(call.id.clone(), parsed.notes.join(" "));
        }
        response.message = Message::assistant(parsed.text, parsed.call.into_iter().collect());
        Ok(response)
    }
}

/// One more than the largest `text-<n>` id in the history, so ids stay unique even after old
/// turns were condensed away.
fn next_call_number(messages: &[Message]) -> u64 {
    let ids = messages.iter().flat_map(|m| m.tool_calls.iter().map(|c| c.id.as_str()).chain(m.tool_call_id.as_deref()));
    ids.filter_map(|id| id.strip_prefix("text-")?.parse::<u64>().ok()).max().unwrap_or(0) + 1
}

/// The name of the tool's only required parameter, when there is exactly one and it is a string.
pub fn plain_parameter(spec: &ToolSpec) -> Option<&str> {
    let required = spec.parameters.get("required")?.as_array()?;
    let [name] = required.as_slice() else { return None };
    let name = name.as_str()?;
    let kind = spec.parameters.pointer(&format!("/properties/{name}/type"))?;
    (kind == "string").then_some(name)
}

/// What is appended to the system message: the action format and the tools (nothing when
/// there are no tools).
pub fn tool_prompt(tools: &[ToolSpec]) -> String {
    if tools.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "{ACTION_FORMAT_HEADING}\n\nTo use a tool, reply with one fenced block: the tool's name after the opening ```, the \
         arguments as a JSON object inside, and a closing ``` line. Then stop: the result comes back in the next \
         message as \"{OBSERVATION_PREFIX} <tool>:\". One block per reply; never write an observation yourself.\n",
    );
    if let Some(example) = tools.iter().find(|t| plain_parameter(t).is_none()) {
        out.push_str(&format!("\nExample:\n\n```{}\n{}\n```\n", example.name, example_arguments(example)));
    }
    let plain_tools = || tools.iter().filter(|t| plain_parameter(t).is_some());
    if let Some(plain) = plain_tools().find(|t| t.name == "bash").or_else(|| plain_tools().next()) {
        let param = plain_parameter(plain).unwrap_or_default();
        let sample = if plain.name == "bash" { "ls -la" } else { "..." };
        out.push_str(&format!(
            "\nFor a tool marked \"plain body\", the body may instead be the bare value of its one required \
             argument, e.g. for `{}` the {param}:\n\n```{}\n{sample}\n```\n",
            plain.name, plain.name
        ));
    }
    out.push_str("\n# Tools\n");
    for tool in tools {
        out.push_str(&format!("\n## {}", tool.name));
        if let Some(param) = plain_parameter(tool) {
            out.push_str(&format!(" (plain body: {param})"));
        }
        out.push('\n');
        let description = tool.description.trim();
        if !description.is_empty() {
            out.push_str(description);
            out.push('\n');
        }
        out.push_str(&describe_schema(&tool.parameters));
        out.push('\n');
    }
    out
}

/// The schema's own first example (`examples`), else `{"path": "<path>", ...}` with the
/// required parameters of `spec`, in schema order.
fn example_arguments(spec: &ToolSpec) -> String {
    if let Some(example) = spec.parameters.pointer("/examples/0").filter(|e| e.is_object()) {
        return example.to_string();
    }
    let fields: Vec<String> = required(&spec.parameters)
        .into_iter()
        .map(|name| {
            let kind = spec.parameters.pointer(&format!("/properties/{name}/type")).and_then(Value::as_str);
            let value = match kind {
                Some("integer") | Some("number") => "1".to_string(),
                Some("boolean") => "true".to_string(),
                Some("array") => "[]".to_string(),
                Some("object") => "{}".to_string(),
                _ => format!("\"<{name}>\""),
            };
            format!("{}: {value}", Value::from(name))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn required(schema: &Value) -> Vec<&str> {
    schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

/// The parameters of a JSON Schema object, one `- name (type, required): description` line
/// each, required ones first.
fn describe_schema(schema: &Value) -> String {
    let Some(properties) = schema.get("properties").and_then(Value::as_object).filter(|p| !p.is_empty()) else {
        return "Arguments: none (body `{}`)".to_string();
    };
    let required = required(schema);
    let mut names: Vec<&str> = required.iter().copied().filter(|n| properties.contains_key(*n)).collect();
    names.extend(properties.keys().map(String::as_str).filter(|n| !required.contains(n)));
    let mut out = String::from("Arguments:");
    for name in names {
        let Some(prop) = properties.get(name) else { continue };
        let flag = if required.contains(&name) { ", required" } else { "" };
        out.push_str(&format!("\n- {name} ({}{flag})", type_name(prop)));
        if let Some(description) = prop.get("description").and_then(Value::as_str) {
            let description = description.split_whitespace().collect::<Vec<_>>().join(" ");
            out.push_str(&format!(": {}", crate::retry::truncate(&description, 200)));
        }
    }
    out
}

fn type_name(prop: &Value) -> String {
    if let Some(options) = prop.get("enum").and_then(Value::as_array) {
        let options: Vec<String> = options.iter().map(Value::to_string).collect();
        return format!("one of {}", options.join("|"));
    }
    match prop.get("type") {
        Some(Value::String(kind)) if kind == "array" => match prop.get("items") {
            Some(items) => format!("array of {}", type_name(items)),
            None => "array".to_string(),
        },
        Some(Value::String(kind)) => kind.clone(),
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|"),
        _ => "any".to_string(),
    }
}

/// Converts a conversation with native tool calls into plain text turns.
pub fn convert_history(messages: &[Message], tools: &[ToolSpec]) -> Vec<Message> {
    convert_history_noted(messages, tools, &std::collections::HashMap::new())
}

/// [`convert_history`], with what the parser recovered from in a call (`notes`, by call id)
/// told before that call's result.
fn convert_history_noted(
    messages: &[Message],
    tools: &[ToolSpec],
    notes: &std::collections::HashMap<String, String>,
) -> Vec<Message> {
    let appendix = tool_prompt(tools);
    let mut out: Vec<Message> = Vec::new();
    let mut names = std::collections::HashMap::new();
    let mut system_done = false;
    for message in messages {
        let converted = match message.role {
            Role::System if !system_done => {
                system_done = true;
                if appendix.is_empty() {
                    message.clone()
                } else {
                    Message::system(format!("{}\n\n{appendix}", message.content.trim_end()))
                }
            }
            Role::System => Message::system(message.content.clone()),
            Role::User => Message::user(message.content.clone()),
            Role::Assistant => {
                let mut text = message.content.trim_end().to_string();
                for call in &message.tool_calls {
                    names.insert(call.id.clone(), call.name.clone());
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(&render_call(call, tools));
                }
                Message::assistant(text, Vec::new())
            }
            Role::Tool => {
                let name = message.tool_call_id.as_ref().and_then(|id| names.get(id)).map_or("tool", String::as_str);
                let marker = if message.is_error { " (error)" } else { "" };
                let note = message.tool_call_id.as_ref().and_then(|id| notes.get(id));
                let note = note.map(|n| format!("(rigor: {n})\n")).unwrap_or_default();
                Message::user(format!("{OBSERVATION_PREFIX} {name}{marker}:\n{note}{}", message.content))
            }
        };
        match out.last_mut() {
            Some(last) if last.role == Role::User && converted.role == Role::User => {
                last.content.push_str("\n\n");
                last.content.push_str(&converted.content);
            }
            _ => out.push(converted),
        }
    }
    if !system_done && !appendix.is_empty() {
        out.insert(0, Message::system(appendix));
    }
    out
}

/// Parameters whose values history shows bare rather than as JSON.
const BARE_PARAMETERS: &[&str] = &["command", "cmd", "script", "code"];

/// A call as the fenced block the model is asked to write.
pub fn render_call(call: &ToolCall, tools: &[ToolSpec]) -> String {
    // Shell-like values are rendered bare (no JSON escaping), as the prompt's example shows.
    let plain =
        tools.iter().find(|t| t.name == call.name).and_then(plain_parameter).filter(|p| BARE_PARAMETERS.contains(p));
    let body = match (plain, call.parsed_arguments()) {
        (Some(param), Ok(Value::Object(map))) if map.len() == 1 && map.get(param).is_some_and(Value::is_string) => {
            map.get(param).and_then(Value::as_str).unwrap_or_default().to_string()
        }
        _ => call.arguments.trim().to_string(),
    };
    let longest_run = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    format!("{fence}{}\n{body}\n{fence}", call.name)
}

/// A fenced block found in a reply.
#[derive(Debug)]
struct Fence<'a> {
    info: &'a str,
    body: String,
    /// Byte range of the whole block (fences included) in the reply.
    start: usize,
    end: usize,
    /// Whether a closing fence (same marker, at least as long) was found.
    closed: bool,
    /// Whether the block was never closed and was taken to end before the next opening fence
    /// (a line of the same fence with an info string), which would otherwise be swallowed.
    cut_at_next: bool,
}

/// All fenced blocks of `text`, in order. An unclosed block runs to the end.
fn fences(text: &str) -> Vec<Fence<'_>> {
    let mut lines = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        lines.push((offset, line));
        offset += line.len();
    }
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (start, line) = lines[i];
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|c| *c == m).count());
        let (Some(marker), true) = (marker, run >= 3) else {
            i += 1;
            continue;
        };
        let info = trimmed[run..].trim();
        if marker == '`' && info.contains('`') {
            i += 1;
            continue;
        }
        let mut body_lines = Vec::new();
        let (mut end, mut closed, mut cut_at_next) = (text.len(), false, false);
        let mut j = i + 1;
        while j < lines.len() {
            let (line_start, body_line) = lines[j];
            let t = body_line.trim();
            if t.len() >= run && t.chars().all(|c| c == marker) {
                (end, closed) = (line_start + body_line.len(), true);
                break;
            }
            if opens_block(t, marker, run) {
                (end, cut_at_next) = (line_start, true);
                break;
            }
            body_lines.push(body_line);
            j += 1;
        }
        let body = body_lines.concat();
        let body = body.trim_end_matches(['\n', '\r']).to_string();
        found.push(Fence { info, body, start, end, closed, cut_at_next });
        i = if cut_at_next { j } else { j + 1 };
    }
    found
}

/// Whether the trimmed line `t` opens a new block of exactly the fence `marker` × `run` with an
/// info string (a closing fence has none): inside an unclosed block, the start of the next one.
fn opens_block(t: &str, marker: char, run: usize) -> bool {
    let ticks = t.chars().take_while(|c| *c == marker).count();
    let info = &t[ticks.min(t.len())..];
    ticks == run && info.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && !info.contains(marker)
}

/// Whether `text` (a reply being generated) already holds a complete fenced block: one closed by
/// a fence of the same marker and at least its length, on a line that has ended (the block the
/// format asks for is then whole, and generation can stop). The same reading as [`parse_action`].
pub fn has_closed_block(text: &str) -> bool {
    fences(text).iter().any(|f| f.closed && text[..f.end].ends_with('\n'))
}

/// Finds the first action in `reply`: the first fenced block whose info string names a tool, or
/// a `json` (or unlabeled) block holding `{"name"/"tool": ..., "arguments": {...}}`. Returns the
/// remaining text and the call (with id `id`), or the whole reply and no call.
pub fn parse_action(reply: &str, tools: &[ToolSpec], id: &str) -> (String, Option<ToolCall>) {
    let parsed = read_action(reply, tools, id);
    (parsed.text, parsed.call)
}

/// An action read from a reply, with what the reading had to recover from.
#[derive(Debug)]
pub struct ReadAction {
    /// The reply without the action's block (and without invented observations after it).
    pub text: String,
    /// The call, if the reply holds one.
    pub call: Option<ToolCall>,
    /// One sentence per recovery (an unclosed block, a block labelled with the wrong tool, a
    /// tool written as a shell command, a code block taken as the action), for the model.
    pub notes: Vec<String>,
}

/// [`parse_action`] with the recoveries small models need: an unclosed block ends before the
/// next opening fence; JSON arguments that fit another tool better than the block's label call
/// that tool (` ```python ` holding the editor's arguments); a shell block whose command is a
/// tool's name (`view calc.py`, `edit {...}`) calls the tool; with no action at all, a
/// ` ```python ` block runs as a Python script in the shell when there is no `python` tool.
pub fn read_action(reply: &str, tools: &[ToolSpec], id: &str) -> ReadAction {
    let blocks = fences(reply);
    let found = blocks
        .iter()
        .find_map(|f| fence_call(f, tools, id).map(|c| (f, c)))
        .or_else(|| blocks.iter().find_map(|f| python_script_call(f, tools, id).map(|c| (f, c))));
    let Some((fence, (call, mut notes))) = found else {
        return ReadAction { text: reply.trim().to_string(), call: None, notes: Vec::new() };
    };
    if fence.cut_at_next {
        notes.insert(
            0,
            format!(
                "your ```{} block had no closing ``` line, so it was taken to end where the next block begins; end \
                 every block with a line of ```.",
                fence.info
            ),
        );
    }
    let before = reply[..fence.start].trim_end();
    let after = reply[fence.end..].trim();
    // What the model wrote after its action as if it had seen the result is dropped.
    let after = after.find("Observation").map_or(after, |at| after[..at].trim_end());
    let text = match (before.is_empty(), after.is_empty()) {
        (_, true) => before.to_string(),
        (true, false) => after.to_string(),
        (false, false) => format!("{before}\n\n{after}"),
    };
    ReadAction { text: text.trim().to_string(), call: Some(call), notes }
}

/// A ` ```python ` (or `py`) block as a shell call running it, when no tool is called `python`.
fn python_script_call(fence: &Fence<'_>, tools: &[ToolSpec], id: &str) -> Option<(ToolCall, Vec<String>)> {
    let label = fence.info.split_whitespace().next().unwrap_or("");
    if !matches!(label, "python" | "python3" | "py") || find_tool(tools, "python").is_some() {
        return None;
    }
    let bash = tools.iter().find(|t| t.name == "bash")?;
    let body = fence.body.trim();
    if body.is_empty() || serde_json::from_str::<Value>(body).is_ok() {
        return None;
    }
    let command = format!("python3 - <<'RIGOR_PY'\n{body}\nRIGOR_PY");
    let arguments = Value::Object(Map::from_iter([("command".to_string(), Value::String(command))])).to_string();
    let note =
        "there is no `python` tool: your ```python block was run as a script with ```bash python3 - <<'EOF' ... \
                EOF```."
            .to_string();
    Some((ToolCall { id: id.to_string(), name: bash.name.clone(), arguments }, vec![note]))
}

/// How many of `object`'s keys are arguments of `tool`.
fn fit(tool: &ToolSpec, object: &Map<String, Value>) -> usize {
    let properties = tool.parameters.get("properties").and_then(Value::as_object);
    object.keys().filter(|k| properties.is_some_and(|p| p.contains_key(k.as_str()))).count()
}

/// The tool whose arguments `object` fits best, when it fits at least two of them and better
/// than `label` (the block's tool) does.
fn better_fit<'t>(
    tools: &'t [ToolSpec],
    label: Option<&ToolSpec>,
    object: &Map<String, Value>,
) -> Option<&'t ToolSpec> {
    let label_fit = label.map_or(0, |t| fit(t, object));
    let best = tools.iter().max_by_key(|t| fit(t, object))?;
    (fit(best, object) >= 2 && fit(best, object) > label_fit && label.is_none_or(|l| l.name != best.name))
        .then_some(best)
}

/// A shell command that is a tool's name and its arguments (`view calc.py`, `edit {"path": ...}`,
/// `finish`), as that tool's call.
fn tool_as_command(command: &str, tools: &[ToolSpec]) -> Option<(String, String)> {
    let command = command.trim();
    let (word, rest) = command.split_once(char::is_whitespace).map_or((command, ""), |(w, r)| (w, r.trim()));
    let tool = tools.iter().find(|t| t.name == word && t.name != "bash" && t.name != "python")?;
    let arguments = match serde_json::from_str::<Value>(rest) {
        Ok(Value::Object(map)) => Value::Object(map).to_string(),
        _ if rest.is_empty() && required(&tool.parameters).is_empty() => "{}".to_string(),
        _ if !rest.is_empty() && !rest.contains('\n') => {
            let param = plain_parameter(tool)?;
            let value = rest.trim_matches(|c| c == '"' || c == '\'');
            Value::Object(Map::from_iter([(param.to_string(), Value::String(value.to_string()))])).to_string()
        }
        _ => return None,
    };
    Some((tool.name.clone(), arguments))
}

fn find_tool<'t>(tools: &'t [ToolSpec], name: &str) -> Option<&'t ToolSpec> {
    let name = name.trim_matches(|c: char| c == '{' || c == '}' || c == '.');
    tools.iter().find(|t| t.name == name).or_else(|| tools.iter().find(|t| t.name.eq_ignore_ascii_case(name))).or_else(
        || match name {
            "sh" | "shell" => tools.iter().find(|t| t.name == "bash"),
            _ => None,
        },
    )
}

fn fence_call(fence: &Fence<'_>, tools: &[ToolSpec], id: &str) -> Option<(ToolCall, Vec<String>)> {
    let label = fence.info.split_whitespace().next().unwrap_or("");
    let body = fence.body.trim();
    let call = |name: &str, arguments: String| ToolCall { id: id.to_string(), name: name.to_string(), arguments };
    let labelled = find_tool(tools, label).filter(|_| !label.is_empty());
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(body)
        && !["name", "tool", "action"].iter().any(|k| object.contains_key(*k))
        && let Some(tool) = better_fit(tools, labelled, &object)
    {
        let note = format!(
            "your block was labelled ```{label} but held arguments of `{}`, so it was run as `{}`; label a block with \
             the tool it calls.",
            tool.name, tool.name
        );
        return Some((call(&tool.name, body.to_string()), vec![note]));
    }
    if let Some(tool) = labelled {
        let arguments = match plain_parameter(tool) {
            Some(param) => match serde_json::from_str::<Value>(body) {
                Ok(Value::Object(map)) if map.contains_key(param) => body.to_string(),
                _ => Value::Object(Map::from_iter([(param.to_string(), Value::String(body.to_string()))])).to_string(),
            },
            // Passed through even when malformed: the tool box reports the JSON error to the model.
            None if body.is_empty() => "{}".to_string(),
            None => body.to_string(),
        };
        if tool.name == "bash"
            && let Some(command) =
                serde_json::from_str::<Value>(&arguments).ok().and_then(|a| a.get("command").cloned())
            && let Some((name, arguments)) = command.as_str().and_then(|c| tool_as_command(c, tools))
        {
            let note = format!(
                "`{name}` is a tool, not a shell command: it was called as the tool; write it as a ```{name} block."
            );
            return Some((call(&name, arguments), vec![note]));
        }
        return Some((call(&tool.name, arguments), Vec::new()));
    }
    if !(label.is_empty() || label.eq_ignore_ascii_case("json")) {
        return None;
    }
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(body) else { return None };
    let name = ["name", "tool", "action"].iter().find_map(|k| object.get(*k).and_then(Value::as_str))?.to_string();
    let tool = find_tool(tools, &name)?;
    let arguments = match ["arguments", "args", "parameters", "input"].iter().find_map(|k| object.get(*k)) {
        Some(Value::String(raw)) => raw.clone(),
        Some(value) => value.to_string(),
        None => {
            for key in ["name", "tool", "action"] {
                object.remove(key);
            }
            Value::Object(object).to_string()
        }
    };
    Some((call(&tool.name, arguments), Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Vec<ToolSpec> {
        vec![
            ToolSpec {
                name: "bash".into(),
                description: "Run a shell command.".into(),
                parameters: json!({"type": "object", "properties": {
                    "command": {"type": "string", "description": "The command."},
                    "timeout": {"type": "integer"}}, "required": ["command"]}),
            },
            ToolSpec {
                name: "view".into(),
                description: "Show a file.".into(),
                parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
            },
            ToolSpec {
                name: "edit".into(),
                description: "Replace text in a file.".into(),
                parameters: json!({"type": "object", "properties": {
                    "path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}},
                    "required": ["path", "old", "new"]}),
            },
            ToolSpec {
                name: "submit".into(),
                description: "Finish.".into(),
                parameters: json!({"type": "object", "properties": {}}),
            },
        ]
    }

    fn parse(reply: &str) -> (String, Option<ToolCall>) {
        parse_action(reply, &tools(), "text-1")
    }

    fn args(call: &Option<ToolCall>) -> Value {
        call.as_ref().map(|c| c.parsed_arguments().unwrap()).unwrap_or(Value::Null)
    }

    #[test]
    fn a_plain_bash_block_becomes_a_command() {
        let (text, call) = parse("Let me look.\n\n```bash\nls -la\ncat calc.py\n```\n");
        assert_eq!(text, "Let me look.");
        let call = call.unwrap();
        assert_eq!((call.id.as_str(), call.name.as_str()), ("text-1", "bash"));
        assert_eq!(call.parsed_arguments().unwrap(), json!({"command": "ls -la\ncat calc.py"}));
    }

    #[test]
    fn a_json_body_is_taken_as_arguments() {
        let (_, call) = parse("```view\n{\"path\": \"calc.py\"}\n```");
        assert_eq!(args(&call), json!({"path": "calc.py"}));
        let (_, call) = parse("```bash\n{\"command\": \"ls\", \"timeout\": 5}\n```");
        assert_eq!(args(&call), json!({"command": "ls", "timeout": 5}));
        // A bash body that merely looks like JSON stays a command.
        let (_, call) = parse("```bash\n{\"x\": 1}\n```");
        assert_eq!(args(&call), json!({"command": "{\"x\": 1}"}));
    }

    #[test]
    fn a_single_string_parameter_tool_accepts_a_bare_value() {
        let (_, call) = parse("```view\ncalc.py\n```");
        assert_eq!(args(&call), json!({"path": "calc.py"}));
    }

    #[test]
    fn json_blocks_naming_a_tool_are_accepted() {
        let (text, call) = parse(
            "I will edit.\n```json\n{\"name\": \"edit\", \"arguments\": {\"path\": \"a\", \"old\": \"x\", \"new\": \"y\"}}\n```",
        );
        assert_eq!(text, "I will edit.");
        assert_eq!(call.as_ref().map(|c| c.name.as_str()), Some("edit"));
        assert_eq!(args(&call), json!({"path": "a", "old": "x", "new": "y"}));
        let (_, call) = parse("```\n{\"tool\": \"bash\", \"args\": {\"command\": \"pwd\"}}\n```");
        assert_eq!(args(&call), json!({"command": "pwd"}));
        let (_, call) = parse("```json\n{\"tool\": \"view\", \"path\": \"b.py\"}\n```");
        assert_eq!(args(&call), json!({"path": "b.py"}));
        // JSON that is not an action is not one.
        let (text, call) = parse("```json\n{\"a\": 1}\n```");
        assert!(call.is_none());
        assert!(text.contains("\"a\": 1"));
    }

    #[test]
    fn unknown_languages_are_skipped_and_the_first_action_wins() {
        let reply = "The bug:\n```python\nreturn a - b\n```\nFix:\n```bash\nsed -i 's/-/+/' calc.py\n```\n```view\n{\"path\": \"calc.py\"}\n```";
        let (text, call) = parse(reply);
        let call = call.unwrap();
        assert_eq!(call.name, "bash");
        assert_eq!(call.parsed_arguments().unwrap(), json!({"command": "sed -i 's/-/+/' calc.py"}));
        assert!(text.starts_with("The bug:\n```python\nreturn a - b\n```\nFix:"), "{text}");
        assert!(text.ends_with("```view\n{\"path\": \"calc.py\"}\n```"), "{text}");
        let (text, call) = parse("```ruby\nputs 1\n```");
        assert!(call.is_none());
        assert_eq!(text, "```ruby\nputs 1\n```");
    }

    #[test]
    fn malformed_json_for_a_multi_argument_tool_passes_through() {
        let (_, call) = parse("```edit\n{\"path\": \"a\", \"old\": \n```");
        let call = call.unwrap();
        assert_eq!(call.arguments, "{\"path\": \"a\", \"old\":");
        assert!(call.parsed_arguments().unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn no_action_means_no_call() {
        let (text, call) = parse("I think the answer is 42.");
        assert!(call.is_none());
        assert_eq!(text, "I think the answer is 42.");
        assert!(parse("").1.is_none());
    }

    #[test]
    fn a_block_is_closed_only_by_its_own_marker_and_length() {
        assert!(!has_closed_block("```bash\nls\n"));
        assert!(!has_closed_block("```bash\nls\n```"), "the closing line has not ended");
        assert!(has_closed_block("Let me look.\n```bash\nls\n```\n"));
        assert!(!has_closed_block("````python\nprint('```')\n```\n"), "a shorter fence is body");
        assert!(has_closed_block("````python\nx = 1\n```\n````\n"));
        assert!(!has_closed_block("~~~bash\nls\n```\n"), "another marker is body");
    }

    #[test]
    fn edge_cases_of_fences() {
        // Unclosed block (the model stopped at the fence).
        let (_, call) = parse("```bash\npython -m pytest -q");
        assert_eq!(args(&call), json!({"command": "python -m pytest -q"}));
        // Info string with extra words, tildes, sh alias, empty body for an argument-less tool.
        let (_, call) = parse("```bash title=run\necho hi\n```");
        assert_eq!(args(&call), json!({"command": "echo hi"}));
        let (_, call) = parse("~~~sh\necho tilde\n~~~");
        assert_eq!(call.as_ref().map(|c| c.name.as_str()), Some("bash"));
        let (_, call) = parse("```submit\n```");
        assert_eq!(args(&call), json!({}));
        // A longer fence protects a body containing backticks.
        let (_, call) = parse("````bash\necho '```'\n````");
        assert_eq!(args(&call), json!({"command": "echo '```'"}));
        // Inline triple backticks are not a fence.
        assert!(parse("use ```bash``` blocks").1.is_none());
    }

    #[test]
    fn rendered_calls_parse_back() {
        let calls = [
            ToolCall { id: "1".into(), name: "bash".into(), arguments: "{\"command\":\"echo '```'\"}".into() },
            ToolCall {
                id: "2".into(),
                name: "edit".into(),
                arguments: "{\"path\":\"a\",\"old\":\"x\",\"new\":\"y\"}".into(),
            },
            ToolCall { id: "3".into(), name: "bash".into(), arguments: "{\"command\":\"ls\",\"timeout\":3}".into() },
        ];
        for call in calls {
            let rendered = render_call(&call, &tools());
            let (_, parsed) = parse(&rendered);
            assert_eq!(parsed.unwrap().parsed_arguments(), call.parsed_arguments(), "{rendered}");
        }
        let bash = ToolCall { id: "1".into(), name: "bash".into(), arguments: "{\"command\":\"ls -la\"}".into() };
        assert_eq!(render_call(&bash, &tools()), "```bash\nls -la\n```");
    }

    #[test]
    fn history_is_converted_to_text_turns() {
        let history = vec![
            Message::system("You fix bugs."),
            Message::user("Fix calc.py"),
            Message::assistant(
                "Looking.",
                vec![ToolCall { id: "text-1".into(), name: "view".into(), arguments: "{\"path\":\"calc.py\"}".into() }],
            ),
            Message::tool_result("text-1", "def add(a, b): return a - b", false),
            Message::assistant(
                "",
                vec![ToolCall {
                    id: "text-2".into(),
                    name: "bash".into(),
                    arguments: "{\"command\":\"false\"}".into(),
                }],
            ),
            Message::tool_result("text-2", "exit 1", true),
            Message::user("Keep going."),
        ];
        let converted = convert_history(&history, &tools());
        assert_eq!(converted.len(), 6);
        assert!(converted.iter().all(|m| m.tool_calls.is_empty() && m.role != Role::Tool));
        assert!(converted[0].content.starts_with("You fix bugs.\n\n# How to act"));
        assert!(converted[0].content.contains("## bash (plain body: command)"));
        assert!(converted[0].content.contains("- path (string, required)"));
        assert_eq!(converted[2].content, "Looking.\n\n```view\n{\"path\":\"calc.py\"}\n```");
        assert_eq!(converted[3].content, "Observation from view:\ndef add(a, b): return a - b");
        assert_eq!(converted[4].content, "```bash\nfalse\n```");
        assert_eq!(converted[5].content, "Observation from bash (error):\nexit 1\n\nKeep going.");
        assert_eq!(next_call_number(&history), 3);
        let no_system = convert_history(&[Message::user("hi")], &tools());
        assert_eq!(no_system[0].role, Role::System);
        assert_eq!(convert_history(&history[..2], &[]), history[..2].to_vec());
    }

    #[test]
    fn the_prompt_names_every_tool_and_shows_both_forms() {
        let prompt = tool_prompt(&tools());
        assert!(
            prompt.contains("```edit\n{\"path\": \"<path>\", \"old\": \"<old>\", \"new\": \"<new>\"}\n```"),
            "{prompt}"
        );
        assert!(
            prompt.contains("Arguments:\n- command (string, required): The command.\n- timeout (integer)\n"),
            "{prompt}"
        );
        assert!(prompt.contains("```bash\nls -la\n```"), "{prompt}");
        assert!(prompt.contains("## submit\nFinish.\nArguments: none"), "{prompt}");
    }

    fn read(reply: &str) -> ReadAction {
        read_action(reply, &tools(), "text-1")
    }

    #[test]
    fn an_unclosed_block_ends_where_the_next_begins_and_says_so() {
        let parsed = read("```bash\ncat calc.py\n```view\n{\"path\": \"calc.py\"}\n```\n");
        let call = parsed.call.unwrap();
        assert_eq!(call.parsed_arguments().unwrap(), json!({"command": "cat calc.py"}));
        assert!(parsed.notes[0].contains("no closing ``` line"), "{:?}", parsed.notes);
        // A closing fence is not an opening one: a well-formed reply has no note.
        assert!(read("```bash\nls\n```\n").notes.is_empty());
    }

    #[test]
    fn arguments_of_another_tool_call_that_tool() {
        // Qwen2.5-Coder-1.5B's mixed fence: the editor's JSON in a ```python block.
        let parsed = read("```python\n{\"command\": \"python\", \"path\": \"a\", \"old\": \"x\", \"new\": \"y\"}\n```");
        let call = parsed.call.unwrap();
        assert_eq!(call.name, "edit");
        assert!(parsed.notes[0].contains("labelled ```python but held arguments of `edit`"), "{:?}", parsed.notes);
        // Arguments that fit their own tool stay with it.
        assert_eq!(read("```bash\n{\"command\": \"ls\", \"timeout\": 5}\n```").call.unwrap().name, "bash");
    }

    #[test]
    fn a_tool_written_as_a_shell_command_calls_the_tool() {
        let parsed = read("```bash\nview calc.py\n```");
        let call = parsed.call.unwrap();
        assert_eq!((call.name.as_str(), call.parsed_arguments().unwrap()), ("view", json!({"path": "calc.py"})));
        assert!(parsed.notes[0].contains("`view` is a tool, not a shell command"));
        let call = read("```bash\nedit {\"path\": \"a\", \"old\": \"x\", \"new\": \"y\"}\n```").call.unwrap();
        assert_eq!(call.name, "edit");
        assert_eq!(read("```bash\nsubmit\n```").call.unwrap().name, "submit");
        // A real command that merely starts with a word is not a tool.
        assert_eq!(read("```bash\nls -la\n```").call.unwrap().name, "bash");
    }

    #[test]
    fn a_python_block_runs_as_a_script_when_there_is_no_python_tool_and_no_other_action() {
        let parsed = read("```python\nprint(1 + 1)\n```");
        let call = parsed.call.unwrap();
        assert_eq!(call.name, "bash");
        assert_eq!(call.parsed_arguments().unwrap()["command"], "python3 - <<'RIGOR_PY'\nprint(1 + 1)\nRIGOR_PY");
        assert!(parsed.notes[0].contains("no `python` tool"));
        // A quoted snippet before the real action stays a quote.
        let call = read("Bug:\n```python\nreturn a - b\n```\n```view\ncalc.py\n```").call.unwrap();
        assert_eq!(call.name, "view");
    }

    #[test]
    fn invented_observations_after_the_action_are_dropped() {
        let parsed = read("Run it.\n```bash\nls\n```\nObservation from bash:\ncalc.py\n");
        assert_eq!(parsed.text, "Run it.");
    }

    #[tokio::test]
    async fn recovery_notes_reach_the_model_with_the_calls_result() {
        type Seen = std::sync::Arc<std::sync::Mutex<Vec<ChatRequest>>>;
        struct Echo(Seen);
        #[async_trait]
        impl Provider for Echo {
            fn id(&self) -> String {
                "echo".into()
            }
            fn context_window(&self) -> u64 {
                8_192
            }
            async fn chat(&self, request: &ChatRequest, _: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
                self.0.lock().unwrap().push(request.clone());
                Ok(ChatResponse {
                    message: Message::assistant("```bash\nview calc.py\n```", Vec::new()),
                    usage: Default::default(),
                    cost_usd: 0.0,
                    finish_reason: rigor_protocol::FinishReason::Stop,
                })
            }
        }
        let seen = Seen::default();
        let provider = TextActions::new(Box::new(Echo(seen.clone())));
        let request = |messages: Vec<Message>| ChatRequest {
            messages,
            tools: tools(),
            max_output_tokens: None,
            temperature: None,
        };
        let first = provider.chat(&request(vec![Message::user("fix")]), &|_| {}).await.unwrap();
        let call = first.message.tool_calls[0].clone();
        let history = vec![Message::user("fix"), first.message, Message::tool_result(&call.id, "1 x = 1", false)];
        provider.chat(&request(history), &|_| {}).await.unwrap();
        let sent = seen.lock().unwrap()[1].messages.last().unwrap().content.clone();
        assert!(sent.starts_with("Observation from view:\n(rigor: `view` is a tool, not a shell command"), "{sent}");
        assert!(sent.ends_with("1 x = 1"), "{sent}");
    }

    #[test]
    fn plain_parameter_detection() {
        let t = tools();
        assert_eq!(plain_parameter(&t[0]), Some("command"));
        assert_eq!(plain_parameter(&t[1]), Some("path"));
        assert_eq!(plain_parameter(&t[2]), None);
        assert_eq!(plain_parameter(&t[3]), None);
    }
}
