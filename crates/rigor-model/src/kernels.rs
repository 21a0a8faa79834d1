//! Quantized matrix products for decoding: a few activation rows times weight matrices kept in
//! 4-, 6- or 8-bit blocks (Q4_1, Q8_0, and the K-quants Q4_K and Q6_K), repacked at load for the
//! dot-product instructions.
//!
//! Generating one token reads every weight once, so decoding a small model is bound by the
//! instructions spent per weight and by the fixed cost of each product. These kernels keep both
//! low:
//! - weights keep their size (Q4_1: 20 bytes per 32 weights; Q8_0: 34 bytes; Q4_K: 18.5 bytes
//!   instead of 18): candle's Q4_1 kernel is scalar, and widening Q4_1 to Q8_0 reads 70% more.
//!   Q6_K is the exception: its 6-bit weights are widened to signed bytes (34.25 bytes per 32
//!   instead of 26.25), because unpacking 6 bits in the inner loop costs more than it saves;
//! - a K-quant super-block of 256 weights has one `f16` scale (and, for Q4_K, one for the
//!   offsets) and small integer scales per sub-block (6-bit per 32 weights for Q4_K, 8-bit per
//!   16 for Q6_K); their products are exact in `f32`, so each block of 32 is computed like a
//!   Q4_1 block (Q4_K) or a Q8_0 block with one scale per half (Q6_K), with the same rounding;
//! - at load, the rows are interleaved. Q4_1 and Q8_0 interleave the blocks of four consecutive
//!   rows (a quad): the four rows' scales sit together (one conversion of eight half floats serves
//!   four rows) and, for Q4_1, two rows share each byte (one load and two masks unpack 64
//!   weights). The K-quants interleave eight rows (an octet) four weights at a time: one 256-bit
//!   register holds four consecutive weights of each of the eight rows, one broadcast 4-byte
//!   activation word feeds all eight dot products, and each row's sum stays in its own lane, so
//!   a block of 32 costs one integer-to-float conversion and one fused multiply-add for eight
//!   rows and no horizontal sum; Q6_K's weights are kept as unsigned 6-bit values in bytes, and
//!   its offset of 32 enters once per half block through the activations' sums of 16 values;
//! - activations are quantized once to 8 bits per block of 32 (a scale, and the scale times the
//!   block's sum for Q4_1's offsets), as llama.cpp does, and shared by every matrix that reads
//!   the same input ([`multiply`] takes several: Q, K and V; gate and up);
//! - the integer dot products use AVX-512 VNNI (`vpdpbusd` on 256-bit registers) or AVX2
//!   (`vpmaddubsw` + `vpmaddwd`), chosen at run time, with a portable fallback;
//! - one call shares the row quads (octets) of all its matrices over candle's spinning barrier pool, so a
//!   layer costs a handful of thread hand-offs.
//!

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::utils::barrier_pool;
use rayon::prelude::*;

use crate::ModelError;

/// Weights per quantization block (per sub-block of the K-quants), and activation values per
/// quantization block.
pub(crate) const BLOCK: usize = 32;

/// Weights per K-quant super-block.
const SUPER: usize = 256;

/// Weight rows interleaved together by the Q4_1 and Q8_0 layout (a quad).
const QUAD: usize = 4;

/// Weight rows interleaved together by the K-quant layout (an octet): one 256-bit register holds
/// four consecutive weights of each of eight rows, so one broadcast activation word feeds eight
/// rows' dot products at once and each output is one lane (no horizontal sums).
const OCTET: usize = 8;

/// Weight formats with a kernel here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// GGUF block `d: f16, m: f16, qs: [u8; 16]`: weight `j` is `nibble_j * d + m`, with the
    /// low nibbles of `qs` holding weights 0..16 and the high ones 16..32.
    Q4_1,
    /// GGUF block `d: f16, qs: [i8; 32]`: weight `j` is `qs[j] * d`.
    Q8_0,
    /// GGUF super-block `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`: sub-block `s` (32
    /// weights) has a 6-bit scale `sc` and offset `m` packed in `scales`, and weight `j` of it is
    /// `nibble_j * d * sc - dmin * m`; sub-blocks `2i` and `2i + 1` take the low and high nibbles
    /// of `qs[32i..32i + 32]`.
    Q4K,
    /// GGUF super-block `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`: weight `w` is
    /// `(q6_w - 32) * d * scales[w / 16]`, its low 4 bits in `ql` and high 2 bits in `qh`.
    Q6K,
}

impl Format {
    /// The format of `dtype`, if it has a kernel here.
    pub(crate) fn of(dtype: GgmlDType) -> Option<Self> {
        match dtype {
            GgmlDType::Q4_1 => Some(Self::Q4_1),
            GgmlDType::Q8_0 => Some(Self::Q8_0),
            GgmlDType::Q4K => Some(Self::Q4K),
            GgmlDType::Q6K => Some(Self::Q6K),
            _ => None,
        }
    }

    /// Weights per GGUF block (per super-block for the K-quants).
    fn group(self) -> usize {
        match self {
            Self::Q4_1 | Self::Q8_0 => BLOCK,
            Self::Q4K | Self::Q6K => SUPER,
        }
    }

    /// Bytes of one GGUF block (super-block).
    fn block_bytes(self) -> usize {
        match self {
            Self::Q4_1 => 20,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q6K => 210,
        }
    }

    /// Weight rows interleaved in one pack: a quad, or an octet for the K-quants.
    fn pack_rows(self) -> usize {
        match self {
            Self::Q4_1 | Self::Q8_0 => QUAD,
            Self::Q4K | Self::Q6K => OCTET,
        }
    }

    /// Bytes of one packed block (super-block) of a pack: the scales, then the weights of its
    /// rows.
    fn pack_block_bytes(self) -> usize {
        match self {
            // d0..d3, m0..m3 as f16; rows 0 and 1 in the low and high nibbles of 32 bytes,
            // then rows 2 and 3 likewise.
            Self::Q4_1 => 16 + 64,
            // d0..d3 as f16; the 32 weights of each row.
            Self::Q8_0 => 8 + 4 * 32,
            // d0..d7, -dmin0..-dmin7 as f16; then per sub-block sc0..sc7, m0..m7 as bytes and
            // four 32-byte words: byte 4i + k of word v holds weight 4v + k of row i in its low
            // nibble and weight 16 + 4v + k in its high one.
            Self::Q4K => 32 + 8 * (16 + 128),
            // d0..d7 as f16; then per sub-block the scales of the first halves of rows 0..7 and
            // of their second halves as signed bytes, and eight 32-byte words: byte 4i + k of word
            // g is weight 4g + k of row i as its unsigned 6-bit value (`q6`, the weight being
            // `q6 - 32` times the scales).
            Self::Q6K => 16 + 8 * (16 + 256),
        }
    }

