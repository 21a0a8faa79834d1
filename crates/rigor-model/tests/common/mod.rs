//! Helpers shared by the model test binaries.
#![allow(clippy::unwrap_used, dead_code)]

use rigor_model::transformer::Transformer;

/// The property behind exact KV-prefix reuse: the last token's logits are bit-identical whether
/// `tokens` came in one batch or split at each of `splits` (the rest fed in chunks of `chunk`
/// for the split at `chunked`, one at a time otherwise).
pub fn assert_batching_changes_no_logit(
    model: &mut Transformer,
    tokens: &[u32],
    splits: &[usize],
    chunked: (usize, usize),
) {
    model.truncate(0);
    let whole = model.forward(tokens).unwrap();
    for &split in splits {
        model.truncate(0);
        model.forward(&tokens[..split]).unwrap();
        let mut last = Vec::new();
        for chunk in tokens[split..].chunks(if split == chunked.0 { chunked.1 } else { 1 }) {
            last = model.forward(chunk).unwrap();
        }
        assert!(whole == last, "split at {split}: the logits differ");
    }
}
