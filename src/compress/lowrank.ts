// Truncated SVD for ReALLM's low-rank part (W ≈ B·A + VQ(W − B·A)): a randomized range finder (Halko, Martinsson
// & Tropp 2011, algorithm 4.4 with q power iterations) whose large products run on the backend's matmul, and a
// small dense factorization in float64 here:
//   Ω ~ N(0, 1) [in, k], k = r + oversampling;  Y = W·Ω;  q times: Q = orth(Y), Z = orth(Wᵀ·Q), Y = W·Z;
//   Q = orth(Y) [out, k];  C = Qᵀ·W [k, in];  C·Cᵀ = U_c·Λ·U_cᵀ (Jacobi);  σ = √λ;
//   U = Q·U_c [out, k],  V = Cᵀ·U_c / σ [in, k],  keep the r largest.
// orth is classical Gram–Schmidt run twice ("twice is enough"), in float64. The factors ReALLM stores split σ
// evenly, B = U·√σ [out, r] and A = √σ·Vᵀ [r, in], so both train at the same scale.

import type { Backend } from "../backend/backend.js";
import { CompressionError } from "../errors.js";
import { Rng } from "../tensor/rng.js";

export interface TruncatedSvd {
  /** Left singular vectors [out, r], row-major. */
  U: Float64Array;
  /** Singular values, descending [r]. */
  S: Float64Array;
  /** Right singular vectors [in, r], row-major. */
  V: Float64Array;
  rank: number;
}

export interface RandomizedSvdOptions {
  /** Extra columns of the range finder (default 8). */
  oversample?: number;
  /** Power iterations (default 2). */
  powerIters?: number;
  seed?: number;
}

/**
 * Eigen-decomposition of a symmetric n×n matrix (row-major, float64) by cyclic Jacobi rotations: eigenvalues
 * descending and the eigenvectors as the columns of an n×n row-major matrix.
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += m[i] * m[i];
  const eps = 1e-30 * Math.max(scale, Number.MIN_VALUE);
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] * m[p * n + q];
    if (off <= eps) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          // columns p and q of m
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          // rows p and q
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[j * n + j] - m[i * n + i]);
  const values = Float64Array.from(order, (i) => m[i * n + i]);
  const vectors = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) vectors[r * n + c] = v[r * n + order[c]];
  return { values, vectors };
}

/**
 * Orthonormal columns spanning those of y [rows, cols] (row-major, float64), classical Gram–Schmidt twice; a
 * column that falls into the span of the previous ones (numerically) becomes a fresh random direction orthogonal
 * to them, so the result always has `cols` orthonormal columns.
 */
export function orthonormalColumns(y: Float64Array, rows: number, cols: number, rng: Rng): Float64Array {
  const q: Float64Array[] = [];
  for (let c = 0; c < cols; c++) {
    let col = Float64Array.from({ length: rows }, (_, r) => y[r * cols + c]);
    for (let attempt = 0; ; attempt++) {
      const norm0 = vecNorm(col);
      for (let pass = 0; pass < 2; pass++) {
        for (const b of q) {
          let dot = 0;
          for (let r = 0; r < rows; r++) dot += b[r] * col[r];
          for (let r = 0; r < rows; r++) col[r] -= dot * b[r];
        }
      }
      const norm = vecNorm(col);
      if (norm > 1e-10 * norm0 && norm > 0) {
        for (let r = 0; r < rows; r++) col[r] /= norm;
        break;
      }
      if (attempt > 4 || q.length >= rows)
        throw new CompressionError("compress.lowrank", `cannot orthonormalize ${cols} columns of length ${rows}`);
      col = Float64Array.from({ length: rows }, () => rng.normal());
    }
    q.push(col);
  }
  const out = new Float64Array(rows * cols);
  for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) out[r * cols + c] = q[c][r];
  return out;
}

