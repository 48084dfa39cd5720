// k-means assignment throughput on a backend, counting 2·N·K·d FLOP per assignment (the distance matmul), and
// one full Lloyd iteration (assign + update). Usage:
//   npx tsx bench/kmeans.bench.ts [--backend cpu] [--iters 3]
// Shapes: the fast-CPU target (N=262144, K=4096, d=8) and llama-en-26m's MLP matrices at ~3 bpw.

import * as os from "node:os";
import { parseArgs } from "node:util";
import { createBackend, Rng } from "../src/index.js";

const { values } = parseArgs({
  options: { backend: { type: "string", default: "cpu" }, iters: { type: "string", default: "3" } },
});
const be = await createBackend(values.backend!);
const iters = Number(values.iters);
const SHAPES: [string, number, number, number][] = [
  ["target N=2^18 K=4096 d=8", 262144, 4096, 8],
  ["llama-en-26m MLP, 3 bpw, d=6", 120320, 2474, 6],
  ["llama-en-26m attention q, 3 bpw, d=6", 44032, 853, 6],
  ["llama-en-26m MLP, 2.2 bpw, d=8", 90112, 1126, 8],
];
console.log(
  `machine: ${os.cpus()[0]?.model} ×${os.cpus().length}, Node ${process.version}, backend ${be.name}, ${new Date().toISOString().slice(0, 10)}`,
);
console.log("| shape | N | K | d | assign median s | GFLOP/s | Lloyd iteration s |");
console.log("|---|---|---|---|---|---|---|");
for (const [name, N, K, d] of SHAPES) {
  const r = new Rng(1);
  const x = Float32Array.from({ length: N * d }, () => r.normal());
  const c = Float32Array.from({ length: K * d }, () => r.normal());
  const xT = be.upload(x, [N, d]);
  const cT = be.upload(c, [K, d]);
  const once = async () => {
    const t0 = performance.now();
    const { codes, distances } = be.kmeans_assign(xT, cT);
    await be.readInt(codes);
    const t1 = performance.now();
    const { sums, counts } = be.kmeans_update(xT, codes, K);
    await be.read(sums);
    await be.read(counts);
    for (const t of [codes, distances, sums, counts]) be.dispose(t);
    return [(t1 - t0) / 1000, (performance.now() - t0) / 1000];
  };
  await once(); // warm-up
  const a: number[] = [];
  const l: number[] = [];
  for (let i = 0; i < iters; i++) {
    const [s, t] = await once();
    a.push(s);
    l.push(t);
  }
  a.sort((p, q) => p - q);
  l.sort((p, q) => p - q);
  const med = a[Math.floor(iters / 2)];
  console.log(
    `| ${name} | ${N} | ${K} | ${d} | ${med.toFixed(2)} | ${((2 * N * K * d) / med / 1e9).toFixed(2)} | ${l[Math.floor(iters / 2)].toFixed(2)} |`,
  );
}
