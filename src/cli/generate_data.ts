// cluscomp generate-data --model TEACHER --out FILE.jsonl --samples N [--seqlen L] [--seed S] [--temperature T]

import * as fs from "node:fs";
import * as path from "node:path";
import { generateDistillationData, loadModel, loadTokenizer, resolveModelPath } from "../index.js";
import {
  allowUnused,
  BACKEND_HELP,
  BACKEND_OPTION,
  backendFromArgs,
  flag,
  intOpt,
  numOpt,
  parse,
  str,
  usage,
} from "./args.js";
import { ProgressBar } from "./progress.js";

export const GENERATE_DATA_HELP = `cluscomp generate-data --model DIR --out FILE.jsonl --samples N [options]
  Self-generated distillation data (LLM-QAT's recipe, as ClusComp's recovery uses): each sample starts from a
  random vocabulary token, continues with 3–5 greedy tokens, then is sampled up to --seqlen tokens or an EOS.
  Writes {"ids": [...]} per line (atomically), the format cluscomp train --data reads.
  --model DIR          the teacher (e.g. the full-precision model), or a hub id in the local cache
  --out FILE.jsonl     the data file (must not exist)
  --samples N          samples to generate
  --seqlen L           tokens per sample (default: min(2048, the model's context))
  --temperature T      sampling temperature after the greedy start (default 1)
  --seed S             default 0
${BACKEND_HELP}
  --json               print {samples, tokens, seconds} on stdout`;

export async function generateDataCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      out: { type: "string" },
      samples: { type: "string" },
      seqlen: { type: "string" },
      temperature: { type: "string" },
      seed: { type: "string" },
      json: { type: "boolean" },
      ...BACKEND_OPTION,
    },
    "generate-data",
  );
  const dir = resolveModelPath(str(a, "model", "generate-data"), "--model");
  const out = str(a, "out", "generate-data");
  if (!out.endsWith(".jsonl")) usage("usage.out", `--out must name a .jsonl file, got ${out}`);
  if (fs.existsSync(out)) usage("usage.out", `--out ${out} exists; choose a new path`);
  if (!fs.existsSync(path.dirname(path.resolve(out)))) usage("usage.out", `--out ${out}: its directory does not exist`);
  const samples = intOpt(a, "samples", 0, 1);
  if (a.values.samples === undefined) usage("usage.missing", "generate-data: --samples is required");
  const t0 = performance.now();
  const backend = await backendFromArgs(a, "generate-data", [dir]);
  const { config, model } = loadModel(dir, backend, { allowUnused: allowUnused(a) });
  const seqlen =
    a.values.seqlen === undefined ? Math.min(2048, config.maxPositionEmbeddings) : intOpt(a, "seqlen", 2, 2);
  const bar = new ProgressBar({ label: "generate-data", total: samples, unit: "samples" });
  const r = await generateDistillationData(model, loadTokenizer(dir), out, {
    samples,
    seqlen,
    seed: intOpt(a, "seed", 0),
    temperature: numOpt(a, "temperature", 1),
    onProgress: (d) => bar.update(d),
  });
  const seconds = (performance.now() - t0) / 1000;
  if (flag(a, "json")) process.stdout.write(`${JSON.stringify({ ...r, seconds })}\n`);
  else process.stdout.write(`wrote ${r.samples} samples (${r.tokens} tokens) to ${out} in ${seconds.toFixed(1)}s\n`);
}
