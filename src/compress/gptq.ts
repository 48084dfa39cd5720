// GPTQ-style error feedback for ClusComp's codes (GPTVQ's idea, in ClusComp's layout), and GPTQ itself (scalar
// grids per group, stored as RTN's format) as the baseline measured beside it.
// A vector holds d consecutive output channels of one input channel i, so one column W[:, i] of the weight is a
// whole set of vectors, and GPTQ's column order applies unchanged: assign column i's vectors to their nearest
// centroids, then push its error onto the columns not yet assigned through the inverse Hessian, so that the
// layer's output on the calibration inputs X (H = XᵀX) stays as close as it can:
//   e = (W[:, i] − Q[:, i]) / U[i, i];   W[:, j] −= e·U[i, j]  for j > i,
// with U the upper Cholesky factor of (H + λI)⁻¹, λ = 1 % of H's mean diagonal (GPTQ's dampening). Columns
// are processed in lazy blocks of 128: inside a block the update is immediate, the rest of the matrix gets one
// matmul per block (on the backend). The codebook stays fixed (k-means on the original weights); only the
// codes change. A channel whose input is always 0 keeps its nearest codes and pushes nothing.
//
// Shapes: W [out, in] row-major, H [in, in], centroids [K, d]; codes in extractVectors' order (i·nb + j).

import type { Backend } from "../backend/backend.js";
import { CompressionError } from "../errors.js";
import type { VectorLayout } from "./codebook.js";
import { HESSIAN_DAMPENING } from "./hessian.js";
import { type RtnWeight, rtnCode, rtnGrid } from "./rtn.js";

export const GPTQ_BLOCK = 128;

/** Lower Cholesky factor of a symmetric positive definite [n, n] matrix (float64, row-major). */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) {
          throw new CompressionError(
            "compress.hessian",
            "the calibration Hessian is not positive definite after dampening (too few calibration tokens, or non-finite activations)",
          );
        }
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j];
      }
    }
  }
  return l;
}

/** U, upper triangular with UᵀU = H⁻¹, for H symmetric positive definite [n, n]. */
export function inverseCholeskyUpper(h: Float64Array, n: number): Float64Array {
  const l = cholesky(h, n);
  const li = lowerInverse(l, n);
  // H⁻¹ = L⁻ᵀ·L⁻¹
  const hinv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += li[k * n + i] * li[k * n + j];
      hinv[i * n + j] = s;
      hinv[j * n + i] = s;
    }
  }
  // H⁻¹ = Lₕ·Lₕᵀ, so U = Lₕᵀ
  const lh = cholesky(hinv, n);
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) u[j * n + i] = lh[i * n + j];
  return u;
}

/** The dampened Hessian GPTQ factorizes: XᵀX + λI (λ = 1 % of the mean diagonal); dead channels get 1. */
export function dampenedHessian(hessian: Float64Array, n: number): Float64Array {
  const h = Float64Array.from(hessian);
  let mean = 0;
  for (let i = 0; i < n; i++) {
    if (h[i * n + i] === 0) h[i * n + i] = 1;
    mean += h[i * n + i];
  }
  mean /= n;
  for (let i = 0; i < n; i++) h[i * n + i] += HESSIAN_DAMPENING * mean;
  return h;
}

/** GPTQ's factor of an input Hessian XᵀX [n, n]: U upper with UᵀU = (XᵀX + λI)⁻¹ (one per input stream). */
export function gptqFactor(hessian: Float64Array, n: number): Float64Array {
  if (hessian.length !== n * n)
    throw new CompressionError("compress.hessian", `Hessian has ${hessian.length} entries, expected ${n}×${n}`);
  return inverseCholeskyUpper(dampenedHessian(hessian, n), n);
}

/** The block of rows r0…r1, columns c0…c1 of a row-major [*, n] float64 matrix, as float32. */
function block32(a: Float64Array, n: number, r0: number, r1: number, c0: number, c1: number): Float32Array {
  const w = c1 - c0;
  const out = new Float32Array((r1 - r0) * w);
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[(r - r0) * w + (c - c0)] = a[r * n + c];
  return out;
}

