// Hessian-weighted k-means (compress/kmeans.ts with weights, compress/hessian.ts): equal weights give plain
// k-means, the weighted objective never increases, the weighted centroid update matches a float64 oracle, the
// input diagonals match an independent host computation, and on a layer whose input channels differ in scale
// the weighted codebook has a lower output error ‖X·Wᵀ − X·Ŵᵀ‖² than the plain one.

import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  CompressionError,
  CpuBackend,
  collectInputStatistics,
  compressModel,
  dampenedHessian,
  decodeWeight,
  extractVectors,
  f16ToF32,
  f32ToF16,
  gptqAssign,
  gptqFactor,
  gptqQuantize,
  HESSIAN_DAMPENING,
  inverseCholeskyUpper,
  inverseCholeskyUpperFast,
  kmeans,
  layerInputStatistics,
  loadModel,
  openCheckpoint,
  placeCodes,
  Rng,
  readModelConfig,
  rtnQuantize,
  sampleDistinct,
  vectorLayout,
  vectorWeights,
} from "../../src/index.js";
import { TEXT } from "../helpers/cli.js";
import { tmpDir } from "../helpers/tmp.js";

const be = new CpuBackend();
const EXAMPLE = path.resolve(__dirname, "../../examples/stories260K");

function gaussian(N: number, d: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: N * d }, () => r.normal());
}

/** ‖X·Wᵀ − X·Ŵᵀ‖² for X [T, in], W [out, in] and Ŵ decoded from codes (extractVectors' order) and centroids. */
function layerOutputError(
  X: Float32Array,
  T: number,
  W: Float32Array,
  out: number,
  inp: number,
  l: ReturnType<typeof vectorLayout>,
  centroids: Float32Array,
  codes: ArrayLike<number>,
  K: number,
): number {
  const all = new Uint16Array(inp * l.nb);
  placeCodes(all, codes, l, 0);
  const Wq = decodeWeight(all, centroids, l, K);
  let e = 0;
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < inp; i++) s += X[t * inp + i] * (W[o * inp + i] - Wq[o * inp + i]);
      e += s * s;
    }
  }
  return e;
}

function positiveWeights(N: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: N }, () => Math.exp(2 * r.normal()));
}