function vecNorm(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** The rank-r truncated SVD of w [out, in] (row-major float32) by the randomized range finder (see top). */
export async function randomizedSvd(
  backend: Backend,
  w: Float32Array,
  out: number,
  inp: number,
  r: number,
  o: RandomizedSvdOptions = {},
): Promise<TruncatedSvd> {
  if (!Number.isInteger(r) || r < 1 || r > Math.min(out, inp)) {
    throw new CompressionError(
      "compress.rank",
      `rank ${r} must be an integer in 1..${Math.min(out, inp)} for a [${out}, ${inp}] matrix`,
    );
  }
  const k = Math.min(r + (o.oversample ?? 8), out, inp);
  const rng = new Rng(o.seed ?? 0);
  const W = backend.upload(w, [out, inp]);
  try {
    const times = async (m: Float64Array, cols: number, transpose: boolean): Promise<Float64Array> => {
      // W·m (m [in, cols]) or Wᵀ·m (m [out, cols])
      const t = backend.upload(Float32Array.from(m), [transpose ? out : inp, cols]);
      const p = backend.matmul(W, t, { transposeA: transpose });
      backend.dispose(t);
      const v = await backend.read(p);
      backend.dispose(p);
      return Float64Array.from(v);
    };
    const omega = Float64Array.from({ length: inp * k }, () => rng.normal());
    let y = await times(omega, k, false);
    for (let i = 0; i < (o.powerIters ?? 2); i++) {
      const qy = orthonormalColumns(y, out, k, rng);
      const z = orthonormalColumns(await times(qy, k, true), inp, k, rng);
      y = await times(z, k, false);
    }
    const q = orthonormalColumns(y, out, k, rng);
    const ct = await times(q, k, true); // Wᵀ·Q = Cᵀ [in, k]
    const gram = new Float64Array(k * k);
    for (let i = 0; i < inp; i++) {
      const row = i * k;
      for (let a = 0; a < k; a++) {
        const x = ct[row + a];
        if (x === 0) continue;
        for (let b = a; b < k; b++) gram[a * k + b] += x * ct[row + b];
      }
    }
    for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) gram[a * k + b] = gram[b * k + a];
    const { values, vectors } = symmetricEigen(gram, k);
    const S = Float64Array.from({ length: r }, (_, j) => Math.sqrt(Math.max(values[j], 0)));
    const U = new Float64Array(out * r);
    for (let i = 0; i < out; i++)
      for (let j = 0; j < r; j++) {
        let s = 0;
        for (let a = 0; a < k; a++) s += q[i * k + a] * vectors[a * k + j];
        U[i * r + j] = s;
      }
    const V = new Float64Array(inp * r);
    for (let i = 0; i < inp; i++)
      for (let j = 0; j < r; j++) {
        if (S[j] === 0) continue;
        let s = 0;
        for (let a = 0; a < k; a++) s += ct[i * k + a] * vectors[a * k + j];
        V[i * r + j] = s / S[j];
      }
    return { U, S, V, rank: r };
  } finally {
    backend.dispose(W);
  }
}

/** ReALLM's stored factors of a truncated SVD: B = U·√σ [out, r] and A = √σ·Vᵀ [r, in] (float32). */
export function lowRankFactors(svd: TruncatedSvd): { A: Float32Array; B: Float32Array } {
  const r = svd.rank;
  const out = svd.U.length / r;
  const inp = svd.V.length / r;
  const A = new Float32Array(r * inp);
  const B = new Float32Array(out * r);
  for (let j = 0; j < r; j++) {
    const s = Math.sqrt(svd.S[j]);
    for (let i = 0; i < out; i++) B[i * r + j] = svd.U[i * r + j] * s;
    for (let i = 0; i < inp; i++) A[j * inp + i] = svd.V[i * r + j] * s;
  }
  return { A, B };
}

/** B·A [out, in] (float32, row-major) of factors A [r, in], B [out, r]. */
export function lowRankProduct(A: Float32Array, B: Float32Array, out: number, inp: number): Float32Array {
  const r = A.length / inp;
  const w = new Float32Array(out * inp);
  for (let i = 0; i < out; i++) {
    const row = w.subarray(i * inp, (i + 1) * inp);
    for (let j = 0; j < r; j++) {
      const b = B[i * r + j];
      if (b === 0) continue;
      const a = A.subarray(j * inp, (j + 1) * inp);
      for (let c = 0; c < inp; c++) row[c] += b * a[c];
    }
  }
  return w;
}
