// Block-wise tuning cost on the CPU: one training step (forward with saved activations, MSE, layer backward,
// codebook gradients, AdamW) of one compressed decoder block on one calibration window, and a plain forward,
// with the time per op. Extrapolates to the reference schedule (128 windows × 20 epochs per block). Usage:
//   npx tsx bench/finetune.bench.ts --model FP_DIR --stage1 DIR [--seqlen 512] [--iters 3] [--backend cpu]
// Prints a markdown table and a JSON line.

import * as os from "node:os";
import { parseArgs } from "node:util";
import {
  AdamW,
  CheckpointReader,
  createBackend,
  decoderLayerForward,
  openCheckpoint,
  Rng,
  readModelConfig,
  ropeInvFreq,
  ropeTables,
  trainableParams,
  trainStep,
} from "../src/index.js";
import { profiled } from "./profile.js";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "../shared/models/llama-en-26m" },
    stage1: { type: "string" },
    seqlen: { type: "string", default: "512" },
    iters: { type: "string", default: "3" },
    backend: { type: "string", default: "cpu" },
  },
});
if (!values.stage1) throw new Error("--stage1 DIR (a stage-1 checkpoint of --model) is required");
const T = Number(values.seqlen);
const iters = Number(values.iters);
const cfg = readModelConfig(values.stage1);
const inner = await createBackend(values.backend!);
const { backend: be, stats, reset } = profiled(inner);
const reader = new CheckpointReader(be, cfg, openCheckpoint(values.stage1));
const layer = reader.layer(0);
const params = trainableParams(layer, "model.layers.0", false);
const opt = new AdamW(be, params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
const tables = ropeTables(ropeInvFreq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling), T);
const ctx = {
  cos: be.upload(tables.cos, [T, cfg.headDim / 2]),
  sin: be.upload(tables.sin, [T, cfg.headDim / 2]),
  past: 0,
};
const rng = new Rng(0);
const C = cfg.hiddenSize;
const x = be.upload(
  Float32Array.from({ length: T * C }, () => rng.normal()),
  [1, T, C],
);
const target = be.upload(
  Float32Array.from({ length: T * C }, () => rng.normal()),
  [1, T, C],
);

let step = 0;
const train = async () => {
  step++;
  await trainStep(be, cfg, layer, opt, x, target, ctx, 5e-3, step);
};
const forward = async () => {
  const { y } = decoderLayerForward(be, cfg, layer, x, ctx);
  await be.read(y);
};
const median = async (fn: () => Promise<void>) => {
  await fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
};
const fwd = await median(forward);
reset();
const stepS = await median(train);
const opRows = [...stats.entries()]
  .sort((a, b) => b[1].ms - a[1].ms)
  .slice(0, 10)
  .map(([op, s]) => `| ${op} | ${s.calls / (iters + 1)} | ${(s.ms / (iters + 1)).toFixed(0)} |`);
// per block and window of the reference schedule: targets, loss before, loss after/advance = 3 forwards,
// plus one training step per epoch
const perBlock = (samples: number, epochs: number) => samples * (3 * fwd + epochs * stepS);
const result = {
  stage1: values.stage1,
  backend: inner.name,
  machine: `${os.cpus()[0]?.model ?? "?"} ×${os.cpus().length}, Node ${process.version}`,
  date: new Date().toISOString().slice(0, 10),
  seqlen: T,
  iters,
  forwardSeconds: fwd,
  trainStepSeconds: stepS,
  epochSeconds128: 128 * stepS,
  blockSeconds128x20: perBlock(128, 20),
  peakRssMiB: process.resourceUsage().maxRSS / 1024,
};
console.log(`| block forward (1×${T}) | train step | epoch of 128 windows | block, 128 windows × 20 epochs |`);
console.log("|---|---|---|---|");
console.log(
  `| ${fwd.toFixed(2)} s | ${stepS.toFixed(2)} s | ${result.epochSeconds128.toFixed(0)} s | ${(result.blockSeconds128x20 / 3600).toFixed(2)} h |`,
);
console.log("\n| op (train step) | calls | ms |\n|---|---|---|");
console.log(opRows.join("\n"));
console.log(JSON.stringify(result));
