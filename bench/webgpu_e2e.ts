// End to end on each backend in one process: ClusComp stage 1 (compress) + stage 2 (block-wise codebook tuning)
// of a model, its perplexity, and the time of each stage. Usage:
//   npx tsx bench/webgpu_e2e.ts --model ../shared/models/llama-en-26m --calib ../shared/data/c4/excerpt.jsonl \
//     --data ../shared/data/wikitext2/wiki.test.raw [--backends cpu,webgpu] [--bits 2.14] [--vector-dim d] [--samples 16]
//     [--seqlen 512] [--epochs 3] [--kmeans-iters 20] [--json out.json]
//   npx tsx bench/webgpu_e2e.ts --synthetic-7b-block [--backends …]   (one random bf16 decoder block shaped like
//     Llama-2-7B's: hidden 4096, 32 heads, MLP 11008; the bundled example's tokenizer; calibration on its text;
//     no perplexity; stage 1 of this block on the CPU backend takes hours on a few cores: give --backends webgpu
//     there, or --kmeans-iters 1 for the CPU's time per Lloyd iteration)
// With --shared-stage1, stage 1 runs on the first backend only and every backend tunes (and evaluates) that same
// checkpoint: stage 2 and the eval then compare across backends with the codes fixed (k-means itself amplifies
// float32 differences: a flipped near-tie moves a centroid, and Lloyd's iterations go on from there).
// The outputs go to a temporary directory that is removed at the end.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { compressProgress } from "../src/cli/compress.js";
import { finetuneProgress } from "../src/cli/finetune.js";
import {
  type Backend,
  compressModel,
  createBackend,
  finetuneBlockwise,
  loadModel,
  loadTokenizer,
  perplexity,
} from "../src/index.js";
import { writeSyntheticModel } from "../test/helpers/synthetic.js";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    "synthetic-7b-block": { type: "boolean" },
    calib: { type: "string", default: "examples/data/tinystories-excerpt.txt" },
    data: { type: "string" },
    backends: { type: "string", default: "cpu,webgpu" },
    bits: { type: "string", default: "2.14" },
    "vector-dim": { type: "string" },
    samples: { type: "string", default: "16" },
    seqlen: { type: "string", default: "512" },
    epochs: { type: "string", default: "3" },
    "kmeans-iters": { type: "string", default: "20" },
    "max-windows": { type: "string", default: "8" },
    "shared-stage1": { type: "boolean" },
    json: { type: "string" },
  },
});
const work = fs.mkdtempSync(path.join(os.tmpdir(), "cluscomp-e2e-"));
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    fs.rmSync(work, { recursive: true, force: true });
    process.exit(130);
  });
let model = values.model;
if (values["synthetic-7b-block"]) {
  model = path.join(work, "llama2-7b-block");
  const t0 = performance.now();
  writeSyntheticModel(model, {
    hidden: 4096,
    intermediate: 11008,
    layers: 1,
    heads: 32,
    kvHeads: 32,
    vocab: 512,
    dtype: "BF16",
    extraConfig: { max_position_embeddings: 2048 },
  });
  for (const f of fs.readdirSync("examples/stories260K"))
    if (f.startsWith("tokenizer")) fs.copyFileSync(path.join("examples/stories260K", f), path.join(model, f));
  console.error(`synthetic block written in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
}
if (!model) throw new Error("give --model DIR or --synthetic-7b-block");

interface Run {
  backend: string;
  device: string;
  compressSeconds: number;
  tuneSeconds: number;
  bpw: number;
  blockLosses: { before: number; after: number }[];
  ppl?: number;
}
const runs: Run[] = [];
let firstStage1 = "";
try {
  for (const name of values.backends.split(",")) {
    const be: Backend = await createBackend(name);
    const dir = path.join(work, name);
    const first = runs.length === 0;
    const reuse = values["shared-stage1"] === true && !first;
    const stage1 = reuse ? firstStage1 : `${dir}-stage1`;
    let t0 = performance.now();
    let compressSeconds = 0;
    let bpw = runs[0]?.bpw ?? 0;
    if (!reuse) {
      const c = await compressModel(be, model, stage1, {
        method: "cluscomp",
        bits: Number(values.bits),
        vectorDim: values["vector-dim"] === undefined ? undefined : Number(values["vector-dim"]),
        share: "block",
        iters: Number(values["kmeans-iters"]),
        onProgress: compressProgress("cluscomp"),
      });
      compressSeconds = (performance.now() - t0) / 1000;
      bpw = c.bpw;
      console.error(`${name}: stage 1 ${compressSeconds.toFixed(1)}s (${bpw.toFixed(3)} bpw)`);
    }
    if (first) firstStage1 = stage1;
    t0 = performance.now();
    const t = await finetuneBlockwise(be, model, stage1, dir, `${dir}.work`, {
      calib: values.calib,
      calibSamples: Number(values.samples),
      calibSeqlen: Number(values.seqlen),
      epochs: Number(values.epochs),
      onProgress: finetuneProgress(),
    });
    const tuneSeconds = (performance.now() - t0) / 1000;
    console.error(`${name}: stage 2 ${tuneSeconds.toFixed(1)}s`);
    const run: Run = {
      backend: name,
      device: be.describe(),
      compressSeconds,
      tuneSeconds,
      bpw,
      blockLosses: t.blocks.map((b) => ({ before: b.lossBefore, after: b.lossAfter })),
    };
    if (values.data) {
      const { model: m } = loadModel(dir, be);
      const ids = loadTokenizer(dir).encode(fs.readFileSync(values.data, "utf8"));
      run.ppl = (await perplexity(m, ids, { seqlen: 512, maxWindows: Number(values["max-windows"]) })).ppl;
      console.error(`${name}: perplexity ${run.ppl.toFixed(4)}`);
    }
    runs.push(run);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.log(
  `${new Date().toISOString().slice(0, 10)} · ${values["synthetic-7b-block"] ? "synthetic Llama-2-7B block" : model}`,
);
console.log("| backend | device | bpw | stage 1 s | stage 2 s | total s | perplexity |\n|---|---|---|---|---|---|---|");
for (const r of runs)
  console.log(
    `| ${r.backend} | ${r.device} | ${r.bpw.toFixed(3)} | ${r.compressSeconds.toFixed(1)} | ${r.tuneSeconds.toFixed(1)} | ` +
      `${(r.compressSeconds + r.tuneSeconds).toFixed(1)} | ${r.ppl?.toFixed(4) ?? "—"} |`,
  );
if (values.json) fs.writeFileSync(values.json, JSON.stringify(runs, null, 2));
