// GPTQ-style error feedback for ClusComp's codes (GPTVQ's idea, in ClusComp's layout).
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
  // L⁻¹ (lower), by forward substitution column by column
  const li = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    li[c * n + c] = 1 / l[c * n + c];
    for (let i = c + 1; i < n; i++) {
      let s = 0;
      for (let k = c; k < i; k++) s += l[i * n + k] * li[k * n + c];
      li[i * n + c] = -s / l[i * n + i];
    }
  }
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
  if (u.length !== inp * inp)
    throw new CompressionError("compress.hessian", `GPTQ factor has ${u.length} entries, the weight ${inp} inputs`);
  const K = centroids.length / d;
  const outP = nb * d;
  // Wᵀ [in, outP], zero-padded: row i is column i of W, i.e. the nb vectors of input channel i
  const wt = new Float32Array(inp * outP);
  for (let r = 0; r < out; r++) for (let i = 0; i < inp; i++) wt[i * outP + r] = w[r * inp + i];
  const codes = new Int32Array(inp * nb);
  const cT = be.upload(centroids, [K, d]);
  try {
    for (let i1 = 0; i1 < inp; i1 += GPTQ_BLOCK) {
      const i2 = Math.min(i1 + GPTQ_BLOCK, inp);
      const err = new Float32Array((i2 - i1) * outP);
      for (let i = i1; i < i2; i++) {
        const row = wt.subarray(i * outP, (i + 1) * outP);
        const rowT = be.upload(row.slice(), [nb, d]);
        const { codes: codesT, distances } = be.kmeans_assign(rowT, cT);
        be.dispose(rowT);
        be.dispose(distances);
        const c = await be.readInt(codesT);
        be.dispose(codesT);
        codes.set(c, i * nb);
        const uii = u[i * inp + i];
        const e = err.subarray((i - i1) * outP, (i - i1 + 1) * outP);
        for (let j = 0; j < nb; j++) {
          for (let k = 0; k < d; k++) {
            const r = j * d + k;
            if (r < out) e[r] = (row[r] - centroids[c[j] * d + k]) / uii;
          }
        }
        for (let j = i + 1; j < i2; j++) {
          const f = u[i * inp + j];
          if (f === 0) continue;
          const o = j * outP;
          for (let r = 0; r < out; r++) wt[o + r] -= f * e[r];
        }
      }
      const rest = inp - i2;
      if (rest === 0) continue;
      // Wᵀ[i2:] −= U[i1:i2, i2:]ᵀ · Err
      const ub = new Float32Array((i2 - i1) * rest);
      for (let i = i1; i < i2; i++) for (let j = i2; j < inp; j++) ub[(i - i1) * rest + (j - i2)] = u[i * inp + j];
      const ubT = be.upload(ub, [i2 - i1, rest]);
      const eT = be.upload(err, [i2 - i1, outP]);
      const dT = be.matmul(ubT, eT, { transposeA: true });
      be.dispose(ubT);
      be.dispose(eT);
      const delta = await be.read(dT);
      be.dispose(dT);
      const tail = wt.subarray(i2 * outP);
      for (let k = 0; k < tail.length; k++) tail[k] -= delta[k];
    }
  } finally {
    be.dispose(cT);
  }
  return codes;
}
