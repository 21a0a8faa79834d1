//! Prices and context windows of well-known models.
//!
//! Names match by prefix (after any `vendor/` routing prefix such as OpenRouter's `openai/`), the
//! longest prefix winning, so dated variants like `gpt-4o-2024-08-06` or
//! `claude-sonnet-4-5-20250929` find their family.

use rigor_protocol::Usage;
use serde::{Deserialize, Serialize};

/// Prices of a model in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    /// Price of a million prompt tokens.
    pub input_per_mtok: f64,
    /// Price of a million generated tokens.
    pub output_per_mtok: f64,
    /// Price of a million prompt tokens served from the provider's cache (the input price when
    /// `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
}

impl Pricing {
    /// Cost of `usage` in USD. Cached prompt tokens are part of `usage.input_tokens` and are
    /// charged at the cached price.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let uncached = usage.input_tokens - cached;
        let cached_price = self.cached_input_per_mtok.unwrap_or(self.input_per_mtok);
        (uncached as f64 * self.input_per_mtok
            + cached as f64 * cached_price
            + usage.output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// One row of the built-in table.
struct Known {
    prefix: &'static str,
    input: f64,
    output: f64,
    cached: f64,
    context_window: u64,
}

const fn known(prefix: &'static str, input: f64, output: f64, cached: f64, context_window: u64) -> Known {
    Known { prefix, input, output, cached, context_window }
}

/// List prices (USD per million tokens) as published by the vendors.
const KNOWN: &[Known] = &[
    known("gpt-4o-mini", 0.15, 0.60, 0.075, 128_000),
    known("gpt-4o", 2.50, 10.00, 1.25, 128_000),
    known("gpt-4.1-nano", 0.10, 0.40, 0.025, 1_047_576),
    known("gpt-4.1-mini", 0.40, 1.60, 0.10, 1_047_576),
    known("gpt-4.1", 2.00, 8.00, 0.50, 1_047_576),
    known("o3-mini", 1.10, 4.40, 0.55, 200_000),
    known("o3", 2.00, 8.00, 0.50, 200_000),
    known("o4-mini", 1.10, 4.40, 0.275, 200_000),
    known("gpt-5-nano", 0.05, 0.40, 0.005, 400_000),
    known("gpt-5-mini", 0.25, 2.00, 0.025, 400_000),
    known("gpt-5", 1.25, 10.00, 0.125, 400_000),
    known("claude-sonnet-4-5", 3.00, 15.00, 0.30, 200_000),
    known("claude-sonnet-4", 3.00, 15.00, 0.30, 200_000),
    known("claude-opus-4-5", 5.00, 25.00, 0.50, 200_000),
    known("claude-opus-4-1", 15.00, 75.00, 1.50, 200_000),
    known("claude-opus-4", 15.00, 75.00, 1.50, 200_000),
    known("claude-haiku-4-5", 1.00, 5.00, 0.10, 200_000),
    known("claude-3-5-haiku", 0.80, 4.00, 0.08, 200_000),
    known("claude-3-5-sonnet", 3.00, 15.00, 0.30, 200_000),
    known("claude-3-7-sonnet", 3.00, 15.00, 0.30, 200_000),
];

/// The context window assumed for models rigor does not know.
pub const UNKNOWN_CONTEXT_WINDOW: u64 = 32_768;

fn lookup(model: &str) -> Option<&'static Known> {
    let name = model.rsplit('/').next().unwrap_or(model).trim().to_ascii_lowercase();
    KNOWN.iter().filter(|k| matches_prefix(&name, k.prefix)).max_by_key(|k| k.prefix.len())
}

/// `name` is `prefix` or starts with it followed by a separator (`-`, `.`, `:`, `@`), so that
/// `o3` matches `o3-2025-04-16` but not `o30`.
fn matches_prefix(name: &str, prefix: &str) -> bool {
    match name.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with(['-', '.', ':', '@', '_']),
        None => false,
    }
}

/// Prices of a well-known model, `None` when unknown.
pub fn default_pricing(model: &str) -> Option<Pricing> {
    lookup(model).map(|k| Pricing {
        input_per_mtok: k.input,
        output_per_mtok: k.output,
        cached_input_per_mtok: Some(k.cached),
    })
}

/// Context window of a well-known model in tokens; [`UNKNOWN_CONTEXT_WINDOW`] when unknown.
pub fn default_context_window(model: &str) -> u64 {
    lookup(model).map(|k| k.context_window).unwrap_or(UNKNOWN_CONTEXT_WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_and_routed_names_match_their_family() {
        assert_eq!(default_pricing("gpt-4o-2024-08-06").map(|p| p.input_per_mtok), Some(2.50));
        assert_eq!(default_pricing("gpt-4o-mini-2024-07-18").map(|p| p.input_per_mtok), Some(0.15));
        assert_eq!(default_pricing("openai/gpt-4.1-mini").map(|p| p.output_per_mtok), Some(1.60));
        assert_eq!(default_pricing("claude-sonnet-4-5-20250929").map(|p| p.input_per_mtok), Some(3.0));
        assert_eq!(default_pricing("claude-opus-4-1-20250805").map(|p| p.input_per_mtok), Some(15.0));
        assert_eq!(default_pricing("claude-3-5-haiku-20241022").map(|p| p.input_per_mtok), Some(0.80));
        assert_eq!(default_pricing("claude-haiku-4-5").map(|p| p.input_per_mtok), Some(1.0));
        assert_eq!(default_pricing("o3-2025-04-16").map(|p| p.input_per_mtok), Some(2.0));
        assert_eq!(default_pricing("o4-mini").map(|p| p.input_per_mtok), Some(1.10));
        assert_eq!(default_pricing("gpt-5-mini-2025-08-07").map(|p| p.input_per_mtok), Some(0.25));
        assert_eq!(default_pricing("gpt-5").map(|p| p.input_per_mtok), Some(1.25));
        assert!(default_pricing("o30").is_none());
        assert!(default_pricing("qwen2.5-coder").is_none());
    }

    #[test]
    fn context_windows() {
        assert_eq!(default_context_window("gpt-4o"), 128_000);
        assert_eq!(default_context_window("gpt-4.1-2025-04-14"), 1_047_576);
        assert_eq!(default_context_window("gpt-5-nano"), 400_000);
        assert_eq!(default_context_window("claude-sonnet-4-20250514"), 200_000);
        assert_eq!(default_context_window("smollm2"), UNKNOWN_CONTEXT_WINDOW);
    }

    #[test]
    fn cost_charges_cached_tokens_at_the_cached_price() {
        let pricing = Pricing { input_per_mtok: 2.0, output_per_mtok: 8.0, cached_input_per_mtok: Some(0.5) };
        let usage = Usage { input_tokens: 1_000_000, output_tokens: 500_000, cached_input_tokens: 400_000 };
        let cost = pricing.cost(&usage);
        assert!((cost - (0.6 * 2.0 + 0.4 * 0.5 + 0.5 * 8.0)).abs() < 1e-9, "{cost}");
        let no_cache = Pricing { cached_input_per_mtok: None, ..pricing };
        assert!((no_cache.cost(&usage) - (2.0 + 4.0)).abs() < 1e-9);
    }

    #[test]
    fn pricing_deserializes_without_cached_price() {
        let p: Pricing = serde_json::from_str(r#"{"input_per_mtok": 1, "output_per_mtok": 2}"#).unwrap();
        assert_eq!(p.cached_input_per_mtok, None);
    }
}
