// Stage 2 on the command line: `cluscomp finetune` tunes an existing stage-1 checkpoint block by block, and
// `cluscomp compress --finetune blockwise` runs both stages. Both print a report: loss before/after per block,
// perplexity before/after (with --eval-data), time.

import * as fs from "node:fs";
import { UsageError } from "../errors.js";
import {
  type Backend,
  type BlockwiseOptions,
  type BlockwiseReport,
  finetuneBlockwise,
  loadModel,
  loadTokenizer,
  perplexity,
} from "../index.js";
import {
  BACKEND_OPTION,
  backendFromArgs,
  flag,
  intOpt,
  numOpt,
  type OptionSpec,
  optStr,
  type ParsedArgs,
  parse,
  str,
} from "./args.js";
import { ProgressBar } from "./progress.js";

export const FINETUNE_OPTIONS_HELP = `  --calib FILE         calibration text (.txt) or documents (.jsonl: "text" or "prefix"+"gold_completion")
  --calib-samples N    calibration windows (default 128)
  --calib-seqlen L     tokens per window (default and cap: the model's context, at most 2048)
  --epochs E           epochs per block (default 20)
  --lr LR              AdamW learning rate (default 5e-3)
  --weight-decay W     AdamW weight decay (default 0.1)
  --train-norms        also train each block's RMSNorm weights
  --max-memory SIZE    activation streams held in memory up to SIZE (e.g. 2GiB, 512MiB; default 2GiB),
                       beyond that they live in files in the work directory
  --resume             continue an interrupted run from its last finished block (same options)
  --eval-data FILE     report perplexity on FILE before and after tuning (with --seqlen, --max-windows)
  --seqlen N           perplexity window (default: the model's context, at most 2048)
  --max-windows N      score only the first N windows of --eval-data`;

export const FINETUNE_HELP = `cluscomp finetune --model FP_DIR --stage1 DIR --out DIR --calib FILE [options]
  ClusComp stage 2: tunes the codebooks of a stage-1 checkpoint (made by cluscomp compress, --share none or
  block) block by block to reproduce the full-precision model FP_DIR; writes the tuned checkpoint to --out.
  Checkpoints after every block go to OUT.work (deleted when done).
${FINETUNE_OPTIONS_HELP}
  --seed S             calibration sampling and sample order (default 0)
  --backend NAME       cpu | reference | auto (default auto)
  --threads N          CPU threads (default: every core)
  --json               print the report as one JSON object on stdout`;

export const FINETUNE_OPTIONS: OptionSpec = {
  calib: { type: "string" },
  "calib-samples": { type: "string" },
  "calib-seqlen": { type: "string" },
  epochs: { type: "string" },
  lr: { type: "string" },
  "weight-decay": { type: "string" },
  "train-norms": { type: "boolean" },
  "max-memory": { type: "string" },
  resume: { type: "boolean" },
  "eval-data": { type: "string" },
  seqlen: { type: "string" },
  "max-windows": { type: "string" },
};

/** "2GiB", "512MiB", "1.5GB", "1000000" → bytes. */
export function parseBytes(s: string, flagName: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)?\s*$/i.exec(s);
  if (!m) throw new UsageError("usage.value", `--${flagName} must be a size like 2GiB or 512MiB, got "${s}"`);
  const units: Record<string, number> = {
    b: 1,
    kb: 1e3,
    kib: 2 ** 10,
    mb: 1e6,
    mib: 2 ** 20,
    gb: 1e9,
    gib: 2 ** 30,
    tb: 1e12,
    tib: 2 ** 40,
  };
  return Math.floor(Number(m[1]) * units[(m[2] ?? "b").toLowerCase()]);
}

export interface EvalSettings {
  text: string;
  seqlen?: number;
  maxWindows?: number;
}

/** Block-wise options and the optional before/after perplexity from parsed flags. */
export function finetuneOptions(
  a: ParsedArgs,
  command: string,
  seed: number,
): { tune: BlockwiseOptions; evalSet?: EvalSettings } {
  const calib = str(a, "calib", command);
  const maxMemory = optStr(a, "max-memory");
  const evalFile = optStr(a, "eval-data");
  let evalSet: EvalSettings | undefined;
  if (evalFile !== undefined) {
    if (!fs.existsSync(evalFile)) throw new UsageError("usage.data", `--eval-data ${evalFile} does not exist`);
    evalSet = {
      text: fs.readFileSync(evalFile, "utf8"),
      seqlen: a.values.seqlen === undefined ? undefined : intOpt(a, "seqlen", 0, 2),
      maxWindows: a.values["max-windows"] === undefined ? undefined : intOpt(a, "max-windows", 0, 1),
    };
  }
  return {
    tune: {
      calib,
      calibSamples: intOpt(a, "calib-samples", 128, 1),
      calibSeqlen: a.values["calib-seqlen"] === undefined ? undefined : intOpt(a, "calib-seqlen", 0, 1),
      seed,
      epochs: intOpt(a, "epochs", 20, 0),
      lr: numOpt(a, "lr", 5e-3),
      weightDecay: numOpt(a, "weight-decay", 0.1),
      trainNorms: flag(a, "train-norms"),
      maxMemory: maxMemory === undefined ? undefined : parseBytes(maxMemory, "max-memory"),
      resume: flag(a, "resume"),
    },
    evalSet,
  };
}

