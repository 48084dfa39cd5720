// k-means as the ClusComp reference runs it (faiss-style Lloyd): K centroids initialised from K distinct points
// sampled with a seed; `iters` Lloyd iterations with plain L2; empty clusters re-seeded by splitting a large
// cluster; final codes = nearest centroid of the stored (fp16 / bf16-rounded) centroids.
// The hot loops (assignment, segmented sums) are backend ops; this file is the orchestration.
//
// Empty-cluster split: like faiss, a cluster j is drawn with probability ∝ (size_j − 1); unlike faiss (which
// perturbs a copy of c_j by ±1/1024), the new centroid is the member of j farthest from c_j. That also halves j
// in practice and keeps the objective non-increasing from one assignment to the next.
//
// Weighted k-means (Hessian-aware, as LLM-Codebook): with per-vector weights w ≥ 0 the objective is
// Σₙ wₙ‖xₙ − c(xₙ)‖². The assignment is unchanged (a vector's weight does not depend on the centroid) and the
// centroid update is the weighted mean Σ wₙxₙ / Σ wₙ (the plain mean for a cluster whose weights are all 0).
// ClusComp's vectors lie along the output axis of one input channel, so the diagonal of the input Hessian
// H = XᵀX gives one weight per vector (compress/hessian.ts). Equal weights give plain k-means exactly.
//
// Shapes: x [N, d], centroids [K, d], codes [N], weights [N].

import type { Backend } from "../backend/backend.js";
import { CompressionError } from "../errors.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../tensor/dtype.js";
import { Rng } from "../tensor/rng.js";

export const MAX_CLUSTERS = 65536;

export type CentroidDtype = "F16" | "BF16";

export interface KMeansOptions {
  K: number;
  iters: number;
  seed: number;
  /** Rounding applied to the final centroids before the final assignment (default F16). */
  centroidDtype?: CentroidDtype;
  /** Per-vector weights [N] (finite, ≥ 0, not all 0) of the weighted objective; default: all 1. */
  weights?: Float32Array;
  /** Initial centroids [K, d] (a warm start); default: K distinct vectors drawn with `seed`. */
  init?: Float32Array;
  onIteration?: (iteration: number, objective: number) => void;
}

export interface KMeansResult {
  /** Final centroids [K, d], already rounded to centroidDtype. */
  centroids: Float32Array;
  codes: Int32Array;
  /** Σ (weighted) squared distances after each assignment step of the Lloyd iterations (length iters). */
  objectives: number[];
  /** Objective of the final codes against the rounded centroids. */
  finalObjective: number;
  /** Number of empty clusters re-seeded, summed over iterations. */
  repairs: number;
}

export function validateClusters(K: number, N: number, where: string): void {
  if (!Number.isInteger(K) || K < 1)
    throw new CompressionError("compress.clusters", `${where}: K must be an integer ≥ 1, got ${K}`);
  if (K > MAX_CLUSTERS) {
    throw new CompressionError("compress.clusters", `${where}: K = ${K} exceeds ${MAX_CLUSTERS} (codes are 16-bit)`);
  }
  if (K > N) {
    throw new CompressionError("compress.clusters", `${where}: K = ${K} is larger than the number of vectors (${N})`);
  }
}

