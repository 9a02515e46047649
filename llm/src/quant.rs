//! Dequantization of ggml tensor data to f32, bit for bit as ggml's reference C code and
//! gguf-py compute it.
//!
//! Quantized types store blocks of consecutive elements: an f16 scale (and for some an f16
//! minimum) followed by packed small integers. Each element is computed in f32 in the same
//! order of operations as ggml-quants.c (`d * q`, `d * q + m`, `(d * sc) * q - dmin * m`)
//! and Rust never contracts `a * b + c` into a fused multiply-add, so the results are
//! identical to llama.cpp's and gguf-py's — tests/fixtures/llm/dequant.json checks every type.
//!
//! This runs over a whole model at load (about 135 M elements for SmolLM2-135M): the output is
//! allocated once and filled in parallel, a few thousand blocks per rayon task.

use half::f16;
use rayon::prelude::*;

use crate::gguf::GgmlType;

/// Roughly how many elements one parallel task dequantizes: large enough that rayon's
/// overhead vanishes, small enough that all cores get work on a 1 MB tensor.
const ELEMENTS_PER_TASK: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("{n} elements are not whole {ty} blocks of {block}")]
    PartialBlock {
        ty: GgmlType,
        n: usize,
        block: usize,
    },
    #[error("{n} {ty} elements take {expected} bytes, but {found} bytes were given")]
    Length {
        ty: GgmlType,
        n: usize,
        expected: usize,
        found: usize,
    },
}

/// `n` elements of type `ty` from `bytes` (exactly `n / block_elements * block_bytes` of
/// them), as f32.
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>, QuantError> {
    let block = ty.block_elements();
    if !n.is_multiple_of(block) {
        return Err(QuantError::PartialBlock { ty, n, block });
    }
    let expected = (n / block).checked_mul(ty.block_bytes());
    if expected != Some(bytes.len()) {
        return Err(QuantError::Length {
            ty,
            n,
            expected: expected.unwrap_or(usize::MAX),
            found: bytes.len(),
        });
    }
    let mut out = vec![0f32; n];
    match ty {
        GgmlType::F32 => run(ty, bytes, &mut out, f32_block),
        GgmlType::F16 => run(ty, bytes, &mut out, f16_block),
        GgmlType::BF16 => run(ty, bytes, &mut out, bf16_block),
        GgmlType::Q8_0 => run(ty, bytes, &mut out, q8_0_block),
        GgmlType::Q4_0 => run(ty, bytes, &mut out, q4_0_block),
        GgmlType::Q4_1 => run(ty, bytes, &mut out, q4_1_block),
        GgmlType::Q4_K => run(ty, bytes, &mut out, q4_k_block),
        GgmlType::Q6_K => run(ty, bytes, &mut out, q6_k_block),
    }
    Ok(out)
}

/// Applies `kernel` to every block, in parallel over runs of blocks. Generic over the kernel
/// so that each type's loop is compiled with its kernel inlined (one call per element would
/// cost more than the work for F16).
fn run<K: Fn(&[u8], &mut [f32]) + Sync>(ty: GgmlType, bytes: &[u8], out: &mut [f32], kernel: K) {
    let (block, block_bytes) = (ty.block_elements(), ty.block_bytes());
    let blocks_per_task = (ELEMENTS_PER_TASK / block).max(1);
    out.par_chunks_mut(blocks_per_task * block)
        .zip(bytes.par_chunks(blocks_per_task * block_bytes))
        .for_each(|(out, bytes)| {
            for (y, x) in out
                .chunks_exact_mut(block)
                .zip(bytes.chunks_exact(block_bytes))
            {
                kernel(x, y);
            }
        });
}

fn half(x: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([x[at], x[at + 1]]).to_f32()
}

fn f32_block(x: &[u8], y: &mut [f32]) {
    y[0] = f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
}

fn f16_block(x: &[u8], y: &mut [f32]) {
    y[0] = half(x, 0);
}

/// bf16 is the top half of an f32.
fn bf16_block(x: &[u8], y: &mut [f32]) {
    y[0] = f32::from_bits(u32::from(u16::from_le_bytes([x[0], x[1]])) << 16);
}

