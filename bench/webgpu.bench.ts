// The WebGPU backend's hot kernels, timed on the GPU (each sample: `repeat` dispatches queued back to back, then
// one wait, so submission overhead is amortized). Usage:
//   npx tsx bench/webgpu.bench.ts [--scale full|small] [--iters 5] [--json out.json]
// full (default on a hardware adapter): the targets — matmul 4096³ (as A·B and as a linear's x·Wᵀ);
// k-means assignment N = 2^22, K = 2^16, d = 8 (2·N·K·d flops); codebook_linear for a Llama-2-7B MLP matrix
// (in 4096, out 11008, d 8, K 2^16, the 2.14-bpw preset's shape) in the decode shape (1 row: GB/s of codes and
// centroids read) and the prefill shape (512 rows), beside the dense linear on the decoded weight.
// small (default on a software adapter such as llvmpipe): the same kernels at sizes a CPU emulation finishes.

import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { Rng, type Tensor, WebGpuBackend } from "../src/index.js";

const { values } = parseArgs({
  options: {
    scale: { type: "string" },
    iters: { type: "string", default: "5" },
    json: { type: "string" },
  },
});
const be = await WebGpuBackend.create();
const scale = values.scale ?? (be.software ? "small" : "full");
if (scale !== "full" && scale !== "small") throw new Error(`--scale must be full or small, got ${scale}`);
const full = scale === "full";
const iters = Number(values.iters);

const rand = (n: number, seed: number) => {
  const r = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal();
  return a;
};

/** Median seconds per call over `iters` samples of `repeat` calls each, after one warm-up sample. */
async function time(f: () => Tensor, repeat: number): Promise<number> {
  const sample = async () => {
    const t0 = performance.now();
    for (let i = 0; i < repeat; i++) be.dispose(f());
    await be.sync();
    return (performance.now() - t0) / 1000 / repeat;
  };
  await sample();
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) ts.push(await sample());
  ts.sort((a, b) => a - b);
  return ts[Math.floor(iters / 2)];
}

interface Row {
  name: string;
  seconds: number;
  rate: string;
}
const rows: Row[] = [];
const add = (name: string, seconds: number, rate: string) => {
  rows.push({ name, seconds, rate });
  console.error(`${name}: ${(seconds * 1000).toFixed(3)} ms, ${rate}`);
};
const tflops = (flops: number, s: number) =>
  flops / s >= 1e11 ? `${(flops / s / 1e12).toFixed(2)} TFLOP/s` : `${(flops / s / 1e9).toFixed(2)} GFLOP/s`;

// matmul
{
  const n = full ? 4096 : 512;
  const a = be.upload(rand(n * n, 1), [n, n]);
  const b = be.upload(rand(n * n, 2), [n, n]);
  for (const transposeB of [false, true]) {
    const s = await time(() => be.matmul(a, b, { transposeB }), full ? 10 : 2);
    add(`matmul ${n}³, ${transposeB ? "x·Wᵀ (linear layout)" : "A·B"}`, s, tflops(2 * n ** 3, s));
  }
  be.dispose(a);
  be.dispose(b);
}

// k-means assignment
let matmulRate = 0;
{
  matmulRate = (2 * (full ? 4096 : 512) ** 3) / rows[0].seconds;
  const [N, K, d] = full ? [2 ** 22, 2 ** 16, 8] : [2 ** 14, 2 ** 10, 8];
  const x = be.upload(rand(N * d, 3), [N, d]);
  const c = be.upload(rand(K * d, 4), [K, d]);
  const s = await time(() => {
    const { codes, distances } = be.kmeans_assign(x, c);
    be.dispose(codes);
    return distances;
  }, 1);
  const rate = (2 * N * K * d) / s;
  add(
    `kmeans_assign N=2^${Math.log2(N)} K=2^${Math.log2(K)} d=${d}`,
    s,
    `${tflops(2 * N * K * d, s)} (${((100 * rate) / matmulRate).toFixed(0)} % of matmul A·B)`,
  );
}

// codebook_linear, decode and prefill shapes, vs the dense linear on the decoded weight
{
  const [inF, outF, d, K] = full ? [4096, 11008, 8, 2 ** 16] : [1024, 2752, 8, 2 ** 12];
  const nb = outF / d;
  const layout = { out: outF, in: inF, d, nb, K, partCols: nb };
  const r = new Rng(5);
  const codes = be.uploadInt(
    Int32Array.from({ length: inF * nb }, () => r.int(K)),
    [inF, nb],
  );
  const books = be.upload(rand(K * d, 6), [1, K, d]);
  const w = be.codebook_decode(codes, books, layout);
  // what a decode step reads: the codes (i32 on the GPU) and the codebook, vs the f32 weight for the dense linear
  const codeBytes = inF * nb * 4 + K * d * 4;
  for (const M of [1, 512]) {
    const x = be.upload(rand(M * inF, 7), [M, inF]);
    const fused = await time(() => be.codebook_linear(x, codes, books, null, layout), M === 1 ? 50 : 5);
    const dense = await time(() => be.linear(x, w, null), M === 1 ? 50 : 5);
    const shape = M === 1 ? "decode, 1 row" : `prefill, ${M} rows`;
    const rate =
      M === 1
        ? (s: number, bytes: number) => `${(bytes / s / 1e9).toFixed(1)} GB/s`
        : (s: number) => tflops(2 * M * inF * outF, s);
    add(`codebook_linear ${inF}→${outF} d${d} K${K}, ${shape}`, fused, rate(fused, codeBytes));
    add(`linear on the decoded weight, same, ${shape}`, dense, rate(dense, inF * outF * 4));
    be.dispose(x);
  }
}

const header = `${be.describe()}, ${new Date().toISOString().slice(0, 10)}, scale ${scale}, median of ${iters}`;
console.log(header);
console.log("| kernel, shape | median ms | rate |\n|---|---|---|");
for (const r of rows) console.log(`| ${r.name} | ${(r.seconds * 1000).toFixed(3)} | ${r.rate} |`);
if (values.json) fs.writeFileSync(values.json, JSON.stringify({ device: be.describe(), scale, iters, rows }, null, 2));
await be.destroy();