    /// Bytes of a pack's packed blocks for rows `cols` wide.
    fn pack_bytes(self, cols: usize) -> usize {
        cols / self.group() * self.pack_block_bytes()
    }

    /// Offset of the scales and weights of 32-weight block `b` inside a pack's packed row of
    /// blocks, and of its super-block's header (its own offset for Q4_1 and Q8_0).
    #[inline(always)]
    fn locate(self, b: usize) -> (usize, usize) {
        let size = self.pack_block_bytes();
        match self {
            Self::Q4_1 | Self::Q8_0 => (b * size, b * size),
            Self::Q4K => ((b / 8) * size, (b / 8) * size + 32 + (b % 8) * 144),
            Self::Q6K => ((b / 8) * size, (b / 8) * size + 16 + (b % 8) * 272),
        }
    }
}

/// Sub-block `s`'s 6-bit scale and offset of a Q4_K super-block's `scales` (llama.cpp's
/// `get_scale_min_k4`).
fn q4k_scale_min(s: usize, scales: &[u8]) -> (u8, u8) {
    if s < 4 {
        (scales[s] & 63, scales[s + 4] & 63)
    } else {
        ((scales[s + 4] & 15) | ((scales[s - 4] >> 6) << 4), (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4))
    }
}

/// The 6-bit value (0..64) of weight `w` of a Q6_K super-block.
fn q6k_value(block: &[u8], w: usize) -> u8 {
    let (half, l) = (w / 128, w % 128);
    let (group, l32) = (l / 32, l % 32);
    let low = block[64 * half + 32 * (group % 2) + l32] >> (4 * (group / 2)) & 15;
    let high = block[128 + 32 * half + l32] >> (2 * group) & 3;
    low | high << 4
}

/// The half float `value` with its sign flipped.
fn negated(value: &[u8]) -> [u8; 2] {
    [value[0], value[1] ^ 0x80]
}

/// A `rows` × `cols` weight matrix, its blocks repacked by packs of rows (quads or octets; the
/// last pack repeats the last row when `rows` is not a multiple of the pack).
pub(crate) struct QMatrix {
    format: Format,
    rows: usize,
    cols: usize,
    /// Pack after pack; within a pack, block (super-block) after block (`pack_block_bytes` each).
    packed: Vec<u8>,
}

impl QMatrix {
    /// Repacks a 2-D tensor of a supported format whose rows are whole blocks; `None` otherwise.
    pub(crate) fn new(tensor: &QTensor) -> Option<Self> {
        let format = Format::of(tensor.dtype())?;
        let &[rows, cols] = tensor.shape().dims() else { return None };
        let data = tensor.data().ok()?;
        let blocks = cols / format.group();
        if cols % format.group() != 0 || rows == 0 || data.len() != rows * blocks * format.block_bytes() {
            return None;
        }
        let source = |row: usize, b: usize| &data[(row * blocks + b) * format.block_bytes()..][..format.block_bytes()];
        let n = format.pack_rows();
        let pack_bytes = format.pack_bytes(cols);
        // Packs are independent: they are repacked in parallel, each into its own part.
        let mut all = vec![0u8; rows.div_ceil(n) * pack_bytes];
        all.par_chunks_mut(pack_bytes).enumerate().for_each(|(p, part)| {
            let mut packed = Vec::with_capacity(pack_bytes);
            let pack_rows: Vec<usize> = (0..n).map(|j| (p * n + j).min(rows - 1)).collect();
            for b in 0..blocks {
                let sources: Vec<&[u8]> = pack_rows.iter().map(|&r| source(r, b)).collect();
                match format {
                    Format::Q4_1 => {
                        sources.iter().for_each(|s| packed.extend_from_slice(&s[0..2]));
                        sources.iter().for_each(|s| packed.extend_from_slice(&s[2..4]));
                        for pair in sources.chunks_exact(2) {
                            let weight = |s: &[u8], j: usize| if j < 16 { s[4 + j] & 15 } else { s[4 + j - 16] >> 4 };
                            packed.extend((0..BLOCK).map(|j| weight(pair[0], j) | weight(pair[1], j) << 4));
                        }
                    }
                    Format::Q8_0 => {
                        sources.iter().for_each(|s| packed.extend_from_slice(&s[0..2]));
                        sources.iter().for_each(|s| packed.extend_from_slice(&s[2..34]));
                    }
                    Format::Q4K => {
                        sources.iter().for_each(|s| packed.extend_from_slice(&s[0..2]));
                        sources.iter().for_each(|s| packed.extend_from_slice(&negated(&s[2..4])));
                        for sub in 0..8 {
                            let scales: Vec<(u8, u8)> = sources.iter().map(|s| q4k_scale_min(sub, &s[4..16])).collect();
                            packed.extend(scales.iter().map(|&(sc, _)| sc));
                            packed.extend(scales.iter().map(|&(_, m)| m));
                            let qs = |s: &[u8], j: usize| s[16 + 32 * (sub / 2) + j] >> (4 * (sub % 2)) & 15;
                            for v in 0..4 {
                                for s in &sources {
                                    packed.extend((0..4).map(|k| qs(s, 4 * v + k) | qs(s, 16 + 4 * v + k) << 4));
                                }
                            }
                        }
                    }
                    Format::Q6K => {
                        sources.iter().for_each(|s| packed.extend_from_slice(&s[208..210]));
                        for sub in 0..8 {
                            for half in 0..2 {
                                packed.extend(sources.iter().map(|s| s[192 + 2 * sub + half]));
                            }
                            for g in 0..8 {
                                for s in &sources {
                                    packed.extend((0..4).map(|k| q6k_value(s, BLOCK * sub + 4 * g + k)));
                                }
                            }
                        }
                    }
                }
            }
            part.copy_from_slice(&packed);
        });
        Some(Self { format, rows, cols, packed: all })
    }