describe("weighted k-means", () => {
  it("equals plain k-means when every weight is 1, and scales its objective with a constant weight", async () => {
    const x = gaussian(400, 4, 1);
    const plain = await kmeans(be, x, 4, { K: 16, iters: 8, seed: 3 });
    const ones = await kmeans(be, x, 4, { K: 16, iters: 8, seed: 3, weights: new Float32Array(400).fill(1) });
    expect(ones.centroids).toEqual(plain.centroids);
    expect(ones.codes).toEqual(plain.codes);
    expect(ones.objectives).toEqual(plain.objectives);
    // a power of two scales every sum exactly: same clustering, objective ×4
    const fours = await kmeans(be, x, 4, { K: 16, iters: 8, seed: 3, weights: new Float32Array(400).fill(4) });
    expect(fours.centroids).toEqual(plain.centroids);
    expect(fours.codes).toEqual(plain.codes);
    for (const [i, o] of fours.objectives.entries()) expect(o).toBeCloseTo(4 * plain.objectives[i], 6);
  });

  it.each([
    [500, 4, 17, 1],
    [300, 3, 50, 2],
    [257, 8, 64, 3],
  ])("the weighted objective is non-increasing: N=%i d=%i K=%i seed %i", async (N, d, K, seed) => {
    const r = await kmeans(be, gaussian(N, d, seed), d, { K, iters: 15, seed, weights: positiveWeights(N, seed) });
    for (let i = 1; i < r.objectives.length; i++) {
      expect(r.objectives[i]).toBeLessThanOrEqual(r.objectives[i - 1] * (1 + 1e-6));
    }
    expect(r.objectives.at(-1)!).toBeLessThan(r.objectives[0]);
  });

  it("one Lloyd step matches a float64 oracle of the weighted centroid update", async () => {
    const N = 300;
    const d = 3;
    const K = 7;
    const x = gaussian(N, d, 5);
    const w = positiveWeights(N, 6);
    const r = await kmeans(be, x, d, { K, iters: 1, seed: 9, weights: w });
    // oracle: the same seeded initial points, nearest assignment, weighted means in float64
    const init = sampleDistinct(N, K, new Rng(9));
    const c0 = Array.from({ length: K }, (_, k) => Array.from({ length: d }, (_, j) => x[init[k] * d + j]));
    const sum = Array.from({ length: K }, () => new Float64Array(d));
    const wsum = new Float64Array(K);
    let objective = 0;
    for (let n = 0; n < N; n++) {
      let best = 0;
      let bestD = Infinity;
      for (let k = 0; k < K; k++) {
        let dist = 0;
        for (let j = 0; j < d; j++) dist += (x[n * d + j] - c0[k][j]) ** 2;
        if (dist < bestD) {
          bestD = dist;
          best = k;
        }
      }
      objective += w[n] * bestD;
      wsum[best] += w[n];
      for (let j = 0; j < d; j++) sum[best][j] += w[n] * x[n * d + j];
    }
    expect(r.objectives[0]).toBeCloseTo(objective, 3);
    for (let k = 0; k < K; k++) {
      expect(wsum[k]).toBeGreaterThan(0); // no empty cluster: the update alone is compared
      for (let j = 0; j < d; j++) {
        const want = f16ToF32(f32ToF16(sum[k][j] / wsum[k]));
        expect(Math.abs(r.centroids[k * d + j] - want)).toBeLessThanOrEqual(Math.abs(want) * 2 ** -10 + 1e-6);
      }
    }
  });

  it("refuses weights of the wrong length, negative, non-finite or all zero", async () => {
    const x = gaussian(20, 2, 1);
    const bad = [
      new Float32Array(19).fill(1),
      Float32Array.from({ length: 20 }, (_, i) => (i === 3 ? -1 : 1)),
      Float32Array.from({ length: 20 }, (_, i) => (i === 3 ? Number.NaN : 1)),
      new Float32Array(20),
    ];
    for (const weights of bad) {
      await expect(kmeans(be, x, 2, { K: 4, iters: 2, seed: 0, weights })).rejects.toBeInstanceOf(CompressionError);
    }
  });
});

