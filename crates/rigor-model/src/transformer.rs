//! The forward pass of llama-family decoders (llama, mistral, qwen2, qwen3) from GGUF weights.
//!
//! Q4_1, Q8_0, Q4_K and Q6_K matrices (Q5_0 and Q5_1 are requantized to Q8_0 at load) go through
//! rigor's own kernels ([`crate::kernels`]); other formats through candle's quantized matmul. Everything
//! between the matmuls (RMS norm, rotary embedding, SwiGLU, residuals) is plain Rust on
//! `f32` slices: for a small model at one token per step, candle's per-operation overhead would
//! cost more than the arithmetic. Attention is tiled over the cache ([`crate::attention`]).
//!
//! With the native kernels every token's computation is the same whatever tokens it is fed with
//! (one at a time, or in a prompt batch), so the logits are bit-identical either way.
//!
//! The KV cache grows as tokens are fed and can be cut back to any prefix
//! ([`Transformer::truncate`]): the engine keeps the prefix a new turn shares with the previous
//! one and feeds only the rest. This module knows nothing of tokens' meaning, sampling or chat.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use crate::ModelError;
use crate::attention::{attention, exp};
use crate::gguf::GgufFile;
use crate::kernels::{self, Activations, QMatrix};

/// Values of `general.architecture` this module runs.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "mistral", "qwen2", "qwen3"];