/** L⁻¹ of a lower-triangular [n, n] (float64, row-major), by forward substitution. */
function lowerInverse(l: Float64Array, n: number): Float64Array {
  const li = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    li[c * n + c] = 1 / l[c * n + c];
    for (let i = c + 1; i < n; i++) {
      let s = 0;
      for (let k = c; k < i; k++) s += l[i * n + k] * li[k * n + c];
      li[i * n + c] = -s / l[i * n + i];
    }
  }
  return li;
}

/** The square block [i0, i1) × [i0, i1) of a row-major [n, n] matrix (float64). */
function diagBlock(a: Float64Array, n: number, i0: number, i1: number): Float64Array {
  const b = i1 - i0;
  const out = new Float64Array(b * b);
  for (let r = 0; r < b; r++) for (let c = 0; c < b; c++) out[r * b + c] = a[(i0 + r) * n + i0 + c];
  return out;
}

/** Blocks of the fast factorization (the host factorizes and inverts BLOCK×BLOCK pieces, the backend the rest). */
export const FACTOR_BLOCK = 256;

/**
 * inverseCholeskyUpper for large n, its O(n³) work on the backend's matmul (float32 products, accumulated in
 * float64 on the host), the same U up to float32 rounding: with J the order reversal, J·H·J = L·Lᵀ (blocked
 * right-looking Cholesky: host Cholesky of each diagonal block, panel L21 = A21·L11⁻ᵀ and trailing A22 −= L21·L21ᵀ on
 * the backend), then U = J·L⁻¹·J (blocked: X[i, :i] = −L_ii⁻¹·(L[i, :i]·X[:i, :i])). UᵀU = J·L⁻ᵀ·L⁻¹·J = H⁻¹.
 */
export async function inverseCholeskyUpperFast(
  be: Backend,
  h: Float64Array,
  n: number,
  bs = FACTOR_BLOCK,
): Promise<Float64Array> {
  const mm = async (a: Float32Array, ar: number, ac: number, b: Float32Array, bc: number, transposeB = false) => {
    const aT = be.upload(a, [ar, ac]);
    const bT = be.upload(b, transposeB ? [bc, ac] : [ac, bc]);
    const pT = be.matmul(aT, bT, { transposeB });
    be.dispose(aT);
    be.dispose(bT);
    const p = await be.read(pT);
    be.dispose(pT);
    return p;
  };
  // A = J·H·J, factorized in place into L (lower)
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  for (let k0 = 0; k0 < n; k0 += bs) {
    const k1 = Math.min(k0 + bs, n);
    const b = k1 - k0;
    const l11 = cholesky(diagBlock(a, n, k0, k1), b);
    for (let r = 0; r < b; r++) for (let c = 0; c < b; c++) a[(k0 + r) * n + k0 + c] = c <= r ? l11[r * b + c] : 0;
    if (k1 === n) break;
    const m = n - k1;
    // L21 = A21 · L11⁻ᵀ
    const l11inv = lowerInverse(l11, b);
    const l21 = await mm(block32(a, n, k1, n, k0, k1), m, b, Float32Array.from(l11inv), b, true);
    for (let r = 0; r < m; r++) for (let c = 0; c < b; c++) a[(k1 + r) * n + k0 + c] = l21[r * b + c];
    // A22 −= L21 · L21ᵀ (the lower triangle is what later steps read)
    const p = await mm(l21, m, b, l21, m, true);
    for (let r = 0; r < m; r++) {
      const row = (k1 + r) * n + k1;
      for (let c = 0; c <= r; c++) a[row + c] -= p[r * m + c];
    }
  }
  for (let r = 0; r < n; r++) for (let c = r + 1; c < n; c++) a[r * n + c] = 0;
  // X = L⁻¹, block row by block row
  const x = new Float64Array(n * n);
  for (let i0 = 0; i0 < n; i0 += bs) {
    const i1 = Math.min(i0 + bs, n);
    const b = i1 - i0;
    const xii = lowerInverse(diagBlock(a, n, i0, i1), b);
    for (let r = 0; r < b; r++) for (let c = 0; c <= r; c++) x[(i0 + r) * n + i0 + c] = xii[r * b + c];
    if (i0 === 0) continue;
    const t = await mm(block32(a, n, i0, i1, 0, i0), b, i0, block32(x, n, 0, i0, 0, i0), i0);
    const xi = await mm(Float32Array.from(xii), b, b, t, i0);
    for (let r = 0; r < b; r++) for (let c = 0; c < i0; c++) x[(i0 + r) * n + c] = -xi[r * i0 + c];
  }
  // U = J·X·J
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) u[i * n + j] = x[(n - 1 - i) * n + (n - 1 - j)];
  return u;
}

