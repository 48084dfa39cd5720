// Training throughput of `cluscomp train`'s engine: tokens/s and peak RSS of end-to-end steps (forward, chunked
// cross-entropy, model backward with recomputed activations, AdamW) on one model for one trainable set, batch 1.
// bench/train_vs_torch.sh runs it alternately with bench/torch_train.py (the same recipe in PyTorch).
//   npx tsx bench/train.bench.ts --model DIR --set all|lora|codebooks|norms [--seqlen 512] [--steps 6] [--warmup 2]
//                                [--keep-activations]   (keep every layer's activations instead of recomputing them)
// Prints one JSON line: {engine, set, seqlen, tokensPerSecond (median over steps), peakRssMiB, …}.

import * as fs from "node:fs";
import { parseArgs } from "node:util";
import {
  ADAMW_DEFAULTS,
  AdamW,
  attachLora,
  batchGradients,
  createBackend,
  GradAccumulator,
  loadModel,
  loadTokenizer,
  modelTrainableParams,
  paramSet,
  type TrainSet,
} from "../src/index.js";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "../shared/models/llama-en-26m" },
    data: { type: "string", default: "../shared/data/tinystories/excerpt.txt" },
    set: { type: "string", default: "all" },
    seqlen: { type: "string", default: "512" },
    steps: { type: "string", default: "6" },
    warmup: { type: "string", default: "2" },
    backend: { type: "string", default: "cpu" },
    threads: { type: "string" },
    "keep-activations": { type: "boolean" },
  },
});
const T = Number(values.seqlen);
const steps = Number(values.steps);
const warm = Number(values.warmup);
const set = values.set as TrainSet;
const be = await createBackend(values.backend!, { threads: values.threads ? Number(values.threads) : undefined });
const { model } = loadModel(values.model!, be);
if (set === "lora") attachLora(model, { rank: 8, alpha: 16, targets: ["q", "k", "v", "o", "gate", "up", "down"] }, 0);
const params = modelTrainableParams(model, [set]);
const trainable = paramSet(params);
const opt = new AdamW(be, params, ADAMW_DEFAULTS);
const ids = loadTokenizer(values.model!).encode(fs.readFileSync(values.data!, "utf8").slice(0, 400_000));
const seconds: number[] = [];
for (let s = 0; s < warm + steps; s++) {
  const w = Int32Array.from(ids.slice(s * T, (s + 1) * T));
  const t0 = performance.now();
  const acc = new GradAccumulator(be);
  await batchGradients(model, { ids: w, labels: w, B: 1, T }, { kind: "ce" }, trainable, acc, {
    keepActivations: values["keep-activations"] === true,
  });
  opt.step(acc, 1e-4, s + 1);
  acc.dispose();
  // the step is done when its results are readable
  await be.read(params[0].tensor);
  if (s >= warm) seconds.push((performance.now() - t0) / 1000);
}
seconds.sort((a, b) => a - b);
const median = seconds[Math.floor(seconds.length / 2)];
const trainableParams = params.reduce((n, p) => n + p.tensor.shape.reduce((a, b) => a * b, 1), 0);
console.log(
  JSON.stringify({
    engine: "cluscomp",
    device: be.describe(),
    set,
    seqlen: T,
    keepActivations: values["keep-activations"] === true,
    trainableParams,
    stepSeconds: median,
    tokensPerSecond: T / median,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);
process.exit(0);
