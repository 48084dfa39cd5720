// k-means: the objective never increases, seeded runs repeat, empty clusters are repaired, and the vector
// layout round-trips (decode(encode(W)) = W when K covers every distinct vector, with padding).

import { describe, expect, it } from "vitest";
import {
  CompressionError,
  CpuBackend,
  decodeWeight,
  extractVectors,
  kmeans,
  placeCodes,
  Rng,
  vectorLayout,
} from "../../src/index.js";

const be = new CpuBackend();

function gaussian(N: number, d: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: N * d }, () => r.normal());
}

describe("kmeans", () => {
  it.each([
    [500, 4, 17, 1],
    [300, 3, 50, 2],
    [257, 8, 64, 3],
  ])("objective is non-increasing: N=%i d=%i K=%i seed %i", async (N, d, K, seed) => {
    const r = await kmeans(be, gaussian(N, d, seed), d, { K, iters: 15, seed });
    for (let i = 1; i < r.objectives.length; i++) {
      expect(r.objectives[i]).toBeLessThanOrEqual(r.objectives[i - 1] * (1 + 1e-12));
    }
    expect(r.objectives.at(-1)!).toBeLessThan(r.objectives[0]);
  });

  it("is deterministic for a seed and depends on it", async () => {
    const x = gaussian(400, 4, 9);
    const a = await kmeans(be, x, 4, { K: 16, iters: 10, seed: 5 });
    const b = await kmeans(be, x, 4, { K: 16, iters: 10, seed: 5 });
    const c = await kmeans(be, x, 4, { K: 16, iters: 10, seed: 6 });
    expect(Array.from(b.codes)).toEqual(Array.from(a.codes));
    expect(Array.from(b.centroids)).toEqual(Array.from(a.centroids));
    expect(Array.from(c.centroids)).not.toEqual(Array.from(a.centroids));
  });

  it("repairs empty clusters by splitting large ones", async () => {
    // 90 copies of one point and 30 distinct others: initial centroids drawn among the copies coincide, so all
    // but the lowest-indexed of them start empty
    const d = 2;
    const r0 = new Rng(4);
    const x = new Float32Array(120 * d);
    for (let n = 90; n < 120; n++) {
      x[n * d] = 5 + r0.normal();
      x[n * d + 1] = 5 + r0.normal();
    }
    const r = await kmeans(be, x, d, { K: 20, iters: 10, seed: 1 });
    expect(r.repairs).toBeGreaterThan(0);
    const used = new Set(r.codes);
    expect(used.size).toBe(20);
    for (let i = 1; i < r.objectives.length; i++) expect(r.objectives[i]).toBeLessThanOrEqual(r.objectives[i - 1]);
  });

  it("rejects K > 65536, K > N and K < 1", async () => {
    await expect(kmeans(be, gaussian(10, 2, 1), 2, { K: 11, iters: 1, seed: 0 })).rejects.toThrow(
      /larger than the number of vectors/,
    );
    await expect(kmeans(be, gaussian(10, 2, 1), 2, { K: 0, iters: 1, seed: 0 })).rejects.toThrow(CompressionError);
    await expect(kmeans(be, new Float32Array(70000), 1, { K: 65537, iters: 1, seed: 0 })).rejects.toThrow(
      /exceeds 65536/,
    );
  });
});

describe("vector layout", () => {
  it.each([
    [12, 5, 4, 1],
    [10, 7, 4, 1],
    [13, 3, 3, 2],
    [20, 4, 2, 3],
  ])("decode(encode(W)) = W for out=%i in=%i d=%i m=%i (K = every vector)", async (out, inp, d, m) => {
    // fp16-exact values so the rounded centroids reproduce W exactly
    const r = new Rng(out * 31 + inp);
    const w = Float32Array.from({ length: out * inp }, () => (r.int(64) - 32) / 8);
    const l = vectorLayout(out, inp, d, m);
    const codes = new Uint16Array(inp * l.nb);
    const K = inp * l.partCols;
    const books = new Float32Array(m * K * d);
    for (let p = 0; p < m; p++) {
      const v = extractVectors(w, l, p);
      const N = v.length / d;
      const res = await kmeans(be, v, d, { K: N, iters: 2, seed: p });
      books.set(res.centroids, p * K * d);
      placeCodes(codes, res.codes, l, p);
      expect(res.finalObjective).toBe(0);
    }
    expect(Array.from(decodeWeight(codes, books, l, K))).toEqual(Array.from(w));
  });

  it("pads the out axis with zeros and cuts vectors of d consecutive output channels", () => {
    // W [3, 2] = [[1, 2], [3, 4], [5, 6]], d = 2 → Wᵀ rows [1, 3, 5, 0], [2, 4, 6, 0]
    const l = vectorLayout(3, 2, 2);
    expect(Array.from(extractVectors(Float32Array.from([1, 2, 3, 4, 5, 6]), l))).toEqual([1, 3, 5, 0, 2, 4, 6, 0]);
  });
});

describe("k-means warm start (init)", () => {
  it("starts from the given centroids: a second run's first objective is the first run's final one", async () => {
    const x = gaussian(400, 3, 9);
    const first = await kmeans(be, x, 3, { K: 12, iters: 6, seed: 0, centroidDtype: "BF16" });
    const again = await kmeans(be, x, 3, { K: 12, iters: 3, seed: 5, init: first.centroids });
    expect(again.objectives[0]).toBeCloseTo(first.finalObjective, 6);
    expect(again.finalObjective).toBeLessThanOrEqual(first.finalObjective * (1 + 1e-6));
    await expect(kmeans(be, x, 3, { K: 12, iters: 1, seed: 0, init: new Float32Array(5) })).rejects.toThrow(
      /5 initial values, need K·d = 36/,
    );
  });
});