describe("Hessian weights", () => {
  it("vectorWeights gives vector (i, j) its input channel's hᵢ plus the dampening", () => {
    const h = Float64Array.from([1, 4, 0, 7]);
    const w = vectorWeights(h, 3);
    const damp = HESSIAN_DAMPENING * 3;
    expect(Array.from(w)).toEqual([1, 1, 1, 4, 4, 4, 0, 0, 0, 7, 7, 7].map((v) => Math.fround(v + damp)));
    // the order is extractVectors': vector i·cols + j holds W[j·d .. j·d+d−1, i]
    const l = vectorLayout(6, 4, 2);
    const wm = Float32Array.from({ length: 24 }, (_, k) => k);
    const v = extractVectors(wm, l);
    expect(l.nb).toBe(3);
    expect(Array.from(v.subarray((1 * 3 + 2) * 2, (1 * 3 + 2) * 2 + 2))).toEqual([wm[4 * 4 + 1], wm[5 * 4 + 1]]);
  });

  it("collectInputDiagonals: layer 0's q/k/v diagonal equals Σ (rms_norm(embedding)·g)² computed on the host", async () => {
    const { model, config } = loadModel(EXAMPLE, be);
    try {
      const r = new Rng(2);
      const windows = [0, 1].map(() => Int32Array.from({ length: 24 }, () => r.int(config.vocabSize)));
      const stats = await collectInputStatistics(model, windows, { full: true });
      const C = config.hiddenSize;
      const emb = await be.read(model.weights.embedTokens);
      const g = await be.read(model.weights.layers[0].inputLayernorm);
      const want = new Float64Array(C);
      for (const ids of windows) {
        for (const t of ids) {
          let ms = 0;
          for (let c = 0; c < C; c++) ms += emb[t * C + c] ** 2;
          const inv = 1 / Math.sqrt(ms / C + config.rmsNormEps);
          for (let c = 0; c < C; c++) want[c] += (emb[t * C + c] * inv * g[c]) ** 2;
        }
      }
      const st = stats.get("model.layers.0.self_attn.q_proj")!;
      expect(stats.get("model.layers.0.self_attn.v_proj")).toBe(st);
      for (let c = 0; c < C; c++) expect(st.diagonal[c]).toBeCloseTo(want[c], 3);
      // the full XᵀX is symmetric and its diagonal is the diagonal
      const H = st.hessian!;
      for (let i = 0; i < C; i++) {
        expect(H[i * C + i]).toBeCloseTo(st.diagonal[i], 2);
        for (let j = 0; j < i; j++) expect(H[i * C + j]).toBeCloseTo(H[j * C + i], 3);
      }
      // every compressed linear has statistics of its input width
      for (let l = 0; l < config.numHiddenLayers; l++) {
        expect(stats.get(`model.layers.${l}.mlp.down_proj`)!.diagonal.length).toBe(config.intermediateSize);
        const o = stats.get(`model.layers.${l}.self_attn.o_proj`)!;
        expect(o.hessian!.length).toBe((config.numAttentionHeads * config.headDim) ** 2);
      }
    } finally {
      model.dispose();
    }
  });

  it("on inputs whose channels differ in scale, the weighted codebook has the lower output error", async () => {
    const out = 32;
    const inp = 48;
    const d = 4;
    const T = 256;
    const r = new Rng(11);
    const W = Float32Array.from({ length: out * inp }, () => r.normal());
    const scale = Float64Array.from({ length: inp }, () => Math.exp(1.5 * r.normal()));
    const X = Float32Array.from({ length: T * inp }, (_, k) => scale[k % inp] * r.normal());
    const h = new Float64Array(inp);
    for (let t = 0; t < T; t++) for (let i = 0; i < inp; i++) h[i] += X[t * inp + i] ** 2;
    const l = vectorLayout(out, inp, d);
    const v = extractVectors(W, l);
    const outputError = (centroids: Float32Array, codes: Int32Array) =>
      layerOutputError(X, T, W, out, inp, l, centroids, codes, 24);
    const plain = await kmeans(be, v, d, { K: 24, iters: 20, seed: 0 });
    const weighted = await kmeans(be, v, d, { K: 24, iters: 20, seed: 0, weights: vectorWeights(h, l.nb) });
    const ePlain = outputError(plain.centroids, plain.codes);
    const eWeighted = outputError(weighted.centroids, weighted.codes);
    expect(eWeighted).toBeLessThan(0.8 * ePlain);
  });
});

/** Random [T, n] inputs with correlated channels of different scales (a random mixing of scaled Gaussians). */
function correlatedInputs(T: number, n: number, r: Rng): Float32Array {
  const mix = Float64Array.from({ length: n * n }, () => r.normal() / Math.sqrt(n));
  for (let i = 0; i < n; i++) mix[i * n + i] += 1;
  const scale = Float64Array.from({ length: n }, () => Math.exp(r.normal()));
  const X = new Float32Array(T * n);
  for (let t = 0; t < T; t++) {
    const z = Float64Array.from({ length: n }, (_, i) => scale[i] * r.normal());
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += z[i] * mix[i * n + j];
      X[t * n + j] = s;
    }
  }
  return X;
}

function gram(X: Float32Array, T: number, n: number): Float64Array {
  const H = new Float64Array(n * n);
  for (let t = 0; t < T; t++)
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) H[i * n + j] += X[t * n + i] * X[t * n + j];
  return H;
}

