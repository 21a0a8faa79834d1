//! Causal attention over the KV cache, tiled for the cache hierarchy (flash-attention style).
//!
//! The queries that share a key/value head (grouped-query attention: every head of a group, for
//! several rows) are processed together: each tile of [`KEY_TILE`] keys and values is read once
//! from memory and used by up to [`QUERIES_PER_ITEM`] queries while it sits in L1, with an online
//! softmax (running maximum and sum per query) so that no row of scores is ever stored whole.
//! At a 3k-token prompt this reads the cache about 64 times less often than one query at a time.
//!
//! Bit-exactness: a query's result depends only on the query, the keys and values it may see and
//! the fixed tile boundaries (absolute positions `0, KEY_TILE, 2·KEY_TILE, …`), never on which
//! other queries share its work item. Floating-point operations are not reordered or fused (Rust
//! does neither), so the AVX-512, AVX2 and portable builds of the same code agree bit for bit,
//! and a token's attention is the same whether it came in a prompt batch or alone.

use candle_core::utils::barrier_pool;

use crate::kernels::SharedOut;

/// Keys per tile: a tile of keys and one of values (16 × 128 × 4 bytes each at the usual head
/// width) fit in L1 together.
pub(crate) const KEY_TILE: usize = 16;

/// Queries that go through the score and value kernels together (independent accumulators).
const QUERY_BLOCK: usize = 4;

/// Queries per work item: they share every key tile the item loads.
const QUERIES_PER_ITEM: usize = 64;

/// Causal attention of `rows` query rows (at positions `start..start + rows`; `q` is rows ×
/// `n_head` × `head_dim`) over the cache, which already holds their own keys and values:
/// `keys[h]` and `values[h]` are the positions of key/value head `h`, `head_dim` wide each.
/// Returns rows × `n_head` × `head_dim`.
pub(crate) fn attention(
    q: &[f32],
    keys: &[Vec<f32>],
    values: &[Vec<f32>],
    n_head: usize,
    head_dim: usize,
    start: usize,
    rows: usize,
) -> Vec<f32> {
    let n_kv = keys.len();
    let group = n_head / n_kv;
    let per_kv_head = rows * group;
    let chunks = per_kv_head.div_ceil(QUERIES_PER_ITEM);
    let mut out = vec![0f32; rows * n_head * head_dim];
    let shared = SharedOut::new(&mut out);
    let layout = Layout { n_head, group, head_dim, start };
    barrier_pool().execute_chunked(n_kv * chunks, |items| {
        let mut scratch = Scratch::default();
        for item in items {
            let (kv_head, chunk) = (item / chunks, item % chunks);
            let first = chunk * QUERIES_PER_ITEM;
            let queries = first..per_kv_head.min(first + QUERIES_PER_ITEM);
            let work = Item { q, keys: &keys[kv_head], values: &values[kv_head], kv_head, queries };
            run_item(&layout, &work, &mut scratch, &shared);
        }
    });
    out
}

/// Where the heads and rows of a pass are.
struct Layout {
    n_head: usize,
    group: usize,
    head_dim: usize,
    /// Position of the first query row.
    start: usize,
}

impl Layout {
    /// Offset in `q` (and in the output) of query `index` of key/value head `kv_head`; queries
    /// of one key/value head are numbered row by row, heads of the group within a row.
    fn offset(&self, kv_head: usize, index: usize) -> usize {
        let (row, head) = (index / self.group, kv_head * self.group + index % self.group);
        (row * self.n_head + head) * self.head_dim
    }

    /// Cached positions query `index` may attend to (its own included).
    fn visible(&self, index: usize) -> usize {
        self.start + index / self.group + 1
    }
}

/// One work item: some queries of one key/value head.
struct Item<'a> {
    q: &'a [f32],
    keys: &'a [f32],
    values: &'a [f32],
    kv_head: usize,
    queries: std::ops::Range<usize>,
}

/// Per-thread buffers, reused across items.
#[derive(Default)]
struct Scratch {
    /// The item's queries, scaled, padded to whole blocks.
    queries: Vec<f32>,
    /// Positions each query sees (0 for padding).
    visible: Vec<usize>,
    /// Running maximum score per query.
    max: Vec<f32>,
    /// Running sum of `exp(score - max)` per query.
    sum: Vec<f32>,
    /// Running weighted sum of values per query.
    acc: Vec<f32>,
}