/// Shape and hyper-parameters of a model, from its GGUF metadata.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// `general.architecture`.
    pub architecture: String,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_head`).
    pub n_kv_head: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Width of the residual stream.
    pub hidden: usize,
    /// Dimensions of a head that are rotated.
    pub rope_dim: usize,
    /// Rotary base frequency.
    pub rope_theta: f32,
    /// Rotate pairs `(i, i + d/2)` (NeoX) rather than `(2i, 2i + 1)`.
    pub rope_neox: bool,
    /// RMS norm epsilon.
    pub eps: f32,
    /// Context length the model was trained for.
    pub context_length: usize,
    /// Vocabulary size (rows of the output matrix).
    pub vocab: usize,
}

impl ModelConfig {
    /// Reads the configuration from the metadata of `gguf`.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, ModelError> {
        let arch = gguf.architecture()?;
        let key = |k: &str| format!("{arch}.{k}");
        let n_head = gguf.usize(&key("attention.head_count"))?;
        let hidden = gguf.usize(&key("embedding_length"))?;
        if n_head == 0 || hidden == 0 {
            return Err(gguf.corrupt("head count and embedding length must be positive".into()));
        }
        let n_kv_head = gguf.usize(&key("attention.head_count_kv")).unwrap_or(n_head);
        let head_dim = gguf.usize(&key("attention.key_length")).unwrap_or(hidden / n_head);
        if n_kv_head == 0 || !n_head.is_multiple_of(n_kv_head) || head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(gguf.corrupt(format!("inconsistent heads: {n_head} query, {n_kv_head} kv, dim {head_dim}")));
        }
        let rope_dim = gguf.usize(&key("rope.dimension_count")).unwrap_or(head_dim).min(head_dim);
        let vocab = match gguf.value("tokenizer.ggml.tokens") {
            Ok(candle_core::quantized::gguf_file::Value::Array(tokens)) => tokens.len(),
            _ => gguf.usize(&key("vocab_size"))?,
        };
        Ok(Self {
            n_layer: gguf.usize(&key("block_count"))?,
            n_head,
            n_kv_head,
            head_dim,
            hidden,
            rope_dim: rope_dim - rope_dim % 2,
            rope_theta: gguf.f32(&key("rope.freq_base")).unwrap_or(10_000.0),
            rope_neox: matches!(arch.as_str(), "qwen2" | "qwen3"),
            eps: gguf.f32(&key("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
            context_length: gguf.usize(&key("context_length")).unwrap_or(4096),
            vocab,
            architecture: arch,
        })
    }
}

/// A linear layer: a quantized matrix and an optional bias.
struct Linear {
    weights: Weights,
    bias: Option<Vec<f32>>,
    out: usize,
}

/// A weight matrix and the kernels that multiply it.
enum Weights {
    /// Repacked for rigor's kernels (Q4_1, Q8_0, Q4_K, Q6_K).
    Native(QMatrix),
    /// candle's quantized matmul, for the other formats (its repacked x86 kernels handle many
    /// rows well; dequantizing to f32 would cost 4 bytes per weight on every prompt batch).
    Candle(QMatMul),
}

impl Linear {
    fn new(tensor: QTensor, bias: Option<Vec<f32>>) -> Result<Self, ModelError> {
        let out = tensor.shape().dims().first().copied().unwrap_or(0);
        let weights = match QMatrix::new(&tensor) {
            Some(matrix) => Weights::Native(matrix),
            None => Weights::Candle(QMatMul::from_qtensor(tensor)?),
        };
        Ok(Self { weights, bias, out })
    }

    /// `rows` rows of `x` (each `x.len() / rows` wide) times the matrix of each layer, plus its
    /// bias: one output per layer. Layers that read the same input go together so that the input
    /// is quantized once and the product costs one hand-off to the thread pool.
    fn forward_all(layers: &[&Linear], x: &[f32], rows: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        let native: Option<Vec<&QMatrix>> =
            layers.iter().map(|l| if let Weights::Native(m) = &l.weights { Some(m) } else { None }).collect();
        let mut outputs = match native {
            Some(matrices) => kernels::multiply(&matrices, &Activations::quantize(x, rows))?,
            None => layers.iter().map(|l| l.product(x, rows)).collect::<Result<_, _>>()?,
        };
        for (layer, out) in layers.iter().zip(&mut outputs) {
            if let Some(bias) = &layer.bias {
                for row in out.chunks_exact_mut(layer.out) {
                    row.iter_mut().zip(bias).for_each(|(o, b)| *o += b);
                }
            }
        }
        Ok(outputs)
    }

    /// [`Linear::forward_all`] of this layer alone.
    fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, ModelError> {
        Ok(Self::forward_all(&[self], x, rows)?.pop().unwrap_or_default())
    }

    /// The product of this layer alone, without the bias.
    fn product(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, ModelError> {
        match &self.weights {
            Weights::Native(m) => {
                Ok(kernels::multiply(&[m], &Activations::quantize(x, rows))?.pop().unwrap_or_default())
            }
            Weights::Candle(weight) => {
                let input = Tensor::from_slice(x, (rows, x.len() / rows), &Device::Cpu)?;
                Ok(weight.forward(&input)?.flatten_all()?.to_vec1::<f32>()?)
            }
        }
    }
}

struct Block {
    attn_norm: Vec<f32>,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    ffn_norm: Vec<f32>,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// Keys and values of the tokens fed so far, per layer and key/value head, each `head_dim` wide.
struct LayerCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

/// A loaded model with its KV cache.
pub struct Transformer {
    config: ModelConfig,
    embeddings: Arc<QTensor>,
    blocks: Vec<Block>,
    output_norm: Vec<f32>,
    output: Linear,
    cache: Vec<LayerCache>,
    /// Tokens whose keys and values are in the cache.
    len: usize,
    /// cos/sin of the rotary angles, `rope_dim / 2` per position, grown on demand.
    rope_cos: Vec<f32>,
    rope_sin: Vec<f32>,
}

/// Types that only candle's scalar kernels multiply: requantized to Q8_0 at load (nearly
/// lossless), which rigor's kernels run.
fn needs_requantization(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// A weight matrix as loaded, requantized if its format has only scalar kernels.
fn requantized(tensor: QTensor) -> Result<QTensor, ModelError> {
    if needs_requantization(tensor.dtype()) && tensor.shape().dims().last().is_some_and(|k| k % 32 == 0) {
        Ok(QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?)
    } else {
        Ok(tensor)
    }
}

fn vector(gguf: &mut GgufFile, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
    let values = gguf.tensor(name)?.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
    if values.len() != len {
        return Err(gguf.corrupt(format!("tensor `{name}` has {} values, expected {len}", values.len())));
    }
    Ok(values)
}

fn linear(gguf: &mut GgufFile, prefix: &str) -> Result<Linear, ModelError> {
    let tensor = requantized(gguf.tensor(&format!("{prefix}.weight"))?)?;
    let out = tensor.shape().dims().first().copied().unwrap_or(0);
    let bias_name = format!("{prefix}.bias");
    let bias = if gguf.has_tensor(&bias_name) { Some(vector(gguf, &bias_name, out)?) } else { None };
    Linear::new(tensor, bias)
}

impl Transformer {
    /// Loads the weights of `gguf`.
    pub fn load(gguf: &mut GgufFile) -> Result<Self, ModelError> {
        let config = ModelConfig::from_gguf(gguf)?;
        let c = &config;
        let embeddings = gguf.tensor("token_embd.weight")?;
        if embeddings.shape().dims() != [c.vocab, c.hidden] {
            return Err(gguf.corrupt(format!(
                "token_embd.weight has shape {:?}, expected [{}, {}]",
                embeddings.shape().dims(),
                c.vocab,
                c.hidden
            )));
        }
        let embeddings = Arc::new(embeddings);
        // Without its own output matrix, the model reads its logits off the embeddings (tied).
        let output = match gguf.has_tensor("output.weight") {
            true => linear(gguf, "output")?,
            false => Linear::new(requantized(gguf.tensor("token_embd.weight")?)?, None)?,
        };
        let mut blocks = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let p = format!("blk.{i}");
            let q_norm_name = format!("{p}.attn_q_norm.weight");
            let (q_norm, k_norm) = if gguf.has_tensor(&q_norm_name) {
                (
                    Some(vector(gguf, &q_norm_name, c.head_dim)?),
                    Some(vector(gguf, &format!("{p}.attn_k_norm.weight"), c.head_dim)?),
                )
            } else {
                (None, None)
            };
            blocks.push(Block {
                attn_norm: vector(gguf, &format!("{p}.attn_norm.weight"), c.hidden)?,
                wq: linear(gguf, &format!("{p}.attn_q"))?,
                wk: linear(gguf, &format!("{p}.attn_k"))?,
                wv: linear(gguf, &format!("{p}.attn_v"))?,
                wo: linear(gguf, &format!("{p}.attn_output"))?,
                q_norm,
                k_norm,
                ffn_norm: vector(gguf, &format!("{p}.ffn_norm.weight"), c.hidden)?,
                gate: linear(gguf, &format!("{p}.ffn_gate"))?,
                up: linear(gguf, &format!("{p}.ffn_up"))?,
                down: linear(gguf, &format!("{p}.ffn_down"))?,
            });
        }
        let output_norm = vector(gguf, "output_norm.weight", c.hidden)?;
        let cache = (0..c.n_layer)
            .map(|_| LayerCache { keys: vec![Vec::new(); c.n_kv_head], values: vec![Vec::new(); c.n_kv_head] })
            .collect();
        Ok(Self {
            config,
            embeddings,
            blocks,
            output_norm,
            output,
            cache,
            len: 0,
            rope_cos: Vec::new(),
            rope_sin: Vec::new(),
        })
    }

    /// The model's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Tokens currently in the KV cache.
    pub fn cached_len(&self) -> usize {
        self.len
    }

    /// Forgets every cached position from `len` on.
    pub fn truncate(&mut self, len: usize) {
        let len = len.min(self.len);
        let width = len * self.config.head_dim;
        for layer in &mut self.cache {
            layer.keys.iter_mut().chain(layer.values.iter_mut()).for_each(|v| v.truncate(width));
        }
        self.len = len;
    }

    fn ensure_rope(&mut self, positions: usize) {
        let half = self.config.rope_dim / 2;
        let have = self.rope_cos.len() / half.max(1);
        if have >= positions || half == 0 {
            return;
        }
        let target = positions.next_power_of_two();
        for pos in have..target {
            for i in 0..half {
                let freq = 1.0 / self.config.rope_theta.powf((2 * i) as f32 / self.config.rope_dim as f32);
                let angle = pos as f32 * freq;
                self.rope_cos.push(angle.cos());
                self.rope_sin.push(angle.sin());
            }
        }
    }

    /// Feeds `tokens` at the positions after the cached ones and returns the logits of the last.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        let rows = tokens.len();
        if rows == 0 {
            return Err(ModelError::Inference("forward called with no tokens".into()));
        }
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= self.config.vocab) {
            return Err(ModelError::Inference(format!("token id {bad} is outside the vocabulary")));
        }
        let c = self.config.clone();
        let start = self.len;
        self.ensure_rope(start + rows);
        let ids = Tensor::from_slice(tokens, rows, &Device::Cpu)?;
        let mut x = self.embeddings.embedding(&ids)?.flatten_all()?.to_vec1::<f32>()?;
        for (layer, block) in self.blocks.iter().enumerate() {
            let h = rms_norm(&x, &block.attn_norm, c.eps);
            let [mut q, mut k, v]: [Vec<f32>; 3] = Linear::forward_all(&[&block.wq, &block.wk, &block.wv], &h, rows)?
                .try_into()
                .map_err(|_| ModelError::Inference("attention projections went missing".into()))?;
            if let (Some(qn), Some(kn)) = (&block.q_norm, &block.k_norm) {
                q = rms_norm(&q, qn, c.eps);
                k = rms_norm(&k, kn, c.eps);
            }
            rotate(&mut q, c.n_head, c.head_dim, c.rope_dim, c.rope_neox, start, &self.rope_cos, &self.rope_sin);
            rotate(&mut k, c.n_kv_head, c.head_dim, c.rope_dim, c.rope_neox, start, &self.rope_cos, &self.rope_sin);
            let cache = &mut self.cache[layer];
            for row in 0..rows {
                for head in 0..c.n_kv_head {
                    let at = (row * c.n_kv_head + head) * c.head_dim;
                    cache.keys[head].extend_from_slice(&k[at..at + c.head_dim]);
                    cache.values[head].extend_from_slice(&v[at..at + c.head_dim]);
                }
            }
            let attended = attention(&q, &cache.keys, &cache.values, c.n_head, c.head_dim, start, rows);
            let o = block.wo.forward(&attended, rows)?;
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let h = rms_norm(&x, &block.ffn_norm, c.eps);
            let [gate, up]: [Vec<f32>; 2] = Linear::forward_all(&[&block.gate, &block.up], &h, rows)?
                .try_into()
                .map_err(|_| ModelError::Inference("feed-forward projections went missing".into()))?;
            let act = swiglu(&gate, &up);
            let d = block.down.forward(&act, rows)?;
            x.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
        }
        self.len = start + rows;
        let last = &x[(rows - 1) * c.hidden..];
        let h = rms_norm(last, &self.output_norm, c.eps);
        self.output.forward(&h, 1)
    }
}

/// SiLU of `gate` times `up`, elementwise, with the branch-free `exp` (it vectorises, and every
/// build computes the same bits).
fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    gate.iter().zip(up).map(|(&g, &u)| g / (1.0 + exp(-g)) * u).collect()
}

/// RMS norm of each `weight.len()`-wide row of `x`.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(weight.len()) {
        let mean = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        out.extend(row.iter().zip(weight).map(|(v, w)| v * scale * w));
    }
    out
}

/// Applies the rotary embedding to every head of every row of `x`, which is rows × `n_heads` ×
/// `head_dim`; row `r` is at position `start + r`.
#[allow(clippy::too_many_arguments)]
fn rotate(
    x: &mut [f32],
    n_heads: usize,
    head_dim: usize,
    rope_dim: usize,
    neox: bool,
    start: usize,
    cos: &[f32],
    sin: &[f32],
) {
    let half = rope_dim / 2;
    if half == 0 {
        return;
    }
    for (row, values) in x.chunks_exact_mut(n_heads * head_dim).enumerate() {
        let cos = &cos[(start + row) * half..][..half];
        let sin = &sin[(start + row) * half..][..half];
        for head in values.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let (a, b) = if neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cos[i] - x1 * sin[i];
                head[b] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }
}
