// Stage 2 on the command line: `cluscomp finetune` tunes an existing stage-1 checkpoint block by block, and
// `cluscomp compress --finetune blockwise` runs both stages. Both print a report: loss before/after per block
// (and whether the held-out guard kept stage 1's codebooks), perplexity of the original, stage 1 and the tuned
// model (with --eval-data), time.

import {
  type Backend,
  type BlockwiseOptions,
  type BlockwiseReport,
  DEFAULT_LR,
  DEFAULT_LR_SCHEDULE,
  finetuneBlockwise,
  LR_SCHEDULES,
  type LrSchedule,
  loadModel,
  loadTokenizer,
  perplexity,
  readTextFile,
  resolveModelPath,
} from "../index.js";
import {
  allowUnused,
  BACKEND_HELP,
  BACKEND_OPTION,
  backendFromArgs,
  checkOutputArg,
  flag,
  intOpt,
  numOpt,
  type OptionSpec,
  optStr,
  type ParsedArgs,
  parse,
  str,
  usage,
} from "./args.js";
import { ProgressBar } from "./progress.js";

export const FINETUNE_OPTIONS_HELP = `  --calib FILE         calibration text (.txt) or documents (.jsonl: "text" or "prefix"+"gold_completion")
  --calib-samples N    calibration windows to train on (default 128)
  --calib-holdout H    held-out windows from the end of the calibration text (default max(2, ⌈N/8⌉)); a block
                       whose loss on them tuning raised keeps its stage-1 codebooks; 0 turns the guard off
  --calib-seqlen L     tokens per window (default and cap: the model's context, at most 2048)
  --epochs E           epochs per block (default 20)
  --lr LR              AdamW learning rate (default ${DEFAULT_LR})
  --lr-schedule S      constant | cosine (warmup over 10 % of a block's steps, then cosine decay to 0)
                       (default ${DEFAULT_LR_SCHEDULE})
  --weight-decay W     AdamW weight decay (default 0.1)
  --train-norms        also train each block's RMSNorm weights
  --max-memory SIZE    activation streams held in memory up to SIZE (e.g. 2GiB, 512MiB; default 2GiB),
                       beyond that they live in files in the work directory
  --resume             continue an interrupted run from its last finished block (same options)
  --eval-data FILE     report perplexity of the original, stage 1 and the tuned model on FILE (.txt or .jsonl,
                       with --seqlen, --max-windows)
  --seqlen N           perplexity window (default: the model's context, at most 2048)
  --max-windows N      score only the first N windows of --eval-data`;

export const FINETUNE_HELP = `cluscomp finetune --model FP_DIR --stage1 DIR --out DIR --calib FILE [options]
  ClusComp stage 2: tunes the codebooks (and channel scales) of a stage-1 checkpoint (made by cluscomp compress,
  --share none or block) block by block (the low-rank factors of a reallm checkpoint instead)
  to reproduce the full-precision model FP_DIR; writes the tuned checkpoint to --out.
  Checkpoints after every block go to OUT.work (deleted when done). Progress: one bar for the whole run, with
  the block, epoch and running loss (mean squared error of the block's output) and an ETA for all blocks.
${FINETUNE_OPTIONS_HELP}
  --seed S             calibration sampling and sample order (default 0)
${BACKEND_HELP}
  --json               print the report as one JSON object on stdout`;

