// ReALLM's low-rank part (compress/lowrank.ts): the randomized truncated SVD against numpy's float64 SVD
// (test/fixtures/svd, made by make_svd.py) on a random, a decaying-spectrum and a nearly low-rank matrix; the
// Jacobi eigen-solver against its definition; the stored factors B·A equal U·diag(σ)·Vᵀ; on a real weight
// matrix, B·A plus the codebook-quantized residual reconstructs W better than either part alone.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  CompressionError,
  CpuBackend,
  decodeWeight,
  extractVectors,
  kmeans,
  linearWeight,
  loadModel,
  lowRankFactors,
  lowRankProduct,
  orthonormalColumns,
  Rng,
  randomizedSvd,
  symmetricEigen,
  vectorLayout,
} from "../../src/index.js";

const be = new CpuBackend();

interface SvdCase {
  name: string;
  out: number;
  in: number;
  rank: number;
  w: number[];
  s: number[];
  bestError: number;
}
const fixture = JSON.parse(fs.readFileSync(path.resolve(__dirname, "../fixtures/svd/svd.json"), "utf8")) as {
  cases: SvdCase[];
};

function frobenius(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

describe("symmetricEigen", () => {
  it("gives A·v = λ·v with orthonormal v, eigenvalues descending", () => {
    const n = 9;
    const r = new Rng(3);
    const m = Float64Array.from({ length: n * n }, () => r.normal());
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = m[i * n + j] + m[j * n + i];
    const { values, vectors } = symmetricEigen(a, n);
    for (let c = 0; c < n; c++) {
      if (c > 0) expect(values[c]).toBeLessThanOrEqual(values[c - 1]);
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += a[i * n + k] * vectors[k * n + c];
        expect(av).toBeCloseTo(values[c] * vectors[i * n + c], 10);
      }
      for (let c2 = 0; c2 < n; c2++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += vectors[i * n + c] * vectors[i * n + c2];
        expect(dot).toBeCloseTo(c === c2 ? 1 : 0, 10);
      }
    }
  });
});

describe("orthonormalColumns", () => {
  it("orthonormalizes, and replaces a dependent column by an orthogonal direction", () => {
    const rows = 7;
    const y = new Float64Array(rows * 3);
    for (let r = 0; r < rows; r++) {
      y[r * 3] = r + 1;
      y[r * 3 + 1] = 2 * (r + 1); // parallel to column 0
      y[r * 3 + 2] = (r * r) % 5;
    }
    const q = orthonormalColumns(y, rows, 3, new Rng(1));
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++) {
        let dot = 0;
        for (let r = 0; r < rows; r++) dot += q[r * 3 + a] * q[r * 3 + b];
        expect(dot).toBeCloseTo(a === b ? 1 : 0, 12);
      }
  });
});

describe("randomizedSvd against numpy's float64 SVD", () => {
  for (const c of fixture.cases) {
    it(`${c.name} [${c.out}, ${c.in}], rank ${c.rank}`, async () => {
      const w = Float32Array.from(c.w);
      const svd = await randomizedSvd(be, w, c.out, c.in, c.rank, { seed: 0 });
      // singular values: within 1e-4 relative of numpy's (5 % on the flat random spectrum, where a randomized
      // range finder with 2 power iterations is not exact)
      const tol = c.name === "random" ? 5e-2 : 1e-4;
      for (let j = 0; j < c.rank; j++) expect(Math.abs(svd.S[j] - c.s[j]) / c.s[j]).toBeLessThan(tol);
      // the rank-r approximation's error is within 0.1 % (random: 2 %) of the optimal (Eckart–Young) error
      const { A, B } = lowRankFactors(svd);
      const err = frobenius(w, lowRankProduct(A, B, c.out, c.in));
      expect(err).toBeLessThanOrEqual(c.bestError * (c.name === "random" ? 1.02 : 1.001) + 1e-6);
      // U and V orthonormal
      for (const [M, rows] of [
        [svd.U, c.out],
        [svd.V, c.in],
      ] as const)
        for (let a = 0; a < c.rank; a++)
          for (let b = 0; b < c.rank; b++) {
            let dot = 0;
            for (let r = 0; r < rows; r++) dot += M[r * c.rank + a] * M[r * c.rank + b];
            expect(dot).toBeCloseTo(a === b ? 1 : 0, 5);
          }
    });
  }

  it("B·A equals U·diag(σ)·Vᵀ", async () => {
    const c = fixture.cases[1];
    const svd = await randomizedSvd(be, Float32Array.from(c.w), c.out, c.in, 4, { seed: 2 });
    const { A, B } = lowRankFactors(svd);
    const ba = lowRankProduct(A, B, c.out, c.in);
    for (let i = 0; i < c.out; i++)
      for (let k = 0; k < c.in; k++) {
        let s = 0;
        for (let j = 0; j < 4; j++) s += svd.U[i * 4 + j] * svd.S[j] * svd.V[k * 4 + j];
        expect(ba[i * c.in + k]).toBeCloseTo(s, 5);
      }
  });

  it("refuses a rank outside 1..min(out, in)", async () => {
    const w = new Float32Array(12);
    await expect(randomizedSvd(be, w, 3, 4, 4)).rejects.toThrow(CompressionError);
    await expect(randomizedSvd(be, w, 3, 4, 0)).rejects.toThrow(/rank 0/);
  });
});

describe("ReALLM's two parts", () => {
  it("B·A + VQ(W − B·A) reconstructs a real weight better than B·A or VQ(W) alone", async () => {
    const { model } = loadModel(path.resolve(__dirname, "../../examples/stories260K"), be);
    const lin = model.weights.layers[1].upProj;
    const out = lin.outFeatures;
    const inp = lin.inFeatures;
    const w = await be.read(linearWeight(be, lin));
    model.dispose();
    const layout = vectorLayout(out, inp, 4);
    const vq = async (m: Float32Array) => {
      const r = await kmeans(be, extractVectors(m, layout), 4, { K: 32, iters: 10, seed: 0 });
      return decodeWeight(r.codes, r.centroids, layout, 32);
    };
    const { A, B } = lowRankFactors(await randomizedSvd(be, w, out, inp, 8));
    const ba = lowRankProduct(A, B, out, inp);
    const residual = Float32Array.from(w, (v, i) => v - ba[i]);
    const both = await vq(residual);
    for (let i = 0; i < both.length; i++) both[i] += ba[i];
    const eBoth = frobenius(w, both);
    const eLow = frobenius(w, ba);
    const eVq = frobenius(w, await vq(w));
    expect(eBoth).toBeLessThan(eLow);
    expect(eBoth).toBeLessThan(eVq);
  });
});
