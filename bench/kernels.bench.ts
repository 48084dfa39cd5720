// The CPU tiers side by side on the hot ops, in one process: the reference loops, the fast tier on one thread
// and on every core. Usage:
//   npx tsx bench/kernels.bench.ts [--iters 5] [--threads 2]
//   node --experimental-wasm-relaxed-simd --import tsx bench/kernels.bench.ts   (relaxed-SIMD FMA kernels)
// Shapes: matmul 1024³ (as a linear layer's x·Wᵀ and as a plain A·B), the k-means assignment target
// (N = 2^18, K = 4096, d = 8; 2·N·K·d flops), and codebook_linear for a Llama-sized MLP matrix
// (in 2048, out 5632, d 8, K 4096) in the decode shape (1 row) and the prefill shape (512 rows), next to the
// dense linear on the decoded weight. The reference runs each shape once (it is 5–20× slower).

import * as os from "node:os";
import { parseArgs } from "node:util";
import { type Backend, CpuBackend, Rng, type Tensor } from "../src/index.js";

const { values } = parseArgs({
  options: {
    iters: { type: "string", default: "5" },
    threads: { type: "string", default: String(os.availableParallelism()) },
  },
});
const iters = Number(values.iters);
const threads = Number(values.threads);
const tiers: [string, CpuBackend, number][] = [
  ["reference", new CpuBackend({ tier: "reference" }), 1],
  ["fast ×1", new CpuBackend({ threads: 1 }), iters],
  [`fast ×${threads}`, new CpuBackend({ threads }), iters],
];

const rand = (n: number, seed: number) => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
};

/** Median seconds of `n` runs after one warm-up (the reference: one run, no warm-up). */
async function time(be: Backend, n: number, f: () => Tensor): Promise<number> {
  const once = async () => {
    const t0 = performance.now();
    const y = f();
    await be.read(y);
    const s = (performance.now() - t0) / 1000;
    be.dispose(y);
    return s;
  };
  if (n > 1) await once();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) ts.push(await once());
  ts.sort((a, b) => a - b);
  return ts[Math.floor(n / 2)];
}

console.log(
  `machine: ${os.cpus()[0]?.model} ×${os.cpus().length}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; fast tier: ${tiers[2][1].describe()}`,
);
const rows: string[] = [
  "| op, shape | " + tiers.map((t) => t[0]).join(" | ") + " | fast ×N / reference |",
  "|---|---|---|---|---|",
];
const row = (name: string, secs: number[], unit: (s: number) => string) =>
  rows.push(`| ${name} | ${secs.map(unit).join(" | ")} | ${(secs[0] / secs[2]).toFixed(1)}× |`);
const gflops = (flops: number) => (s: number) => `${(flops / s / 1e9).toFixed(1)} GFLOP/s`;
const ms = (s: number) => `${(s * 1000).toFixed(2)} ms`;

// matmul 1024³
const n = 1024;
const A = rand(n * n, 1);
const B = rand(n * n, 2);
for (const [name, tB] of [
  ["matmul 1024³, x·Wᵀ (linear layout)", true],
  ["matmul 1024³, A·B", false],
] as const) {
  const secs: number[] = [];
  for (const [, be, k] of tiers) {
    const a = be.upload(A, [n, n]);
    const b = be.upload(B, [n, n]);
    secs.push(await time(be, k, () => be.matmul(a, b, { transposeB: tB })));
  }
  row(name, secs, gflops(2 * n ** 3));
}

// k-means assignment
{
  const [N, K, d] = [262144, 4096, 8];
  const x = rand(N * d, 3);
  const c = rand(K * d, 4);
  const secs: number[] = [];
  for (const [, be, k] of tiers) {
    const xt = be.upload(x, [N, d]);
    const ct = be.upload(c, [K, d]);
    secs.push(await time(be, Math.min(k, 3), () => be.kmeans_assign(xt, ct).distances));
  }
  row("kmeans_assign N=2^18 K=4096 d=8", secs, gflops(2 * N * K * d));
}

// codebook_linear vs dense linear on the decoded weight
{
  const [inF, outF, d, K] = [2048, 5632, 8, 4096];
  const nb = outF / d;
  const layout = { out: outF, in: inF, d, nb, K, partCols: nb };
  const r = new Rng(5);
  const codes = Int32Array.from({ length: inF * nb }, () => r.int(K));
  const books = rand(K * d, 6);
  for (const M of [1, 512]) {
    const x = rand(M * inF, 7);
    const fused: number[] = [];
    const dense: number[] = [];
    for (const [, be, k] of tiers) {
      const xt = be.upload(x, [M, inF]);
      const ct = be.uploadInt(codes, [inF, nb]);
      const bt = be.upload(books, [1, K, d]);
      const w = be.codebook_decode(ct, bt, layout);
      fused.push(await time(be, k, () => be.codebook_linear(xt, ct, bt, null, layout)));
      dense.push(await time(be, k, () => be.linear(xt, w, null)));
    }
    const shape = M === 1 ? "decode, 1 row" : `prefill, ${M} rows`;
    // bytes a decode step must read: codes (i32 here) + codebook, vs the f32 weight for the dense linear
    const codeBytes = inF * nb * 4 + K * d * 4;
    const unit =
      M === 1
        ? (s: number) => `${ms(s)} (${(codeBytes / s / 1e9).toFixed(1)} GB/s of codes)`
        : (s: number) => `${ms(s)} (${((2 * M * inF * outF) / s / 1e9).toFixed(1)} GFLOP/s)`;
    row(`codebook_linear ${inF}→${outF} d${d} K${K}, ${shape}`, fused, unit);
    row(`linear on the decoded weight, same, ${shape}`, dense, M === 1 ? ms : gflops(2 * M * inF * outF));
  }
}
console.log(rows.join("\n"));