export const FINETUNE_OPTIONS: OptionSpec = {
  calib: { type: "string" },
  "calib-samples": { type: "string" },
  "calib-holdout": { type: "string" },
  "calib-seqlen": { type: "string" },
  epochs: { type: "string" },
  lr: { type: "string" },
  "lr-schedule": { type: "string" },
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
  if (!m) return usage("usage.value", `--${flagName} must be a size like 2GiB or 512MiB, got "${s}"`);
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
  allowUnused?: boolean;
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
  const lr = numOpt(a, "lr", DEFAULT_LR);
  if (!(lr > 0)) usage("usage.value", `--lr must be > 0, got ${lr}`);
  const lrSchedule = optStr(a, "lr-schedule") ?? DEFAULT_LR_SCHEDULE;
  if (!(LR_SCHEDULES as readonly string[]).includes(lrSchedule))
    usage("usage.value", `--lr-schedule must be one of ${LR_SCHEDULES.join(", ")}, got "${lrSchedule}"`);
  const weightDecay = numOpt(a, "weight-decay", 0.1);
  if (!(weightDecay >= 0)) usage("usage.value", `--weight-decay must be ≥ 0, got ${weightDecay}`);
  const tune: BlockwiseOptions = {
    calib,
    calibSamples: intOpt(a, "calib-samples", 128, 1),
    calibHoldout: a.values["calib-holdout"] === undefined ? undefined : intOpt(a, "calib-holdout", 0, 0),
    calibSeqlen: a.values["calib-seqlen"] === undefined ? undefined : intOpt(a, "calib-seqlen", 0, 1),
    seed,
    epochs: intOpt(a, "epochs", 20, 1),
    lr,
    lrSchedule: lrSchedule as LrSchedule,
    weightDecay,
    trainNorms: flag(a, "train-norms"),
    maxMemory: maxMemory === undefined ? undefined : parseBytes(maxMemory, "max-memory"),
    resume: flag(a, "resume"),
    allowUnusedTensors: allowUnused(a),
  };
  // read the inputs now: a bad file is reported before any work
  readTextFile(calib, "--calib");
  let evalSet: EvalSettings | undefined;
  if (evalFile !== undefined) {
    evalSet = {
      text: readTextFile(evalFile, "--eval-data"),
      allowUnused: allowUnused(a),
      seqlen: a.values.seqlen === undefined ? undefined : intOpt(a, "seqlen", 0, 2),
      maxWindows: a.values["max-windows"] === undefined ? undefined : intOpt(a, "max-windows", 0, 1),
    };
  } else {
    for (const f of ["seqlen", "max-windows"]) {
      if (a.values[f] !== undefined)
        usage("usage.flag", `${command}: --${f} needs --eval-data (it sets how perplexity is measured)`);
    }
  }
  return { tune, evalSet };
}

const PHASES: Record<string, string> = {
  targets: "targets",
  loss: "losses",
  train: "train",
  advance: "advance",
};

/**
 * One progress bar for a whole block-wise run: percent of the work, the overall ETA, and where it is (block,
 * epoch, running loss). Blocks are numbered 1..L here and in the summary.
 */
export function finetuneProgress(): BlockwiseOptions["onProgress"] {
  let bar: ProgressBar | null = null;
  return (p) => {
    bar ??= new ProgressBar({ label: "stage 2", total: p.workTotal, unit: "", percent: true, initial: p.workDone });
    const where =
      p.phase === "embed"
        ? "embedding the calibration windows"
        : `block ${p.block + 1}/${p.blocks} ${PHASES[p.phase]}${p.phase === "train" ? ` epoch ${p.epoch}/${p.epochs}` : ""}`;
    bar.update(p.workDone, `${where}${p.loss === undefined ? "" : ` loss ${p.loss.toExponential(3)}`}`);
  };
}

/** Perplexity of a model directory on the eval settings (with a progress bar). */
export async function dirPerplexity(
  backend: Backend,
  dir: string,
  e: EvalSettings,
  label: string,
): Promise<{ ppl: number; seqlen: number }> {
  const { config, model } = loadModel(dir, backend, { allowUnused: e.allowUnused });
  try {
    const ids = loadTokenizer(dir).encode(e.text);
    const seqlen = e.seqlen ?? Math.min(2048, config.maxPositionEmbeddings);
    const total = Math.min(Math.floor(ids.length / seqlen), e.maxWindows ?? Number.POSITIVE_INFINITY);
    const bar = new ProgressBar({ label: `perplexity (${label}, windows of ${seqlen})`, total, unit: "win" });
    const r = await perplexity(model, ids, {
      seqlen,
      maxWindows: e.maxWindows,
      onProgress: (p) => bar.update(p.windowsDone),
    });
    return { ppl: r.ppl, seqlen };
  } finally {
    model.dispose();
  }
}

export interface FinetuneSummary extends BlockwiseReport {
  /** Perplexities with --eval-data: the full-precision model, stage 1, the tuned model; and the window used. */
  pplOriginal?: number;
  pplBefore?: number;
  pplAfter?: number;
  evalSeqlen?: number;
}