fn run_item(layout: &Layout, item: &Item<'_>, s: &mut Scratch, out: &SharedOut) {
    let d = layout.head_dim;
    let count = item.queries.len();
    let padded = count.div_ceil(QUERY_BLOCK) * QUERY_BLOCK;
    let scale = 1.0 / (d as f32).sqrt();
    s.queries.clear();
    s.visible.clear();
    for index in item.queries.clone() {
        let at = layout.offset(item.kv_head, index);
        s.queries.extend(item.q[at..at + d].iter().map(|v| v * scale));
        s.visible.push(layout.visible(index));
    }
    s.queries.resize(padded * d, 0.0);
    s.visible.resize(padded, 0);
    s.max.clear();
    s.max.resize(padded, f32::NEG_INFINITY);
    s.sum.clear();
    s.sum.resize(padded, 0.0);
    s.acc.clear();
    s.acc.resize(padded * d, 0.0);
    let most = s.visible.iter().copied().max().unwrap_or(0);
    tiles(d, item.keys, item.values, most, s);
    for (i, index) in item.queries.clone().enumerate() {
        let inverse = 1.0 / s.sum[i];
        let row: Vec<f32> = s.acc[i * d..(i + 1) * d].iter().map(|v| v * inverse).collect();
        // SAFETY: query `index` of this key/value head belongs to this work item only.
        unsafe { out.write(layout.offset(item.kv_head, index), &row) };
    }
}

/// Runs every key tile up to position `most` over the scratch's queries.
fn tiles(d: usize, keys: &[f32], values: &[f32], most: usize, s: &mut Scratch) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has just been checked for AVX-512F.
            return unsafe { tiles_avx512(d, keys, values, most, s) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has just been checked for AVX2.
            return unsafe { tiles_avx2(d, keys, values, most, s) };
        }
    }
    tiles_portable(d, keys, values, most, s)
}

/// [`tiles_portable`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tiles_avx512(d: usize, keys: &[f32], values: &[f32], most: usize, s: &mut Scratch) {
    tiles_portable(d, keys, values, most, s)
}

/// [`tiles_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tiles_avx2(d: usize, keys: &[f32], values: &[f32], most: usize, s: &mut Scratch) {
    tiles_portable(d, keys, values, most, s)
}

#[inline(always)]
fn tiles_portable(d: usize, keys: &[f32], values: &[f32], most: usize, s: &mut Scratch) {
    for tile_start in (0..most).step_by(KEY_TILE) {
        let tile_len = KEY_TILE.min(most - tile_start);
        let tile_keys = &keys[tile_start * d..(tile_start + tile_len) * d];
        let tile_values = &values[tile_start * d..(tile_start + tile_len) * d];
        for block in 0..s.visible.len() / QUERY_BLOCK {
            let b = block * QUERY_BLOCK;
            let visible: [usize; QUERY_BLOCK] = std::array::from_fn(|i| s.visible[b + i]);
            if visible.iter().all(|&v| v <= tile_start) {
                continue;
            }
            let queries = &s.queries[b * d..(b + QUERY_BLOCK) * d];
            let mut weights = [[0f32; KEY_TILE]; QUERY_BLOCK];
            let mut scores = [[f32::NEG_INFINITY; KEY_TILE]; QUERY_BLOCK];
            for (j, key) in tile_keys.chunks_exact(d).enumerate() {
                let dots = dot4(queries, key);
                for i in 0..QUERY_BLOCK {
                    if tile_start + j < visible[i] {
                        scores[i][j] = dots[i];
                    }
                }
            }
            for i in 0..QUERY_BLOCK {
                let tile_max = scores[i].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                if tile_max == f32::NEG_INFINITY {
                    continue; // nothing this query may see in this tile
                }
                let (q, old) = (b + i, s.max[b + i]);
                let new = old.max(tile_max);
                if new != old {
                    // Rescale what was summed under the old maximum (nothing, the first time).
                    let factor = if old == f32::NEG_INFINITY { 0.0 } else { exp(old - new) };
                    s.sum[q] *= factor;
                    s.acc[q * d..(q + 1) * d].iter_mut().for_each(|a| *a *= factor);
                    s.max[q] = new;
                }
                let mut shifted = [0f32; KEY_TILE];
                for j in 0..KEY_TILE {
                    shifted[j] = (scores[i][j] - new).max(EXP_FLOOR);
                }
                let exps = exp16(shifted);
                for j in 0..KEY_TILE {
                    weights[i][j] = if scores[i][j] == f32::NEG_INFINITY { 0.0 } else { exps[j] };
                }
                s.sum[q] += weights[i].iter().sum::<f32>();
            }
            let acc = &mut s.acc[b * d..(b + QUERY_BLOCK) * d];
            for (j, value) in tile_values.chunks_exact(d).enumerate() {
                axpy4(acc, [weights[0][j], weights[1][j], weights[2][j], weights[3][j]], value);
            }
        }
    }
}

/// The dot products of four `d`-wide queries (contiguous in `queries`) with `key`, each summed
/// in sixteen lanes and then across them.
#[inline(always)]
fn dot4(queries: &[f32], key: &[f32]) -> [f32; QUERY_BLOCK] {
    let d = key.len();
    let mut acc = [[0f32; 16]; QUERY_BLOCK];
    let whole = d - d % 16;
    for c in (0..whole).step_by(16) {
        let k = &key[c..c + 16];
        for (i, lanes) in acc.iter_mut().enumerate() {
            let q = &queries[i * d + c..i * d + c + 16];
            for l in 0..16 {
                lanes[l] += q[l] * k[l];
            }
        }
    }
    std::array::from_fn(|i| {
        let tail: f32 = (whole..d).map(|c| queries[i * d + c] * key[c]).sum();
        acc[i].iter().sum::<f32>() + tail
    })
}