describe("statistics block by block", () => {
  it("layerInputStatistics over each block's original inputs equals collectInputStatistics exactly", async () => {
    const { model, config } = loadModel(EXAMPLE, be);
    try {
      const r = new Rng(6);
      const windows = [0, 1, 2].map(() => Int32Array.from({ length: 20 }, () => r.int(config.vocabSize)));
      const whole = await collectInputStatistics(model, windows, { full: true });
      let xs = windows.map((ids) => be.embedding(be.uploadInt(ids, [1, ids.length]), model.weights.embedTokens));
      for (let l = 0; l < config.numHiddenLayers; l++) {
        const { stats, outputs } = await layerInputStatistics(
          be,
          config,
          model.weights.layers[l],
          l,
          xs,
          (n) => model.ropeFor(n),
          true,
        );
        for (const x of xs) be.dispose(x);
        xs = outputs;
        for (const [name, st] of stats) {
          expect(Array.from(st.diagonal)).toEqual(Array.from(whole.get(name)!.diagonal));
          expect(Array.from(st.hessian!)).toEqual(Array.from(whole.get(name)!.hessian!));
        }
        expect(stats.size).toBe(7);
      }
      for (const x of xs) be.dispose(x);
    } finally {
      model.dispose();
    }
  });

  it("--hessian-inputs compressed: block 0 sees the same inputs, later blocks the compressed blocks' outputs", async () => {
    const root = tmpDir();
    const calibration = { calib: TEXT, samples: 3, seqlen: 64, seed: 0 };
    const base = { method: "cluscomp" as const, bits: 3, iters: 3, assignment: "gptq" as const, calibration };
    const [orig, comp] = ["original", "compressed"] as const;
    await compressModel(be, EXAMPLE, path.join(root, orig), { ...base, hessianInputs: orig });
    await compressModel(be, EXAMPLE, path.join(root, comp), { ...base, hessianInputs: comp });
    const a = openCheckpoint(path.join(root, orig));
    const b = openCheckpoint(path.join(root, comp));
    const same = (n: string) =>
      Buffer.from((a.readRaw(n) as Uint8Array).buffer).equals(Buffer.from((b.readRaw(n) as Uint8Array).buffer));
    expect(same("model.layers.0.mlp.down_proj.codes")).toBe(true);
    expect(same("model.layers.3.mlp.down_proj.codes")).toBe(false);
    a.close();
    b.close();
    expect(readModelConfig(path.join(root, comp)).raw.quantization_config).toMatchObject({
      hessian_inputs: "compressed",
    });
    await expect(
      compressModel(be, EXAMPLE, path.join(root, "never"), { ...base, share: "model", hessianInputs: comp }),
    ).rejects.toThrow(/--share none or block/);
  });
});