    /// The weights as `f32`, row-major (to check the packing); quads in parallel.
    #[cfg(test)]
    fn dequantize(&self) -> Vec<f32> {
        use rayon::prelude::*;
        let (cols, format) = (self.cols, self.format);
        let (n, pack_bytes) = (format.pack_rows(), format.pack_bytes(cols));
        let mut out = vec![0f32; self.rows * cols];
        out.par_chunks_mut(n * cols).zip(self.packed.par_chunks_exact(pack_bytes)).for_each(|(rows, pack)| {
            for (j, row) in rows.chunks_exact_mut(cols).enumerate() {
                for (b, row) in row.chunks_exact_mut(BLOCK).enumerate() {
                    let (head, at) = format.locate(b);
                    let block = &pack[at..];
                    for (i, w) in row.iter_mut().enumerate() {
                        *w = match format {
                            Format::Q4_1 => {
                                let nibble = block[16 + 32 * (j / 2) + i] >> (4 * (j % 2)) & 15;
                                f32::from(nibble) * f16(&block[2 * j..]) + f16(&block[8 + 2 * j..])
                            }
                            Format::Q8_0 => f32::from(block[8 + 32 * j + i] as i8) * f16(&block[2 * j..]),
                            Format::Q4K => {
                                let byte = block[16 + 32 * (i % 16 / 4) + 4 * j + i % 4];
                                let nibble = byte >> (4 * (i / 16)) & 15;
                                let d = f16(&pack[head + 2 * j..]) * f32::from(block[j]);
                                let m = f16(&pack[head + 16 + 2 * j..]) * f32::from(block[8 + j]);
                                f32::from(nibble) * d + m
                            }
                            Format::Q6K => {
                                let d = f16(&pack[head + 2 * j..]) * f32::from(block[8 * (i / 16) + j] as i8);
                                let q6 = block[16 + 32 * (i / 4) + 4 * j + i % 4];
                                f32::from(q6 as i8 - 32) * d
                            }
                        };
                    }
                }
            }
        });
        out
    }
}

/// The half float in the first two bytes of `bytes` (little-endian).
fn f16(bytes: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]])).to_f32()
}

/// Activation rows quantized to 8 bits per block of 32.
pub(crate) struct Activations {
    rows: usize,
    blocks: usize,
    /// `rows × blocks × 32` quantized values.
    qs: Vec<i8>,
    /// Scale of each block.
    d: Vec<f32>,
    /// Scale times the sum of the block's quantized values (Q4_1's offsets need it).
    s: Vec<f32>,
    /// Sums of the quantized values of each half block (16 values): two per block (Q6_K's
    /// unsigned weights need them).
    halves: Vec<i32>,
}

impl Activations {
    /// Quantizes `rows` rows of `x`; the row width must be a multiple of [`BLOCK`].
    pub(crate) fn quantize(x: &[f32], rows: usize) -> Self {
        let blocks = x.len() / rows.max(1) / BLOCK;
        let mut out = Self {
            rows,
            blocks,
            qs: vec![0; rows * blocks * BLOCK],
            d: vec![0.0; rows * blocks],
            s: vec![0.0; rows * blocks],
            halves: vec![0; rows * blocks * 2],
        };
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has just been checked for AVX2.
            unsafe { quantize_avx2(x, &mut out) };
            return out;
        }
        quantize_portable(x, &mut out);
        out
    }

    fn row(&self, r: usize) -> ActivationRow<'_> {
        let b = self.blocks;
        ActivationRow {
            qs: &self.qs[r * b * BLOCK..(r + 1) * b * BLOCK],
            d: &self.d[r * b..(r + 1) * b],
            s: &self.s[r * b..(r + 1) * b],
            halves: &self.halves[2 * r * b..2 * (r + 1) * b],
        }
    }
}

#[inline(always)]
fn quantize_portable(x: &[f32], out: &mut Activations) {
    for (i, block) in x.chunks_exact(BLOCK).take(out.d.len()).enumerate() {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut halves = [0i32; 2];
        for (j, (q, v)) in out.qs[i * BLOCK..(i + 1) * BLOCK].iter_mut().zip(block).enumerate() {
            let r = (v * inv).round_ties_even() as i32;
            halves[j / 16] += r;
            *q = r as i8;
        }
        let sum = halves[0] + halves[1];
        out.halves[2 * i..2 * i + 2].copy_from_slice(&halves);
        out.d[i] = d;
        out.s[i] = d * sum as f32;
    }
}

/// [`quantize_portable`] compiled for AVX2 (rounding becomes one instruction).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn quantize_avx2(x: &[f32], out: &mut Activations) {
    quantize_portable(x, out)
}

/// One quantized activation row.
#[derive(Clone, Copy)]
struct ActivationRow<'a> {
    qs: &'a [i8],
    d: &'a [f32],
    s: &'a [f32],
    halves: &'a [i32],
}

/// An output buffer that the work items of one pool call write at disjoint indices.
pub(crate) struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: every index is written by exactly one work item (the callers' contract), and the buffer
// outlives the pool call that writes it (it borrows the buffer mutably for its lifetime).
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Shares `buffer` for one pool call.
    pub(crate) fn new(buffer: &mut [f32]) -> Self {
        Self { ptr: buffer.as_mut_ptr(), len: buffer.len() }
    }

    /// Writes `values` at `at`.
    ///
    /// # Safety
    /// No other thread may access `at..at + values.len()` during the pool call.
    pub(crate) unsafe fn write(&self, at: usize, values: &[f32]) {
        assert!(at + values.len() <= self.len, "output range {at}+{} out of {}", values.len(), self.len);
        // SAFETY: in bounds (checked), and the range is this caller's alone (contract).
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), self.ptr.add(at), values.len()) };
    }
}

/// Activation rows that go through a pack's weights together (the weights are unpacked once).
const TILE: usize = 4;

/// Activation rows per work item: a pack's weights stay in the L1 cache while they go through.
const ROWS_PER_ITEM: usize = 8 * TILE;

/// `x` (rows × cols) times each matrix of `matrices` (all `cols` wide): one `rows × m.rows()`
/// output per matrix, row-major. Work items (a pack of one matrix, up to [`ROWS_PER_ITEM`]
/// activation rows) are shared out over the pool.
///
/// Each output is computed by the same operations in the same order whatever the number of rows
/// and however they are tiled, so a token's result does not depend on which tokens were fed with
/// it: reusing a cached prefix gives exactly what a cold start gives.
pub(crate) fn multiply(matrices: &[&QMatrix], x: &Activations) -> Result<Vec<Vec<f32>>, ModelError> {
    if let Some(m) = matrices.iter().find(|m| m.cols != x.blocks * BLOCK) {
        return Err(ModelError::Inference(format!("matrix is {} wide, input {}", m.cols, x.blocks * BLOCK)));
    }
    let mut outputs: Vec<Vec<f32>> = matrices.iter().map(|m| vec![0f32; x.rows * m.rows]).collect();
    let shared: Vec<SharedOut> = outputs.iter_mut().map(|o| SharedOut::new(o)).collect();
    let row_chunks = x.rows.div_ceil(ROWS_PER_ITEM);
    // Work items: matrix after matrix, pack after pack, row chunk after row chunk.
    let mut first_item = vec![0];
    for m in matrices {
        first_item.push(first_item[first_item.len() - 1] + m.rows.div_ceil(m.format.pack_rows()) * row_chunks);
    }
    let items = first_item[first_item.len() - 1];
    let simd = Simd::detect();
    barrier_pool().execute_chunked(items, |range| {
        for item in range {
            let which = first_item.partition_point(|&f| f <= item) - 1;
            let (m, out) = (matrices[which], &shared[which]);
            let (pack, chunk) = ((item - first_item[which]) / row_chunks, (item - first_item[which]) % row_chunks);
            let pack_bytes = m.format.pack_bytes(m.cols);
            let packed = &m.packed[pack * pack_bytes..(pack + 1) * pack_bytes];
            let first_row = pack * m.format.pack_rows();
            let rows = chunk * ROWS_PER_ITEM..x.rows.min((chunk + 1) * ROWS_PER_ITEM);
            for tile in rows.step_by(TILE).map(|r| r..x.rows.min(r + TILE)) {
                let dots = dot_tile(simd, m.format, packed, x, tile.clone());
                for (r, dots) in tile.zip(dots) {
                    let real = m.format.pack_rows().min(m.rows - first_row);
                    for (j, dot) in dots.iter().take(real).enumerate() {
                        // SAFETY: (r, first_row + j) belongs to this work item only.
                        unsafe { out.write(r * m.rows + first_row + j, std::slice::from_ref(dot)) };
                    }
                }
            }
        }
    });
    Ok(outputs)
}

