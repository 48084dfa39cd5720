// matmul, WebAssembly SIMD (AssemblyScript), f32 row-major operands in linear memory. Each entry point computes
// one block of the output (rows i0..i1, columns j0..j1), so threads can split a product into chunks.
//
// NT: C [M, N] = A [M, K] · B [N, K]ᵀ (dot products: both operands K-contiguous, so a linear layer's
// weight [out, in] is used as stored; other layouts are transposed into this one first). Register block 2 rows ×
// 4 columns, SIMD over k (four partial sums per output, added at the end); leftover rows, columns and k one at a
// time. All loads are sequential: measured 2.5× faster than a 4 × 8 broadcast (NN) block walking B's columns.

import { hsum, madd } from "./simd";

@inline function put(p: usize, v: f32, acc: bool): void {
  store<f32>(p, acc ? load<f32>(p) + v : v);
}

@inline function dot(a: usize, b: usize, K: i32): f32 {
  let s = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) s = madd(v128.load(a + (<usize>k << 2)), v128.load(b + (<usize>k << 2)), s);
  let r = hsum(s);
  for (; k < K; k++) r += load<f32>(a + (<usize>k << 2)) * load<f32>(b + (<usize>k << 2));
  return r;
}

/**
 * C[i0..i1, j0..j1] (+)= A[i0..i1, :K] · B[j0..j1, :K]ᵀ with row strides lda, ldb, ldc (in floats). `acc`: add to
 * C instead of overwriting it (for products split along k).
 */
export function ntBlock(
  a: usize,
  lda: i32,
  b: usize,
  ldb: i32,
  c: usize,
  ldc: i32,
  K: i32,
  i0: i32,
  i1: i32,
  j0: i32,
  j1: i32,
  acc: bool,
): void {
  const arow = <usize>lda << 2;
  const brow = <usize>ldb << 2;
  const K4 = K & ~3;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const b0 = b + <usize>j * brow;
    const b1 = b0 + brow;
    const b2 = b1 + brow;
    const b3 = b2 + brow;
    let i = i0;
    for (; i + 2 <= i1; i += 2) {
      const a0 = a + <usize>i * arow;
      const a1 = a0 + arow;
      let s00 = f32x4.splat(0), s01 = s00, s02 = s00, s03 = s00;
      let s10 = s00, s11 = s00, s12 = s00, s13 = s00;
      for (let k = 0; k < K4; k += 4) {
        const o = <usize>k << 2;
        const x0 = v128.load(a0 + o);
        const x1 = v128.load(a1 + o);
        const w0 = v128.load(b0 + o);
        s00 = madd(x0, w0, s00);
        s10 = madd(x1, w0, s10);
        const w1 = v128.load(b1 + o);
        s01 = madd(x0, w1, s01);
        s11 = madd(x1, w1, s11);
        const w2 = v128.load(b2 + o);
        s02 = madd(x0, w2, s02);
        s12 = madd(x1, w2, s12);
        const w3 = v128.load(b3 + o);
        s03 = madd(x0, w3, s03);
        s13 = madd(x1, w3, s13);
      }
      let r00 = hsum(s00), r01 = hsum(s01), r02 = hsum(s02), r03 = hsum(s03);
      let r10 = hsum(s10), r11 = hsum(s11), r12 = hsum(s12), r13 = hsum(s13);
      for (let k = K4; k < K; k++) {
        const o = <usize>k << 2;
        const x0 = load<f32>(a0 + o);
        const x1 = load<f32>(a1 + o);
        const w0 = load<f32>(b0 + o);
        const w1 = load<f32>(b1 + o);
        const w2 = load<f32>(b2 + o);
        const w3 = load<f32>(b3 + o);
        r00 += x0 * w0;
        r01 += x0 * w1;
        r02 += x0 * w2;
        r03 += x0 * w3;
        r10 += x1 * w0;
        r11 += x1 * w1;
        r12 += x1 * w2;
        r13 += x1 * w3;
      }
      const c0 = c + (<usize>(i * ldc + j) << 2);
      const c1 = c0 + (<usize>ldc << 2);
      if (acc) {
        r00 += load<f32>(c0);
        r01 += load<f32>(c0, 4);
        r02 += load<f32>(c0, 8);
        r03 += load<f32>(c0, 12);
        r10 += load<f32>(c1);
        r11 += load<f32>(c1, 4);
        r12 += load<f32>(c1, 8);
        r13 += load<f32>(c1, 12);
      }
      store<f32>(c0, r00);
      store<f32>(c0, r01, 4);
      store<f32>(c0, r02, 8);
      store<f32>(c0, r03, 12);
      store<f32>(c1, r10);
      store<f32>(c1, r11, 4);
      store<f32>(c1, r12, 8);
      store<f32>(c1, r13, 12);
    }
    for (; i < i1; i++) {
      const ai = a + <usize>i * arow;
      const ci = c + (<usize>(i * ldc + j) << 2);
      put(ci, dot(ai, b0, K), acc);
      put(ci + 4, dot(ai, b1, K), acc);
      put(ci + 8, dot(ai, b2, K), acc);
      put(ci + 12, dot(ai, b3, K), acc);
    }
  }
  for (; j < j1; j++) {
    const bj = b + <usize>j * brow;
    for (let i = i0; i < i1; i++) put(c + (<usize>(i * ldc + j) << 2), dot(a + <usize>i * arow, bj, K), acc);
  }
}