/** Progress bars for the phases of a block-wise run: one per block and epoch, with the running loss. */
export function finetuneProgress(): BlockwiseOptions["onProgress"] {
  let bar: ProgressBar | null = null;
  let key = "";
  return (p) => {
    const k = `${p.phase} ${p.block} ${p.epoch}`;
    if (k !== key) {
      key = k;
      const where = `block ${p.block + 1}/${p.blocks}`;
      const label =
        p.phase === "embed"
          ? "calibration"
          : p.phase === "train"
            ? `${where} epoch ${p.epoch}/${p.epochs}`
            : `${where} ${p.phase === "targets" ? "targets" : "advance"}`;
      bar = new ProgressBar({ label, total: p.steps, unit: "seq" });
    }
    bar?.update(p.step, p.loss === undefined ? "" : `loss ${p.loss.toExponential(4)}`);
  };
}

async function dirPerplexity(backend: Backend, dir: string, e: EvalSettings, label: string): Promise<number> {
  const { config, model } = loadModel(dir, backend);
  const ids = loadTokenizer(dir).encode(e.text);
  const seqlen = e.seqlen ?? Math.min(2048, config.maxPositionEmbeddings);
  const total = Math.min(Math.floor(ids.length / seqlen), e.maxWindows ?? Number.POSITIVE_INFINITY);
  const bar = new ProgressBar({ label, total, unit: "win" });
  const r = await perplexity(model, ids, {
    seqlen,
    maxWindows: e.maxWindows,
    onProgress: (p) => bar.update(p.windowsDone),
  });
  model.dispose();
  return r.ppl;
}

export interface FinetuneSummary extends BlockwiseReport {
  pplBefore?: number;
  pplAfter?: number;
}

/** Runs stage 2 on a stage-1 directory, with perplexity before and after when asked. */
export async function runFinetune(
  backend: Backend,
  fpDir: string,
  stage1Dir: string,
  outDir: string,
  workDir: string,
  tune: BlockwiseOptions,
  evalSet?: EvalSettings,
): Promise<FinetuneSummary> {
  const pplBefore = evalSet ? await dirPerplexity(backend, stage1Dir, evalSet, "ppl stage 1") : undefined;
  const report = await finetuneBlockwise(backend, fpDir, stage1Dir, outDir, workDir, {
    ...tune,
    onProgress: finetuneProgress(),
  });
  const pplAfter = evalSet ? await dirPerplexity(backend, outDir, evalSet, "ppl tuned") : undefined;
  return { ...report, pplBefore, pplAfter };
}

/** Human-readable report: a line per block, then perplexity and time. */
export function formatFinetune(r: FinetuneSummary): string {
  const lines = r.blocks.map(
    (b) =>
      `block ${b.block}: loss ${b.lossBefore.toExponential(4)} → ${b.lossAfter.toExponential(4)} ` +
      `(${((1 - b.lossAfter / b.lossBefore) * 100).toFixed(1)} % lower) in ${b.seconds.toFixed(1)}s`,
  );
  if (r.pplBefore !== undefined && r.pplAfter !== undefined) {
    lines.push(`perplexity ${r.pplBefore.toFixed(4)} (k-means alone) → ${r.pplAfter.toFixed(4)} (tuned)`);
  }
  lines.push(
    `${r.samples} windows × ${r.seqlen} tokens, ${r.epochs} epochs, lr ${r.lr}, weight decay ${r.weightDecay}` +
      `${r.trainNorms ? ", norms trained" : ""}; tuning took ${r.seconds.toFixed(1)}s`,
  );
  return `${lines.join("\n")}\n`;
}

export async function finetuneCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      stage1: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      json: { type: "boolean" },
      ...FINETUNE_OPTIONS,
      ...BACKEND_OPTION,
    },
    "finetune",
  );
  const out = str(a, "out", "finetune");
  const { tune, evalSet } = finetuneOptions(a, "finetune", intOpt(a, "seed", 0));
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0)
    throw new UsageError("usage.out", `output directory ${out} is not empty; choose a new path or empty it`);
  const backend = await backendFromArgs(a, "finetune", [str(a, "model", "finetune"), str(a, "stage1", "finetune")]);
  const r = await runFinetune(
    backend,
    str(a, "model", "finetune"),
    str(a, "stage1", "finetune"),
    out,
    `${out}.work`,
    tune,
    evalSet,
  );
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  if (flag(a, "json")) process.stdout.write(`${JSON.stringify({ ...r, peakRssMiB })}\n`);
  else process.stdout.write(`${formatFinetune(r)}peak RSS ${peakRssMiB.toFixed(0)} MiB\n`);
}