/// The instruction set the kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simd {
    #[cfg(target_arch = "x86_64")]
    Vnni,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Simd {
    /// The best this CPU has (the detection is cached by the standard library).
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            if std::arch::is_x86_feature_detected!("avx512vnni") && std::arch::is_x86_feature_detected!("avx512vl") {
                return Self::Vnni;
            }
            return Self::Avx2;
        }
        Self::Portable
    }
}

/// The dot products of one pack (four or eight rows, the rest of the array zero) with each
/// activation row of `tile` (at most [`TILE`] rows).
fn dot_tile(
    simd: Simd,
    format: Format,
    packed: &[u8],
    x: &Activations,
    tile: std::ops::Range<usize>,
) -> [[f32; OCTET]; TILE] {
    assert!(packed.len() == format.pack_bytes(x.blocks * BLOCK) && tile.end <= x.rows && tile.len() <= TILE);
    #[cfg(target_arch = "x86_64")]
    {
        /// Calls `$kernel` with the tile as an array of its length.
        macro_rules! tiled {
            ($kernel:path) => {{
                let r = tile.start;
                // SAFETY: `Simd::detect` checked the kernel's features; the lengths are checked
                // above (every row of `x` holds `x.blocks` blocks).
                unsafe {
                    match tile.len() {
                        1 => padded($kernel(packed, [x.row(r)])),
                        2 => padded($kernel(packed, [x.row(r), x.row(r + 1)])),
                        3 => padded($kernel(packed, [x.row(r), x.row(r + 1), x.row(r + 2)])),
                        _ => padded($kernel(packed, [x.row(r), x.row(r + 1), x.row(r + 2), x.row(r + 3)])),
                    }
                }
            }};
        }
        match (simd, format) {
            (Simd::Vnni, Format::Q4_1) => return tiled!(x86::q4_1_vnni),
            (Simd::Vnni, Format::Q8_0) => return tiled!(x86::q8_0_vnni),
            (Simd::Vnni, Format::Q4K) => return tiled!(x86::q4k_vnni),
            (Simd::Vnni, Format::Q6K) => return tiled!(x86::q6k_vnni),
            (Simd::Avx2, Format::Q4_1) => return tiled!(x86::q4_1_avx2),
            (Simd::Avx2, Format::Q8_0) => return tiled!(x86::q8_0_avx2),
            (Simd::Avx2, Format::Q4K) => return tiled!(x86::q4k_avx2),
            (Simd::Avx2, Format::Q6K) => return tiled!(x86::q6k_avx2),
            (Simd::Portable, _) => {}
        }
    }
    std::array::from_fn(|i| {
        if tile.start + i < tile.end { portable_pack(format, packed, x.row(tile.start + i)) } else { [0.0; OCTET] }
    })
}

/// The dot products of `R` activation rows with a pack of `N` weight rows as a full tile of
/// octets (zeros past them), so that a tile needs no allocation.
fn padded<const N: usize, const R: usize>(dots: [[f32; N]; R]) -> [[f32; OCTET]; TILE] {
    std::array::from_fn(|r| std::array::from_fn(|j| if r < R && j < N { dots[r][j] } else { 0.0 }))
}

