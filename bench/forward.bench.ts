// Forward throughput on the CPU: tokens/s for eval windows, effective GFLOP/s of the matmuls, time per op, and
// peak RSS while loading. Usage:
//   npx tsx bench/forward.bench.ts [--model DIR] [--seqlen 512] [--batch 1] [--iters 3] [--backend cpu]
// Defaults to ../shared/models/llama-en-26m. Prints a markdown table and a JSON line.

import * as os from "node:os";
import { parseArgs } from "node:util";
import { createBackend, inspectModel, loadModel, Rng } from "../src/index.js";
import { profiled } from "./profile.js";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "../shared/models/llama-en-26m" },
    seqlen: { type: "string", default: "512" },
    batch: { type: "string", default: "1" },
    iters: { type: "string", default: "3" },
    backend: { type: "string", default: "cpu" },
  },
});
const dir = values.model!;
const L = Number(values.seqlen);
const B = Number(values.batch);
const iters = Number(values.iters);

const rssBefore = process.resourceUsage().maxRSS / 1024;
const ckptBytes = inspectModel(dir).bytes;
const tLoad = performance.now();
const inner = await createBackend(values.backend!);
const { backend, stats, reset } = profiled(inner);
const { model, config } = loadModel(dir, backend);
const loadSeconds = (performance.now() - tLoad) / 1000;
const peakRssLoadMiB = process.resourceUsage().maxRSS / 1024;

const rng = new Rng(0);
const ids = Int32Array.from({ length: B * L }, () => rng.int(config.vocabSize));
const run = async () => {
  const { logits } = model.forward(ids, B, L);
  await backend.read(logits);
  backend.dispose(logits);
};
await run(); // warm-up
reset();
const times: number[] = [];
for (let i = 0; i < iters; i++) {
  const t0 = performance.now();
  await run();
  times.push((performance.now() - t0) / 1000);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
const lin = stats.get("linear")!;
const matmulGflops = lin.flops / (lin.ms / 1000) / 1e9;
const result = {
  model: dir,
  backend: inner.name,
  machine: `${os.cpus()[0]?.model ?? "?"} ×${os.cpus().length}, Node ${process.version}`,
  date: new Date().toISOString().slice(0, 10),
  seqlen: L,
  batch: B,
  iters,
  medianSeconds: median,
  minSeconds: times[0],
  tokensPerSecond: (B * L) / median,
  matmulGflops,
  checkpointMiB: ckptBytes / 2 ** 20,
  rssBeforeLoadMiB: rssBefore,
  peakRssLoadMiB,
  loadSeconds,
  opShare: Object.fromEntries([...stats.entries()].map(([op, s]) => [op, +(s.ms / iters / 1000 / median).toFixed(3)])),
};
console.log(`| model | backend | B×T | median s | tokens/s | matmul GFLOP/s | load s | peak RSS (load) | checkpoint |`);
console.log(`|---|---|---|---|---|---|---|---|---|`);
console.log(
  `| ${dir.split("/").pop()} | ${inner.name} | ${B}×${L} | ${median.toFixed(2)} | ${result.tokensPerSecond.toFixed(0)} | ${matmulGflops.toFixed(2)} | ${loadSeconds.toFixed(2)} | ${peakRssLoadMiB.toFixed(0)} MiB | ${result.checkpointMiB.toFixed(1)} MiB |`,
);
console.log("share of forward time by op:", result.opShare);
console.log(JSON.stringify(result));