/**
 * gptqFactor on the backend for wide inputs (n > 2·FACTOR_BLOCK: inverseCholeskyUpperFast), on the host in
 * float64 otherwise.
 */
export async function gptqFactorFast(be: Backend, hessian: Float64Array, n: number): Promise<Float64Array> {
  if (n <= 2 * FACTOR_BLOCK) return gptqFactor(hessian, n);
  if (hessian.length !== n * n)
    throw new CompressionError("compress.hessian", `Hessian has ${hessian.length} entries, expected ${n}×${n}`);
  return inverseCholeskyUpperFast(be, dampenedHessian(hessian, n), n);
}

/**
 * GPTQ's column sweep over Wᵀ [in, cols] (row i = input channel i's column of W, zero-padded to `cols`): each
 * row in turn is quantized by `quantize(i, row)` (which returns the values it stands for, `out` of them used),
 * and its error (row − quantized)/U[i, i] is pushed onto the rows not yet quantized: immediately inside a lazy
 * block of GPTQ_BLOCK rows, by one backend matmul for the rest of the matrix. `wt` is updated in place.
 */
export async function gptqSweep(
  be: Backend,
  wt: Float32Array,
  inp: number,
  cols: number,
  out: number,
  u: Float64Array,
  quantize: (i: number, row: Float32Array) => Promise<ArrayLike<number>> | ArrayLike<number>,
): Promise<void> {
  if (u.length !== inp * inp)
    throw new CompressionError("compress.hessian", `GPTQ factor has ${u.length} entries, the weight ${inp} inputs`);
  for (let i1 = 0; i1 < inp; i1 += GPTQ_BLOCK) {
    const i2 = Math.min(i1 + GPTQ_BLOCK, inp);
    const err = new Float32Array((i2 - i1) * cols);
    for (let i = i1; i < i2; i++) {
      const row = wt.subarray(i * cols, (i + 1) * cols);
      const q = await quantize(i, row);
      const uii = u[i * inp + i];
      const e = err.subarray((i - i1) * cols, (i - i1 + 1) * cols);
      for (let r = 0; r < out; r++) e[r] = (row[r] - q[r]) / uii;
      for (let j = i + 1; j < i2; j++) {
        const f = u[i * inp + j];
        if (f === 0) continue;
        const o = j * cols;
        for (let r = 0; r < out; r++) wt[o + r] -= f * e[r];
      }
    }
    const rest = inp - i2;
    if (rest === 0) continue;
    // Wᵀ[i2:] −= U[i1:i2, i2:]ᵀ · Err
    const ub = new Float32Array((i2 - i1) * rest);
    for (let i = i1; i < i2; i++) for (let j = i2; j < inp; j++) ub[(i - i1) * rest + (j - i2)] = u[i * inp + j];
    const ubT = be.upload(ub, [i2 - i1, rest]);
    const eT = be.upload(err, [i2 - i1, cols]);
    const dT = be.matmul(ubT, eT, { transposeA: true });
    be.dispose(ubT);
    be.dispose(eT);
    const delta = await be.read(dT);
    be.dispose(dT);
    const tail = wt.subarray(i2 * cols);
    for (let k = 0; k < tail.length; k++) tail[k] -= delta[k];
  }
}