/// `acc[i] += weights[i] · value` for the four queries of a block.
#[inline(always)]
fn axpy4(acc: &mut [f32], weights: [f32; QUERY_BLOCK], value: &[f32]) {
    let d = value.len();
    for (i, row) in acc.chunks_exact_mut(d).enumerate() {
        let w = weights[i];
        row.iter_mut().zip(value).for_each(|(a, v)| *a += w * v);
    }
}

/// Below this, `exp` is treated as this (e^-87 ≈ 1.6e-38, still a normal `f32`).
const EXP_FLOOR: f32 = -87.0;

/// `e^x` for sixteen values at once, branch-free so that it vectorises.
#[inline(always)]
fn exp16(x: [f32; KEY_TILE]) -> [f32; KEY_TILE] {
    let mut out = [0f32; KEY_TILE];
    for j in 0..KEY_TILE {
        out[j] = exp(x[j]);
    }
    out
}

/// `e^x` for `x` in `[-87, 88]` (clamped there), within about 2 ulp: `2^n · e^r` with `n` the
/// nearest integer to `x / ln 2` and a degree-6 polynomial for `e^r`, `|r| ≤ ln 2 / 2`. Only
/// additions, multiplications and bit operations, so every build computes the same bits, and
/// `exp(0) == 1` exactly.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5 · 2^23: adding it rounds to an integer, which lands in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(EXP_FLOOR, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let exponent = (shifted.to_bits() as i32 - ROUND.to_bits() as i32 + 127) as u32;
    p * f32::from_bits(exponent << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention the textbook way, in `f64`.
    fn reference(q: &[f32], keys: &[Vec<f32>], values: &[Vec<f32>], n_head: usize, d: usize, start: usize) -> Vec<f32> {
        let rows = q.len() / (n_head * d);
        let group = n_head / keys.len();
        let mut out = vec![0f32; q.len()];
        for row in 0..rows {
            for head in 0..n_head {
                let (k, v) = (&keys[head / group], &values[head / group]);
                let query = &q[(row * n_head + head) * d..][..d];
                let visible = start + row + 1;
                let scores: Vec<f64> = (0..visible)
                    .map(|p| {
                        query.iter().zip(&k[p * d..(p + 1) * d]).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = weights.iter().sum();
                for i in 0..d {
                    let value: f64 = weights.iter().enumerate().map(|(p, w)| w * v[p * d + i] as f64).sum();
                    out[(row * n_head + head) * d + i] = (value / sum) as f32;
                }
            }
        }
        out
    }

    /// Deterministic pseudo-random values in [-scale, scale].
    fn noise(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn exp_is_accurate_and_exact_at_zero() {
        assert_eq!(exp(0.0), 1.0);
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            assert!(((got - want) / want).abs() < 4e-7, "exp({x}) = {got}, want {want}");
        }
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
    }

    #[test]
    fn tiled_attention_matches_the_textbook_and_not_the_batching() {
        // Grouped heads (3 query heads per key/value head), a head width that is not a multiple
        // of 16, a cache that does not end on a tile, and more queries than one work item.
        let (n_head, n_kv, d, start, rows) = (6, 2, 40, 37, 29);
        let total = start + rows;
        let keys: Vec<Vec<f32>> = (0..n_kv).map(|h| noise(total * d, 10 + h as u64, 1.0)).collect();
        let values: Vec<Vec<f32>> = (0..n_kv).map(|h| noise(total * d, 20 + h as u64, 1.0)).collect();
        let q = noise(rows * n_head * d, 3, 2.0);
        let got = attention(&q, &keys, &values, n_head, d, start, rows);
        let want = reference(&q, &keys, &values, n_head, d, start);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-5, "output {i}: {g} vs {w}");
        }
        // Each row alone gives the same bits as the batch.
        let width = n_head * d;
        for row in [0, 1, 17, rows - 1] {
            let alone = attention(&q[row * width..(row + 1) * width], &keys, &values, n_head, d, start + row, 1);
            let trimmed: Vec<Vec<f32>> = keys.iter().map(|k| k[..(start + row + 1) * d].to_vec()).collect();
            let trimmed_values: Vec<Vec<f32>> = values.iter().map(|v| v[..(start + row + 1) * d].to_vec()).collect();
            let short =
                attention(&q[row * width..(row + 1) * width], &trimmed, &trimmed_values, n_head, d, start + row, 1);
            assert_eq!(alone, got[row * width..(row + 1) * width], "row {row}");
            assert_eq!(short, alone, "row {row}: keys past the row change nothing");
        }
    }
}
