//! The chat template: `tokenizer.chat_template` from the GGUF metadata, rendered with minijinja.
//!
//! Hugging Face chat templates are Jinja2 written against Python objects; minijinja with the
//! `pycompat` methods (`.strip()`, `.startswith()`, ...) and the usual helpers (`raise_exception`,
//! `strftime_now`) renders them. No template is written here for any model: a GGUF without one
//! is refused with a clear error. This module knows nothing of tokens or generation.

use minijinja::{Environment, Error as JinjaError, ErrorKind, context};
use serde::Serialize;

use crate::ModelError;
use crate::gguf::GgufFile;

/// One message as chat templates see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message with that role and text.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self { role: role.to_string(), content: content.into() }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// The template of `gguf`, with its BOS/EOS token texts.
    pub fn from_gguf(gguf: &GgufFile, bos_token: &str, eos_token: &str) -> Result<Self, ModelError> {
        let source = gguf.string("tokenizer.chat_template").map_err(|_| {
            ModelError::Template(format!(
                "{} has no chat template (tokenizer.chat_template); use an instruction-tuned GGUF that includes one",
                gguf.path().display()
            ))
        })?;
        Self::new(source, bos_token, eos_token)
    }

    /// Compiles `source`.
    pub fn new(source: String, bos_token: &str, eos_token: &str) -> Result<Self, ModelError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| ModelError::Template(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<String, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, message))
        });
        env.add_function("strftime_now", |_format: String| -> String { String::new() });
        env.add_template_owned("chat", source).map_err(|e| ModelError::Template(e.to_string()))?;
        Ok(Self { env, bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    /// The prompt for `messages`; with `add_generation_prompt` it ends where the assistant's
    /// reply begins.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String, ModelError> {
        let template = self.env.get_template("chat").map_err(|e| ModelError::Template(e.to_string()))?;
        template
            .render(context! {
                messages => minijinja::value::Serde(messages),
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| ModelError::Template(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_renders_with_a_generation_prompt() {
        let template = ChatTemplate::new(CHATML.into(), "<s>", "</s>").unwrap();
        let out = template.render(&[ChatMessage::new("system", "Be brief."), ChatMessage::new("user", "Hi")], true);
        assert_eq!(
            out.unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_and_raise_exception_work() {
        let source = "{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}{{ bos_token }}{{ messages[0].content.strip().upper() }}";
        let template = ChatTemplate::new(source.into(), "<s>", "</s>").unwrap();
        assert_eq!(template.render(&[ChatMessage::new("user", "  hi ")], false).unwrap(), "<s>HI");
        let err = template.render(&[ChatMessage::new("system", "x")], false).unwrap_err().to_string();
        assert!(err.contains("first must be user"), "{err}");
        assert!(ChatTemplate::new("{% for %}".into(), "", "").is_err());
    }
}