/** K distinct indices of [0, N), drawn with the seed (partial Fisher–Yates). */
export function sampleDistinct(N: number, K: number, rng: Rng): Int32Array {
  const idx = new Int32Array(N);
  for (let i = 0; i < N; i++) idx[i] = i;
  for (let i = 0; i < K; i++) {
    const j = i + rng.int(N - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx.slice(0, K);
}

export function roundCentroids(c: Float32Array, dtype: CentroidDtype): Float32Array {
  const out = new Float32Array(c.length);
  if (dtype === "F16") for (let i = 0; i < c.length; i++) out[i] = f16ToF32(f32ToF16(c[i]));
  else for (let i = 0; i < c.length; i++) out[i] = bf16ToF32(f32ToBf16(c[i]));
  return out;
}

export async function kmeans(backend: Backend, x: Float32Array, d: number, opts: KMeansOptions): Promise<KMeansResult> {
  const N = x.length / d;
  const { K } = opts;
  validateClusters(K, N, "k-means");
  const w = opts.weights;
  if (w) validateWeights(w, N);
  const rng = new Rng(opts.seed);
  let centroids = new Float32Array(K * d);
  if (opts.init) {
    if (opts.init.length !== K * d)
      throw new CompressionError(
        "compress.kmeans_init",
        `k-means: ${opts.init.length} initial values, need K·d = ${K * d}`,
      );
    centroids.set(opts.init);
  } else {
    const init = sampleDistinct(N, K, rng);
    for (let k = 0; k < K; k++) centroids.set(x.subarray(init[k] * d, (init[k] + 1) * d), k * d);
  }

  const xT = backend.upload(x, [N, d]);
  // weighted sums Σ wₙxₙ come from the same segmented-sum op over the scaled vectors wₙxₙ
  let xwT: typeof xT | null = null;
  if (w) {
    const xw = new Float32Array(N * d);
    for (let n = 0; n < N; n++) for (let j = 0; j < d; j++) xw[n * d + j] = w[n] * x[n * d + j];
    xwT = backend.upload(xw, [N, d]);
  }
  const weightedObjective = (dist: Float32Array): number => {
    let obj = 0;
    if (w) for (let n = 0; n < N; n++) obj += w[n] * dist[n];
    else for (let n = 0; n < N; n++) obj += dist[n];
    return obj;
  };
  const objectives: number[] = [];
  let repairs = 0;
  try {
    for (let it = 0; it < opts.iters; it++) {
      const cT = backend.upload(centroids, [K, d]);
      const { codes: codesT, distances: distT } = backend.kmeans_assign(xT, cT);
      backend.dispose(cT);
      const dist = await backend.read(distT);
      const obj = weightedObjective(dist);
      objectives.push(obj);
      opts.onIteration?.(it, obj);
      const { sums: sumsT, counts: countsT } = backend.kmeans_update(xT, codesT, K);
      const sums = await backend.read(sumsT);
      const counts = await backend.read(countsT);
      const codes = await backend.readInt(codesT);
      for (const t of [distT, sumsT, countsT]) backend.dispose(t);
      let wsums: Float32Array | null = null;
      const wtotal = new Float64Array(K);
      if (xwT && w) {
        const r = backend.kmeans_update(xwT, codesT, K);
        wsums = await backend.read(r.sums);
        backend.dispose(r.sums);
        backend.dispose(r.counts);
        for (let n = 0; n < N; n++) wtotal[codes[n]] += w[n];
      }
      backend.dispose(codesT);

      const next = new Float32Array(K * d);
      const empty: number[] = [];
      for (let k = 0; k < K; k++) {
        if (counts[k] === 0) {
          empty.push(k);
          continue;
        }
        if (wsums && wtotal[k] > 0) for (let j = 0; j < d; j++) next[k * d + j] = wsums[k * d + j] / wtotal[k];
        else for (let j = 0; j < d; j++) next[k * d + j] = sums[k * d + j] / counts[k];
      }
      if (empty.length > 0) {
        repairs += empty.length;
        splitLargeClusters(next, empty, Float64Array.from(counts), codes, dist, x, d, N, K, rng);
      }
      centroids = next;
    }
    const rounded = roundCentroids(centroids, opts.centroidDtype ?? "F16");
    const cT = backend.upload(rounded, [K, d]);
    const { codes: codesT, distances: distT } = backend.kmeans_assign(xT, cT);
    backend.dispose(cT);
    const codes = await backend.readInt(codesT);
    const dist = await backend.read(distT);
    backend.dispose(codesT);
    backend.dispose(distT);
    return { centroids: rounded, codes, objectives, finalObjective: weightedObjective(dist), repairs };
  } finally {
    backend.dispose(xT);
    if (xwT) backend.dispose(xwT);
  }
}

function validateWeights(w: Float32Array, N: number): void {
  if (w.length !== N) throw new CompressionError("compress.weights", `k-means: ${w.length} weights for ${N} vectors`);
  let any = false;
  for (let n = 0; n < N; n++) {
    if (!(Number.isFinite(w[n]) && w[n] >= 0)) {
      throw new CompressionError("compress.weights", `k-means: weight ${n} is ${w[n]}; weights must be finite and ≥ 0`);
    }
    if (w[n] > 0) any = true;
  }
  if (!any) throw new CompressionError("compress.weights", "k-means: every weight is 0");
}

/**
 * Re-seeds each empty cluster e: draw a cluster j with probability ∝ (size_j − 1) among clusters whose farthest
 * member is not on the centroid, set c_e to that farthest member (by the assignment distances) and move its
 * count from j to e. Each cluster is split at most once per iteration.
 */
function splitLargeClusters(
  centroids: Float32Array,
  empty: number[],
  counts: Float64Array,
  codes: Int32Array,
  dist: Float32Array,
  x: Float32Array,
  d: number,
  N: number,
  K: number,
  rng: Rng,
): void {
  const far = new Int32Array(K).fill(-1);
  for (let n = 0; n < N; n++) {
    const k = codes[n];
    if (dist[n] > 0 && (far[k] < 0 || dist[n] > dist[far[k]])) far[k] = n;
  }
  const weight = new Float64Array(K);
  let total = 0;
  for (let k = 0; k < K; k++) {
    weight[k] = far[k] >= 0 ? Math.max(0, counts[k] - 1) : 0;
    total += weight[k];
  }
  for (const e of empty) {
    if (total <= 0) return; // every point already sits on a centroid: fewer distinct points than clusters
    let r = rng.next() * total;
    let j = 0;
    while (j < K - 1 && (r >= weight[j] || weight[j] === 0)) {
      r -= weight[j];
      j++;
    }
    const p = far[j];
    centroids.set(x.subarray(p * d, (p + 1) * d), e * d);
    counts[j]--;
    counts[e] = 1;
    total -= weight[j];
    weight[j] = 0;
  }
}