describe("GPTQ assignment (error feedback)", () => {
  it("inverseCholeskyUpper: UᵀU·H = I on a random positive definite matrix", () => {
    const n = 37;
    const r = new Rng(4);
    const H = gram(correlatedInputs(80, n, r), 80, n);
    for (let i = 0; i < n; i++) H[i * n + i] += 0.1;
    const U = inverseCholeskyUpper(H, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(U[i * n + j]).toBe(0);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) {
          let hinv = 0;
          for (let m = 0; m < n; m++) hinv += U[m * n + i] * U[m * n + k];
          s += hinv * H[k * n + j];
        }
        expect(s).toBeCloseTo(i === j ? 1 : 0, 8);
      }
    }
  });

  it("inverseCholeskyUpperFast (blocked, matmuls on the backend) equals the float64 host factorization", async () => {
    for (const [n, bs] of [
      [300, 64],
      [601, 128],
    ]) {
      const r = new Rng(n);
      const T = 2 * n;
      const X = correlatedInputs(T, n, r);
      const H = dampenedHessian(gram(X, T, n), n);
      const want = inverseCholeskyUpper(H, n);
      const got = await inverseCholeskyUpperFast(be, H, n, bs);
      let max = 0;
      let ref = 0;
      for (let i = 0; i < n * n; i++) {
        max = Math.max(max, Math.abs(got[i] - want[i]));
        ref = Math.max(ref, Math.abs(want[i]));
      }
      // float32 products (as GPTQ itself factorizes), accumulated in float64
      expect(max / ref).toBeLessThan(1e-4);
      // upper triangular
      for (let i = 1; i < n; i++) for (let j = 0; j < i; j++) expect(got[i * n + j]).toBe(0);
    }
  });

  it("with uncorrelated inputs (H diagonal) the codes are the nearest centroids", async () => {
    const out = 24;
    const inp = 40;
    const d = 4;
    const r = new Rng(8);
    const W = Float32Array.from({ length: out * inp }, () => r.normal());
    const l = vectorLayout(out, inp, d);
    const km = await kmeans(be, extractVectors(W, l), d, { K: 16, iters: 5, seed: 0 });
    const H = new Float64Array(inp * inp);
    for (let i = 0; i < inp; i++) H[i * inp + i] = 1 + i;
    const codes = await gptqAssign(be, W, gptqFactor(H, inp), km.centroids, l);
    expect(Array.from(codes)).toEqual(Array.from(km.codes));
  });

  it.each([
    [48, 64, 4, 32, 1],
    [30, 200, 6, 24, 2],
  ])(
    "on correlated inputs its output error is below nearest assignment's: out %i, in %i, d %i, K %i, seed %i",
    async (out, inp, d, K, seed) => {
      const r = new Rng(seed);
      const T = 3 * inp;
      const X = correlatedInputs(T, inp, r);
      const W = Float32Array.from({ length: out * inp }, () => r.normal());
      const l = vectorLayout(out, inp, d);
      const km = await kmeans(be, extractVectors(W, l), d, { K, iters: 10, seed });
      const outputError = (codes: ArrayLike<number>) => layerOutputError(X, T, W, out, inp, l, km.centroids, codes, K);
      const codes = await gptqAssign(be, W, gptqFactor(gram(X, T, inp), inp), km.centroids, l);
      const eGptq = outputError(codes);
      const eNearest = outputError(km.codes);
      expect(eGptq).toBeLessThan(0.9 * eNearest);
    },
  );

  it("GPTQ itself (scalar grid, RTN's format): same grid as RTN on uncorrelated inputs, lower output error on correlated ones", async () => {
    const out = 20;
    const inp = 160;
    const bits = 3;
    const G = 32;
    const r = new Rng(4);
    const W = Float32Array.from({ length: out * inp }, () => r.normal());
    const dequant = (q: { q: Int32Array; scales: Uint16Array; zeros: Uint16Array }) =>
      Float32Array.from(W, (_, idx) => {
        const o = Math.floor(idx / inp);
        const g = o * Math.ceil(inp / G) + Math.floor((idx % inp) / G);
        return q.q[idx] * f16ToF32(q.scales[g]) + f16ToF32(q.zeros[g]);
      });
    const rtn = rtnQuantize(W, out, inp, bits, G);
    // H diagonal: no error is pushed anywhere (U is diagonal), so GPTQ is RTN exactly
    const Hd = new Float64Array(inp * inp);
    for (let i = 0; i < inp; i++) Hd[i * inp + i] = 1 + (i % 7);
    const same = await gptqQuantize(be, W, out, inp, bits, G, gptqFactor(Hd, inp));
    expect(Array.from(same.q)).toEqual(Array.from(rtn.q));
    expect(Array.from(same.scales)).toEqual(Array.from(rtn.scales));
    // correlated inputs: the layer's output error drops well below RTN's
    const T = 3 * inp;
    const X = correlatedInputs(T, inp, r);
    const outputError = (Wq: Float32Array) => {
      let e = 0;
      for (let t = 0; t < T; t++)
        for (let o = 0; o < out; o++) {
          let s = 0;
          for (let i = 0; i < inp; i++) s += X[t * inp + i] * (W[o * inp + i] - Wq[o * inp + i]);
          e += s * s;
        }
      return e;
    };
    const gq = await gptqQuantize(be, W, out, inp, bits, G, gptqFactor(gram(X, T, inp), inp));
    expect(Math.max(...gq.q)).toBeLessThanOrEqual(2 ** bits - 1);
    expect(outputError(dequant(gq))).toBeLessThan(0.8 * outputError(dequant(rtn)));
  });
});