/** Wᵀ [in, cols] of W [out, in], zero-padded from out to cols output channels. */
function transposePadded(w: Float32Array, out: number, inp: number, cols: number): Float32Array {
  const wt = new Float32Array(inp * cols);
  for (let r = 0; r < out; r++) for (let i = 0; i < inp; i++) wt[i * cols + r] = w[r * inp + i];
  return wt;
}

/**
 * Codes of W for a fixed codebook by GPTQ's column order with error feedback (see the header); u is
 * gptqFactor of the input Hessian.
 */
export async function gptqAssign(
  be: Backend,
  w: Float32Array,
  u: Float64Array,
  centroids: Float32Array,
  l: VectorLayout,
): Promise<Int32Array> {
  const { out, d, nb } = l;
  const inp = l.in;
  if (l.m !== 1)
    throw new CompressionError("compress.usage", "GPTQ assignment supports one codebook per matrix (--codebooks 1)");
  const K = centroids.length / d;
  const outP = nb * d;
  const codes = new Int32Array(inp * nb);
  const cT = be.upload(centroids, [K, d]);
  const q = new Float32Array(outP);
  try {
    await gptqSweep(be, transposePadded(w, out, inp, outP), inp, outP, out, u, async (i, row) => {
      // row i of Wᵀ is the nb vectors of input channel i
      const rowT = be.upload(row.slice(), [nb, d]);
      const { codes: codesT, distances } = be.kmeans_assign(rowT, cT);
      be.dispose(rowT);
      be.dispose(distances);
      const c = await be.readInt(codesT);
      be.dispose(codesT);
      codes.set(c, i * nb);
      for (let j = 0; j < nb; j++) q.set(centroids.subarray(c[j] * d, (c[j] + 1) * d), j * d);
      return q;
    });
  } finally {
    be.dispose(cT);
  }
  return codes;
}

/**
 * GPTQ itself (Frantar et al. 2023), the scalar baseline, stored in RTN's format: W's columns in order, each
 * weight rounded to its row's asymmetric min–max grid of 2^b levels for the group of G input channels it is in
 * (the grid found when the sweep reaches the group's first column, from the error-updated weights; scale and zero
 * fp16 as RTN stores them), the error pushed through U as in gptqSweep. No act-order.
 */
export async function gptqQuantize(
  be: Backend,
  w: Float32Array,
  out: number,
  inp: number,
  bits: number,
  group: number,
  u: Float64Array,
): Promise<RtnWeight> {
  const ng = Math.ceil(inp / group);
  const qmax = 2 ** bits - 1;
  const q = new Int32Array(out * inp);
  const scales = new Uint16Array(out * ng);
  const zeros = new Uint16Array(out * ng);
  const wt = transposePadded(w, out, inp, out);
  const s = new Float32Array(out);
  const z = new Float32Array(out);
  const qv = new Float32Array(out);
  await gptqSweep(be, wt, inp, out, out, u, (i, row) => {
    const g = Math.floor(i / group);
    if (i % group === 0) {
      const i1 = Math.min(inp, i + group);
      for (let r = 0; r < out; r++) {
        let lo = Number.POSITIVE_INFINITY;
        let hi = Number.NEGATIVE_INFINITY;
        for (let c = i; c < i1; c++) {
          const v = wt[c * out + r];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        const grid = rtnGrid(lo, hi, qmax);
        zeros[r * ng + g] = grid.zBits;
        scales[r * ng + g] = grid.sBits;
        z[r] = grid.z;
        s[r] = grid.s;
      }
    }
    for (let r = 0; r < out; r++) {
      const v = rtnCode(row[r], s[r], z[r], qmax);
      q[r * inp + i] = v;
      qv[r] = v * s[r] + z[r];
    }
    return qv;
  });
  return { q, scales, zeros };
}