/// `block_q8_0`: f16 d, then 32 i8: `d * q`.
fn q8_0_block(x: &[u8], y: &mut [f32]) {
    let d = half(x, 0);
    for (y, &q) in y.iter_mut().zip(&x[2..34]) {
        *y = d * f32::from(q as i8);
    }
}

/// `block_q4_0`: f16 d, then 16 bytes: element j is the low nibble of byte j, element j + 16
/// the high nibble; each is stored offset by 8: `d * (q - 8)`.
fn q4_0_block(x: &[u8], y: &mut [f32]) {
    let d = half(x, 0);
    let (lo, hi) = y.split_at_mut(16);
    for ((lo, hi), &q) in lo.iter_mut().zip(hi).zip(&x[2..18]) {
        *lo = d * f32::from((q & 0xF) as i8 - 8);
        *hi = d * f32::from((q >> 4) as i8 - 8);
    }
}

/// `block_q4_1`: f16 d, f16 m, then nibbles as in Q4_0 without offset: `d * q + m`.
fn q4_1_block(x: &[u8], y: &mut [f32]) {
    let d = half(x, 0);
    let m = half(x, 2);
    let (lo, hi) = y.split_at_mut(16);
    for ((lo, hi), &q) in lo.iter_mut().zip(hi).zip(&x[4..20]) {
        *lo = d * f32::from(q & 0xF) + m;
        *hi = d * f32::from(q >> 4) + m;
    }
}

/// `block_q4_K` (256 elements): f16 d, f16 dmin, 12 bytes packing eight 6-bit scales and
/// eight 6-bit minimums, 128 bytes of nibbles. Each 64 elements take 32 bytes: the low
/// nibbles with scale/min pair 2i, the high nibbles with pair 2i + 1:
/// `(d * sc) * q - dmin * m`.
fn q4_k_block(x: &[u8], y: &mut [f32]) {
    let d = half(x, 0);
    let dmin = half(x, 2);
    let scales = &x[4..16];
    let qs = &x[16..144];
    for (j, (y, q)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * j, scales);
        let (sc2, m2) = scale_min_k4(2 * j + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), dmin * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), dmin * f32::from(m2));
        let (lo, hi) = y.split_at_mut(32);
        for ((lo, hi), &q) in lo.iter_mut().zip(hi).zip(q) {
            *lo = d1 * f32::from(q & 0xF) - m1;
            *hi = d2 * f32::from(q >> 4) - m2;
        }
    }
}

/// Scale and minimum `j` (0..8) of a Q4_K block: the first four are the low 6 bits of bytes
/// j and j + 4; the last four take their low 4 bits from byte j + 4 and their top 2 bits from
/// the spare high bits of bytes j - 4 and j.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// `block_q6_K` (256 elements): 128 bytes of low nibbles, 64 bytes of 2-bit high parts,
/// 16 i8 scales (one per 16 elements), f16 d: `(d * sc) * (q - 32)`. Each half of 128
/// elements uses 64 low-nibble bytes, 32 high-bit bytes and 8 scales; within it, element
/// l + 32k (k = 0..4) takes nibble k / 2 of byte l + 32 (k % 2) and bits 2k of high byte l.
fn q6_k_block(x: &[u8], y: &mut [f32]) {
    let d = half(x, 208);
    for (n, y) in y.chunks_exact_mut(128).enumerate() {
        let ql = &x[64 * n..64 * n + 64];
        let qh = &x[128 + 32 * n..128 + 32 * n + 32];
        let sc = &x[192 + 8 * n..192 + 8 * n + 8];
        for l in 0..32 {
            let is = l / 16;
            let h = qh[l];
            let q = [
                (ql[l] & 0xF) | ((h & 3) << 4),
                (ql[l + 32] & 0xF) | (((h >> 2) & 3) << 4),
                (ql[l] >> 4) | (((h >> 4) & 3) << 4),
                (ql[l + 32] >> 4) | (((h >> 6) & 3) << 4),
            ];
            for (k, q) in q.into_iter().enumerate() {
                let scale = d * f32::from(sc[is + 2 * k] as i8);
                y[l + 32 * k] = scale * f32::from(q as i8 - 32);
            }
        }
    }
}