/** Runs stage 2 on a stage-1 directory, with perplexity of the original, stage 1 and the result when asked. */
export async function runFinetune(
  backend: Backend,
  fpDir: string,
  stage1Dir: string,
  outDir: string,
  workDir: string,
  tune: BlockwiseOptions,
  evalSet?: EvalSettings,
): Promise<FinetuneSummary> {
  const original = evalSet ? await dirPerplexity(backend, fpDir, evalSet, "original") : undefined;
  const before = evalSet ? await dirPerplexity(backend, stage1Dir, evalSet, "stage 1") : undefined;
  const report = await finetuneBlockwise(backend, fpDir, stage1Dir, outDir, workDir, {
    ...tune,
    onProgress: finetuneProgress(),
  });
  const after = evalSet ? await dirPerplexity(backend, outDir, evalSet, "tuned") : undefined;
  return {
    ...report,
    pplOriginal: original?.ppl,
    pplBefore: before?.ppl,
    pplAfter: after?.ppl,
    evalSeqlen: original?.seqlen,
  };
}

/** Human-readable report: a line per block, then perplexity and time. */
export function formatFinetune(r: FinetuneSummary): string {
  const L = r.blocks.length === 0 ? 0 : Math.max(...r.blocks.map((b) => b.block)) + 1;
  const lines = r.blocks.map((b) => {
    const drop = (1 - b.lossAfter / b.lossBefore) * 100;
    const guard =
      b.kept === "stage1"
        ? ` — kept stage 1's codebooks (tuning raised the held-out loss ${b.heldoutBefore.toExponential(3)} → ${b.heldoutTuned.toExponential(3)})`
        : Number.isNaN(b.heldoutBefore)
          ? ""
          : `, held-out ${b.heldoutBefore.toExponential(3)} → ${b.heldoutTuned.toExponential(3)}`;
    return (
      `block ${b.block + 1}/${L}: loss ${b.lossBefore.toExponential(4)} → ${b.lossAfter.toExponential(4)} ` +
      `(${drop >= 0 ? `${drop.toFixed(1)} % lower` : `${(-drop).toFixed(1)} % higher`})${guard} in ${b.seconds.toFixed(1)}s`
    );
  });
  const reverted = r.blocks.filter((b) => b.kept === "stage1").length;
  if (reverted > 0) lines.push(`${reverted} of ${L} blocks kept their stage-1 codebooks (the held-out guard)`);
  if (r.pplBefore !== undefined && r.pplAfter !== undefined) {
    lines.push(
      `perplexity (windows of ${r.evalSeqlen}): ${r.pplOriginal?.toFixed(4) ?? "?"} original, ${r.pplBefore.toFixed(4)} stage 1 (k-means), ${r.pplAfter.toFixed(4)} tuned`,
    );
    if (r.pplAfter > r.pplBefore) {
      lines.push(
        `note: the tuned model's perplexity on --eval-data is higher than stage 1's (+${((r.pplAfter / r.pplBefore - 1) * 100).toFixed(2)} %) although the blocks fit the calibration text better: at this rate perplexity moves with noise; eval --reference (KL divergence from the original) is the steadier measure, and more or closer calibration text, or a lower --lr, usually helps`,
      );
    }
  }
  lines.push(
    `${r.samples} windows × ${r.seqlen} tokens (+${r.holdout} held out), ${r.epochs} epochs, lr ${r.lr}, weight decay ${r.weightDecay}` +
      `${r.lrSchedule === "constant" ? "" : ` (${r.lrSchedule})`}${r.trainNorms ? ", norms trained" : ""}; tuning took ${r.seconds.toFixed(1)}s`,
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
  const fpDir = resolveModelPath(str(a, "model", "finetune"), "--model");
  const stage1 = resolveModelPath(str(a, "stage1", "finetune"), "--stage1");
  const out = checkOutputArg(str(a, "out", "finetune"));
  const { tune, evalSet } = finetuneOptions(a, "finetune", intOpt(a, "seed", 0));
  const backend = await backendFromArgs(a, "finetune", [fpDir, stage1]);
  const r = await runFinetune(backend, fpDir, stage1, out, `${out}.work`, tune, evalSet);
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  if (flag(a, "json")) process.stdout.write(`${JSON.stringify({ ...r, peakRssMiB })}\n`);
  else process.stdout.write(`${formatFinetune(r)}peak RSS ${peakRssMiB.toFixed(0)} MiB\n`);
}