/// Reference kernel in plain Rust: where AVX2 is missing, and to test the fast ones. For the
/// K-quants it takes the vector kernels' steps in their order, each lane being one row.
fn portable_pack(format: Format, packed: &[u8], x: ActivationRow<'_>) -> [f32; OCTET] {
    let mut total = [0f32; OCTET];
    for b in 0..x.d.len() {
        let (head, at) = format.locate(b);
        let block = &packed[at..];
        let a = &x.qs[b * BLOCK..(b + 1) * BLOCK];
        // Integer dot product of row `j`'s weights (bytes `w`, read as `value`) with `a`.
        let dot = |w: &[u8], value: &dyn Fn(u8) -> i32| -> i32 {
            w.iter().zip(a).map(|(&w, &v)| value(w) * i32::from(v)).sum()
        };
        // Weight `i` of row `j` of an octet block whose words start `at` bytes in.
        let octet = |at: usize, j: usize, i: usize| block[at + 32 * (i / 4) + 4 * j + i % 4];
        for (j, t) in total.iter_mut().enumerate().take(format.pack_rows()) {
            let nibble = |w: u8| i32::from((w >> (4 * (j % 2))) & 15);
            let signed = |w: u8| i32::from(w as i8);
            match format {
                Format::Q4_1 => {
                    let sum = dot(&block[16 + 32 * (j / 2)..][..BLOCK], &nibble);
                    *t += f16(&block[2 * j..]) * x.d[b] * sum as f32 + f16(&block[8 + 2 * j..]) * x.s[b];
                }
                Format::Q8_0 => {
                    *t += f16(&block[2 * j..]) * x.d[b] * dot(&block[8 + 32 * j..][..BLOCK], &signed) as f32;
                }
                Format::Q4K => {
                    let sum: i32 = (0..BLOCK)
                        .map(|i| i32::from(octet(16, j, i % 16) >> (4 * (i / 16)) & 15) * i32::from(a[i]))
                        .sum();
                    let scale = f16(&packed[head + 2 * j..]) * f32::from(block[j]);
                    let offset = f16(&packed[head + 16 + 2 * j..]) * f32::from(block[8 + j]);
                    *t = (sum as f32).mul_add(scale * x.d[b], *t);
                    *t = offset.mul_add(x.s[b], *t);
                }
                Format::Q6K => {
                    let d = f16(&packed[head + 2 * j..]);
                    for h in 0..2 {
                        let sum = -32 * x.halves[2 * b + h]
                            + (16 * h..16 * h + 16).map(|i| i32::from(octet(16, j, i)) * i32::from(a[i])).sum::<i32>();
                        let scale = d * f32::from(block[8 * h + j] as i8);
                        *t = (sum as f32).mul_add(scale * x.d[b], *t);
                    }
                }
            }
        }
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{ActivationRow, BLOCK, Format, OCTET, QUAD};

    /// `acc` plus the sums of four adjacent products of unsigned `w` and signed `a` bytes, with
    /// VNNI.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    fn dot_u8_i8_vnni(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, w, a)
    }

    /// [`dot_u8_i8_vnni`] with AVX2 (the pair sums must fit in `i16`: true for 4- and 6-bit
    /// weights and for weights made unsigned by moving their sign onto `a`).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot_u8_i8_avx2(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1)))
    }

    /// `acc` plus the products of unsigned `w` and signed `a` bytes, gathered for [`finish_vnni`]:
    /// with VNNI, the sums of four adjacent products in each 32-bit lane.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    fn gather_vnni(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, w, a)
    }

    /// The sums of four adjacent products in each 32-bit lane of what [`gather_vnni`] gathered.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    fn finish_vnni(acc: __m256i) -> __m256i {
        acc
    }

    /// `acc` plus the products of unsigned `w` and signed `a` bytes, gathered for [`finish_avx2`]:
    /// with AVX2, the sums of adjacent pairs in 16-bit lanes, which wrap, so the caller bounds
    /// what one gathering holds (a pair of 4-bit weights and 8-bit activations is at most
    /// 2 · 15 · 127 = 3810, eight fit; one of 6-bit weights 16002, two fit). One widening per
    /// gathering instead of one per product halves the instructions of a K-quant block.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn gather_avx2(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
        _mm256_add_epi16(acc, _mm256_maddubs_epi16(w, a))
    }

    /// The sums of four adjacent products in each 32-bit lane of what [`gather_avx2`] gathered.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn finish_avx2(acc: __m256i) -> __m256i {
        _mm256_madd_epi16(acc, _mm256_set1_epi16(1))
    }

    /// Two gatherings of the same kind added (a gathering bounded by the sum of both bounds).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    fn join_vnni(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi32(a, b)
    }

    /// Two gatherings of the same kind added (a gathering bounded by the sum of both bounds).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn join_avx2(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi16(a, b)
    }

    /// The four bytes at `at` in every 32-bit lane.
    ///
    /// # Safety
    /// `at..at + 4` is readable.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn word(at: *const i8) -> __m256i {
        _mm256_set1_epi32(unsafe { at.cast::<i32>().read_unaligned() })
    }

    /// The eight unsigned (`signed` false) or signed bytes at `at` as floats.
    ///
    /// # Safety
    /// `at..at + 8` is readable.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn small_ints(at: *const u8, signed: bool) -> __m256 {
        let bytes = unsafe { _mm_loadl_epi64(at.cast()) };
        _mm256_cvtepi32_ps(if signed { _mm256_cvtepi8_epi32(bytes) } else { _mm256_cvtepu8_epi32(bytes) })
    }

    /// The eight half floats at `at` as floats.
    ///
    /// # Safety
    /// `at..at + 16` is readable.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn halves(at: *const u8) -> __m256 {
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(at.cast()) })
    }

    /// Sum of the eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(v: __m256) -> f32 {
        let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pair = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
        _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)))
    }

    /// Lane `j` of `v` in every lane.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn lane(v: __m256, j: i32) -> __m256 {
        _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(j))
    }

    /// Lane `j` of `v` in the first four lanes and lane `j + 4` in the last four.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn lanes(v: __m256, j: i32) -> __m256 {
        _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(j, j, j, j, j + 4, j + 4, j + 4, j + 4))
    }

    // Scales of one 32-weight block of a quad, from its super-block's header `head` and its own
    // bytes `block` (the same pointer for Q4_1 and Q8_0): [d0 … d3, m0 … m3] for Q4_1
    // (weight = nibble · d + m), the four scales twice for Q8_0.

    /// Q4_1: the block's own scales and offsets.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_1_scales(_head: *const u8, block: *const u8) -> __m256 {
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(block.cast()) })
    }

    /// Q8_0: the block's four scales, twice.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0_scales(_head: *const u8, block: *const u8) -> __m256 {
        let d = _mm_cvtph_ps(unsafe { _mm_loadl_epi64(block.cast()) });
        _mm256_set_m128(d, d)
    }

    /// A kernel of one instruction set for a 4-bit format with offsets (weight = nibble · d + m):
    /// a packed quad dotted with `R` activation rows. `$scales` gives a block's
    /// [d0 … d3, m0 … m3]; the nibbles of rows 0 and 1, then of rows 2 and 3, are 32 bytes each
    /// `$nibbles` bytes into the block. Every (row, weight row) pair goes through the same
    /// operations in the same order whatever `R` is.
    ///
    /// # Safety (of the generated function)
    /// The CPU has the features enabled here; `packed` holds `x.d.len()` blocks of the format
    /// for every row `x` of `xs`, which all have as many blocks and 32 values per block.
    macro_rules! four_bit {
        ($name:ident, $format:expr, $scales:ident, $nibbles:expr, $features:literal, $dot:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const R: usize>(packed: &[u8], xs: [ActivationRow<'_>; R]) -> [[f32; QUAD]; R] {
                let low = _mm256_set1_epi8(15);
                let mut acc = [[_mm256_setzero_ps(); QUAD]; R];
                let mut offsets = [_mm256_setzero_ps(); R];
                for b in 0..xs[0].d.len() {
                    let (head, at) = $format.locate(b);
                    // SAFETY (reads): in bounds by the contract above.
                    let (head, block) = unsafe { (packed.as_ptr().add(head), packed.as_ptr().add(at)) };
                    let scales = unsafe { $scales(head, block) };
                    let mut a = [_mm256_setzero_si256(); R];
                    let mut scaled = [_mm256_setzero_ps(); R];
                    for r in 0..R {
                        let x = xs[r];
                        a[r] = unsafe { _mm256_loadu_si256(x.qs.as_ptr().add(b * BLOCK).cast()) };
                        let (da, sa) = unsafe { (*x.d.get_unchecked(b), *x.s.get_unchecked(b)) };
                        // [d0·da … d3·da, m0·sa … m3·sa]
                        scaled[r] =
                            _mm256_mul_ps(scales, _mm256_blend_ps::<0xF0>(_mm256_set1_ps(da), _mm256_set1_ps(sa)));
                        offsets[r] = _mm256_add_ps(offsets[r], scaled[r]);
                    }
                    for pair in 0..2 {
                        let both = unsafe { _mm256_loadu_si256(block.add($nibbles + 32 * pair).cast()) };
                        let rows = [_mm256_and_si256(both, low), _mm256_and_si256(_mm256_srli_epi16::<4>(both), low)];
                        for (half, w) in rows.into_iter().enumerate() {
                            let j = 2 * pair + half;
                            for r in 0..R {
                                let products = _mm256_cvtepi32_ps($dot(_mm256_setzero_si256(), w, a[r]));
                                acc[r][j] = _mm256_fmadd_ps(products, lane(scaled[r], j as i32), acc[r][j]);
                            }
                        }
                    }
                }
                std::array::from_fn(|r| {
                    let mut mins = [0f32; 8];
                    // SAFETY: `mins` holds eight floats.
                    unsafe { _mm256_storeu_ps(mins.as_mut_ptr(), offsets[r]) };
                    std::array::from_fn(|j| hsum(acc[r][j]) + mins[QUAD + j])
                })
            }
        };
    }

    /// A kernel of one instruction set for a signed 8-bit format (weight = q · d, with one `d`
    /// per half block): `$scales` gives a block's scales (for rows 0 … 3, twice), and the 32
    /// weights of each row follow 8 bytes into the block. Same contract as [`four_bit`].
    macro_rules! eight_bit {
        ($name:ident, $format:expr, $scales:ident, $features:literal, $dot:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const R: usize>(packed: &[u8], xs: [ActivationRow<'_>; R]) -> [[f32; QUAD]; R] {
                let mut acc = [[_mm256_setzero_ps(); QUAD]; R];
                for b in 0..xs[0].d.len() {
                    let (head, at) = $format.locate(b);
                    // SAFETY (reads): in bounds by the contract above.
                    let (head, block) = unsafe { (packed.as_ptr().add(head), packed.as_ptr().add(at)) };
                    let scales = unsafe { $scales(head, block) };
                    let mut a = [_mm256_setzero_si256(); R];
                    let mut scaled = [_mm256_setzero_ps(); R];
                    for r in 0..R {
                        a[r] = unsafe { _mm256_loadu_si256(xs[r].qs.as_ptr().add(b * BLOCK).cast()) };
                        scaled[r] = _mm256_mul_ps(scales, _mm256_set1_ps(unsafe { *xs[r].d.get_unchecked(b) }));
                    }
                    for j in 0..QUAD {
                        let w = unsafe { _mm256_loadu_si256(block.add(8 + 32 * j).cast()) };
                        // Unsigned weights: their signs move onto the activations.
                        let unsigned = _mm256_sign_epi8(w, w);
                        for r in 0..R {
                            let zero = _mm256_setzero_si256();
                            let products = _mm256_cvtepi32_ps($dot(zero, unsigned, _mm256_sign_epi8(a[r], w)));
                            acc[r][j] = _mm256_fmadd_ps(products, lanes(scaled[r], j as i32), acc[r][j]);
                        }
                    }
                }
                std::array::from_fn(|r| std::array::from_fn(|j| hsum(acc[r][j])))
            }
        };
    }

    /// A Q4_K kernel of one instruction set: a packed octet dotted with `R` activation rows, each
    /// lane of the accumulators being one weight row. Per 32-weight block and activation row,
    /// the integer sums of eight words of four weights (against the activation's matching word,
    /// broadcast) take one conversion and two multiply-adds: the block's scale `d · sc` times the
    /// activation's scale, and its offset `-dmin · m` times the activation's scaled sum. Every
    /// (row, weight row) pair goes through the same operations in the same order whatever `R`
    /// is, and the same as [`super::portable_pack`]'s.
    ///
    /// # Safety (of the generated function)
    /// As for [`four_bit`].
    macro_rules! octet_q4k {
        ($name:ident, $features:literal, $gather:ident, $join:ident, $finish:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const R: usize>(packed: &[u8], xs: [ActivationRow<'_>; R]) -> [[f32; OCTET]; R] {
                let low = _mm256_set1_epi8(15);
                let mut acc = [_mm256_setzero_ps(); R];
                for b in 0..xs[0].d.len() {
                    let (head, at) = Format::Q4K.locate(b);
                    // SAFETY (reads): in bounds by the contract above.
                    let (head, block) = unsafe { (packed.as_ptr().add(head), packed.as_ptr().add(at)) };
                    let (scale, offset) = unsafe {
                        (
                            _mm256_mul_ps(halves(head), small_ints(block, false)),
                            _mm256_mul_ps(halves(head.add(16)), small_ints(block.add(8), false)),
                        )
                    };
                    // Weights 0..16 and 16..32 summed apart: two dependency chains per row.
                    let mut first = [_mm256_setzero_si256(); R];
                    let mut second = [_mm256_setzero_si256(); R];
                    for v in 0..4 {
                        let both = unsafe { _mm256_loadu_si256(block.add(16 + 32 * v).cast()) };
                        let (lo, hi) =
                            (_mm256_and_si256(both, low), _mm256_and_si256(_mm256_srli_epi16::<4>(both), low));
                        for r in 0..R {
                            let a = unsafe { xs[r].qs.as_ptr().add(b * BLOCK) };
                            first[r] = $gather(first[r], lo, unsafe { word(a.add(4 * v)) });
                            second[r] = $gather(second[r], hi, unsafe { word(a.add(16 + 4 * v)) });
                        }
                    }
                    for r in 0..R {
                        let (da, sa) = unsafe { (*xs[r].d.get_unchecked(b), *xs[r].s.get_unchecked(b)) };
                        // Eight words of 4-bit weights: within one gathering's bound.
                        let sum = _mm256_cvtepi32_ps($finish($join(first[r], second[r])));
                        acc[r] = _mm256_fmadd_ps(sum, _mm256_mul_ps(scale, _mm256_set1_ps(da)), acc[r]);
                        acc[r] = _mm256_fmadd_ps(offset, _mm256_set1_ps(sa), acc[r]);
                    }
                }
                let mut out = [[0f32; OCTET]; R];
                // SAFETY: each row of `out` holds eight floats.
                (0..R).for_each(|r| unsafe { _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r]) });
                out
            }
        };
    }

    /// A Q6_K kernel of one instruction set, laid out as [`octet_q4k`]: the weights are their
    /// unsigned 6-bit values, so each half block's integer sum starts at `-32` times the
    /// activation half's sum, and takes its own scale `d · sc`.
    ///
    /// # Safety (of the generated function)
    /// As for [`four_bit`].
    macro_rules! octet_q6k {
        ($name:ident, $features:literal, $gather:ident, $finish:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name<const R: usize>(packed: &[u8], xs: [ActivationRow<'_>; R]) -> [[f32; OCTET]; R] {
                let mut acc = [_mm256_setzero_ps(); R];
                for b in 0..xs[0].d.len() {
                    let (head, at) = Format::Q6K.locate(b);
                    // SAFETY (reads): in bounds by the contract above.
                    let (head, block) = unsafe { (packed.as_ptr().add(head), packed.as_ptr().add(at)) };
                    let d = unsafe { halves(head) };
                    let scales = unsafe { [0, 8].map(|h| _mm256_mul_ps(d, small_ints(block.add(h), true))) };
                    let mut sums: [[__m256i; R]; 2] = std::array::from_fn(|h| {
                        std::array::from_fn(|r| {
                            _mm256_set1_epi32(-32 * unsafe { *xs[r].halves.get_unchecked(2 * b + h) })
                        })
                    });
                    // Two words of 6-bit weights per gathering (its bound).
                    for pair in [0, 2] {
                        let w = unsafe {
                            [pair, pair + 1, pair + 4, pair + 5]
                                .map(|g| _mm256_loadu_si256(block.add(16 + 32 * g).cast()))
                        };
                        for r in 0..R {
                            let a = unsafe { xs[r].qs.as_ptr().add(b * BLOCK) };
                            for h in 0..2 {
                                let at = |g: usize| unsafe { word(a.add(16 * h + 4 * g)) };
                                let zero = _mm256_setzero_si256();
                                let part = $gather($gather(zero, w[2 * h], at(pair)), w[2 * h + 1], at(pair + 1));
                                sums[h][r] = _mm256_add_epi32(sums[h][r], $finish(part));
                            }
                        }
                    }
                    for r in 0..R {
                        let da = _mm256_set1_ps(unsafe { *xs[r].d.get_unchecked(b) });
                        for h in 0..2 {
                            let sum = _mm256_cvtepi32_ps(sums[h][r]);
                            acc[r] = _mm256_fmadd_ps(sum, _mm256_mul_ps(scales[h], da), acc[r]);
                        }
                    }
                }
                let mut out = [[0f32; OCTET]; R];
                // SAFETY: each row of `out` holds eight floats.
                (0..R).for_each(|r| unsafe { _mm256_storeu_ps(out[r].as_mut_ptr(), acc[r]) });
                out
            }
        };
    }

    /// Generates the kernels of one instruction set.
    macro_rules! kernels {
        ($features:literal, $dot:ident, [$gather:ident, $join:ident, $finish:ident], $q4_1:ident, $q8_0:ident, $q4k:ident, $q6k:ident) => {
            four_bit!($q4_1, Format::Q4_1, q4_1_scales, 16, $features, $dot);
            octet_q4k!($q4k, $features, $gather, $join, $finish);
            eight_bit!($q8_0, Format::Q8_0, q8_0_scales, $features, $dot);
            octet_q6k!($q6k, $features, $gather, $finish);
        };
    }

    kernels!(
        "avx2,fma,f16c,avx512vnni,avx512vl",
        dot_u8_i8_vnni,
        [gather_vnni, join_vnni, finish_vnni],
        q4_1_vnni,
        q8_0_vnni,
        q4k_vnni,
        q6k_vnni
    );
    kernels!(
        "avx2,fma,f16c",
        dot_u8_i8_avx2,
        [gather_avx2, join_avx2, finish_avx2],
        q4_1_avx2,
        q8_0_avx2,
        q4k_avx2,
        q6k_avx2
    );
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// A `rows × cols` matrix of varied values quantized to `dtype`: packed, and dequantized by
    /// candle.
    fn matrix(rows: usize, cols: usize, dtype: GgmlDType) -> (QMatrix, Vec<f32>) {
        let values: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.3).collect();
        let t = Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, dtype).unwrap();
        let dequantized = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (QMatrix::new(&q).unwrap(), dequantized)
    }

    /// `x` (rows of `cols`) times the rows of `w`, in f32.
    fn reference(w: &[f32], x: &[f32], cols: usize) -> Vec<f32> {
        x.chunks_exact(cols)
            .flat_map(|xr| w.chunks_exact(cols).map(move |wr| wr.iter().zip(xr).map(|(a, b)| a * b).sum::<f32>()))
            .collect()
    }

    /// Every format with a kernel.
    const FORMATS: [GgmlDType; 4] = [GgmlDType::Q4_1, GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q6K];

    #[test]
    fn repacking_keeps_every_weight() {
        for dtype in FORMATS {
            // 13 rows: three whole quads and one with a single row.
            let (m, candle) = matrix(13, 512, dtype);
            assert_eq!(m.dequantize(), candle, "{dtype:?}");
        }
    }

    #[test]
    fn products_match_the_dequantized_matrix_within_activation_rounding() {
        for dtype in FORMATS {
            let (rows, cols, n) = (13, 512, 3);
            let (m, w) = matrix(rows, cols, dtype);
            let x: Vec<f32> = (0..n * cols).map(|i| ((i * 31 % 17) as f32 - 8.0) / 4.0).collect();
            let out = multiply(&[&m, &m], &Activations::quantize(&x, n)).unwrap();
            let expected = reference(&w, &x, cols);
            assert_eq!(out[0], out[1]);
            assert_eq!(out[0].len(), expected.len());
            for (got, want) in out[0].iter().zip(&expected) {
                assert!((got - want).abs() < 0.02 * want.abs().max(1.0), "{dtype:?}: {got} vs {want}");
            }
        }
    }

    /// The instruction sets this CPU can run, best first.
    fn instruction_sets() -> Vec<Simd> {
        #[cfg(target_arch = "x86_64")]
        return match Simd::detect() {
            Simd::Vnni => vec![Simd::Vnni, Simd::Avx2, Simd::Portable],
            Simd::Avx2 => vec![Simd::Avx2, Simd::Portable],
            Simd::Portable => vec![Simd::Portable],
        };
        #[cfg(not(target_arch = "x86_64"))]
        vec![Simd::Portable]
    }

    /// A tiny deterministic generator (xorshift64*).
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// `rows` rows of random K-quant super-blocks of `dtype`, their half-float scales drawn from
    /// edge values (zero, the smallest subnormal, negative, the largest finite) and ordinary ones;
    /// the integer scales, offsets and weights are random bytes, so they take their extremes too.
    fn random_k_blocks(dtype: GgmlDType, rows: usize, blocks: usize, random: &mut Random) -> QTensor {
        const EDGES: [u16; 8] = [0x0000, 0x0001, 0x8001, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x1400];
        let bytes = Format::of(dtype).unwrap().block_bytes();
        let mut raw = vec![0u8; rows * blocks * bytes];
        for block in raw.chunks_exact_mut(bytes) {
            block.iter_mut().for_each(|b| *b = random.next() as u8);
            let mut scale = || {
                let r = random.next();
                let bits = if r.is_multiple_of(3) {
                    EDGES[(r >> 8) as usize % EDGES.len()]
                } else {
                    (r >> 16) as u16 & 0x3fff
                };
                bits.to_le_bytes()
            };
            match dtype {
                GgmlDType::Q4K => {
                    block[0..2].copy_from_slice(&scale());
                    block[2..4].copy_from_slice(&scale());
                }
                _ => block[208..210].copy_from_slice(&scale()),
            }
        }
        let dims = vec![rows, blocks * SUPER];
        candle_core::quantized::ggml_file::qtensor_from_ggml(dtype, &raw, dims, &Device::Cpu).unwrap()
    }

    #[test]
    fn k_quant_kernels_match_a_scalar_dequantize_and_dot_on_random_blocks() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let (rows, blocks, n) = (9, 3, 5);
        let cols = blocks * SUPER;
        for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
            for _ in 0..4 {
                let tensor = random_k_blocks(dtype, rows, blocks, &mut random);
                let w = tensor.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let m = QMatrix::new(&tensor).unwrap();
                assert_eq!(m.dequantize(), w, "{dtype:?}: repacking changed a weight");
                let x: Vec<f32> = (0..n * cols).map(|_| (random.next() % 2001) as f32 / 1000.0 - 1.0).collect();
                let a = Activations::quantize(&x, n);
                for &simd in &instruction_sets() {
                    for r in 0..n {
                        // The activations as the kernels see them: quantized values times scales.
                        let xr: Vec<f64> = (0..cols)
                            .map(|i| f64::from(a.qs[r * cols + i]) * f64::from(a.d[r * blocks * 8 + i / BLOCK]))
                            .collect();
                        let n = m.format.pack_rows();
                        for q in 0..rows.div_ceil(n) {
                            let pack_bytes = m.format.pack_bytes(cols);
                            let packed = &m.packed[q * pack_bytes..(q + 1) * pack_bytes];
                            let got = dot_tile(simd, m.format, packed, &a, r..r + 1)[0];
                            for (j, got) in got.iter().enumerate().take(n.min(rows - q * n)) {
                                let wr = &w[(q * n + j) * cols..][..cols];
                                let want: f64 = wr.iter().zip(&xr).map(|(&w, x)| f64::from(w) * x).sum();
                                let size: f64 = wr.iter().zip(&xr).map(|(&w, x)| (f64::from(w) * x).abs()).sum();
                                let error = (f64::from(*got) - want).abs();
                                assert!(
                                    error <= 1e-4 * size + 1e-30,
                                    "{dtype:?} {simd:?} row {} · x{r}: {got} vs {want} (magnitude {size})",
                                    q * n + j
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_instruction_set_agrees_with_the_portable_kernel_and_tiling_changes_no_bit() {
        for dtype in FORMATS {
            let (m, _) = matrix(4, 512, dtype);
            let x: Vec<f32> = (0..4 * 512).map(|i| (i as f32 * 0.37).sin() * (1.0 + (i % 7) as f32)).collect();
            let a = Activations::quantize(&x, 4);
            let reference = dot_tile(Simd::Portable, m.format, &m.packed, &a, 0..4);
            for &simd in &instruction_sets() {
                let tiled = dot_tile(simd, m.format, &m.packed, &a, 0..4);
                for (p, f) in reference.iter().flatten().zip(tiled.iter().flatten()) {
                    assert!((p - f).abs() <= 1e-4 * p.abs().max(1.0), "{dtype:?} {simd:?}: {reference:?} vs {tiled:?}");
                }
                if m.format.pack_rows() == OCTET {
                    // The octet kernels take the portable kernel's steps in its order.
                    assert_eq!(reference, tiled, "{dtype:?} {simd:?}");
                }
                for r in 0..4 {
                    let alone = dot_tile(simd, m.format, &m.packed, &a, r..r + 1);
                    let pair = dot_tile(simd, m.format, &m.packed, &a, r.min(2)..r.min(2) + 2);
                    assert_eq!(alone[0], tiled[r], "{dtype:?} {simd:?}: row {r} alone");
                    assert_eq!(pair[r - r.min(2)], tiled[r], "{dtype:?} {simd:?}: row {r} in a pair");
                }
            }
        }
    }

    #[test]
    fn the_largest_weights_and_activations_do_not_overflow_the_integer_sums() {
        // Every weight at its largest (nibbles 15; 6-bit values 63), activations all at +127 or
        // all at -127: the products' sums are the largest any block makes, so a sum kept in too
        // narrow a lane (AVX2's 16-bit gatherings) shows up as a wrong product.
        for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
            let bytes = Format::of(dtype).unwrap().block_bytes();
            let mut raw = vec![0xffu8; 8 * 2 * bytes];
            for block in raw.chunks_exact_mut(bytes) {
                match dtype {
                    // d = 1, dmin = 0; every 6-bit scale and offset 63.
                    GgmlDType::Q4K => block[0..4].copy_from_slice(&[0x00, 0x3c, 0x00, 0x00]),
                    // Scales 1 (signed bytes), d = 1.
                    _ => {
                        block[192..208].fill(1);
                        block[208..210].copy_from_slice(&[0x00, 0x3c]);
                    }
                }
            }
            let tensor =
                candle_core::quantized::ggml_file::qtensor_from_ggml(dtype, &raw, vec![8, 2 * SUPER], &Device::Cpu)
                    .unwrap();
            let m = QMatrix::new(&tensor).unwrap();
            for sign in [1.0f32, -1.0] {
                let a = Activations::quantize(&vec![sign; 2 * SUPER], 1);
                let reference = dot_tile(Simd::Portable, m.format, &m.packed, &a, 0..1);
                let per_weight = match dtype {
                    GgmlDType::Q4K => 15.0 * 63.0,
                    _ => 31.0,
                };
                let want = sign * per_weight * 2.0 * SUPER as f32;
                assert!(
                    (reference[0][0] - want).abs() <= 1e-3 * want.abs(),
                    "{dtype:?}: {} vs {want}",
                    reference[0][0]
                );
                for &simd in &instruction_sets() {
                    assert_eq!(
                        dot_tile(simd, m.format, &m.packed, &a, 0..1),
                        reference,
                        "{dtype:?} {simd:?} sign {sign}"
                    );
                }
            }
        }
    }

    #[test]
    fn unsupported_formats_are_declined() {
        let t = Tensor::zeros((4, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(QMatrix::new(&QTensor::quantize(&t, GgmlDType::Q4_0).unwrap()).is_none());
        assert!(QMatrix::new(&QTensor::quantize(&t, GgmlDType::Q4_1).unwrap()).is_some());
    }
}
