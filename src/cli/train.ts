// cluscomp train --model DIR --data FILE --out DIR --train SETS [options]: end-to-end training (train/loop.ts).

import {
  LORA_TARGETS,
  LOSS_KINDS,
  type LossKind,
  parseLoraTargets,
  resolveModelPath,
  SCHEDULES,
  type Schedule,
  TRAIN_SETS,
  type TrainReport,
  type TrainSet,
  trainModel,
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
  optStr,
  parse,
  str,
  usage,
} from "./args.js";
import { ProgressBar } from "./progress.js";

const OUTPUT_WORDS: Record<TrainReport["output"], string> = {
  adapter: "a LoRA adapter",
  merged: "a dense model with the adapters merged",
  checkpoint: "the trained model",
  "checkpoint+adapter": "the trained model and its LoRA adapter",
};

export const TRAIN_HELP = `cluscomp train --model DIR --data FILE --out DIR --train SETS [options]
  Trains a model end to end (dense, ClusComp or RTN) and writes the result: a LoRA adapter in PEFT's layout
  (--train lora), a dense model with the adapters merged (--merge), or the model with its trained tensors (with
  lora and other sets: and the adapter beside them, applied with eval/generate --adapter OUT).
  --train SETS         comma-separated: codebooks (ClusComp centroids and their channel scales) | norms (RMSNorm
                       weights) | lowrank (a reallm model's low-rank factors, as ReALLM finetunes) | lora | all
                       (every weight of a dense model: full finetuning)
  --data FILE          .txt (cut into windows of --seqlen), .jsonl of {"text"}, {"instruction","input","output"}
                       (Alpaca template, loss on the response), {"prompt","completion"} (loss on the completion),
                       {"messages"} (the model's chat template, loss on the assistant turns) or {"ids"} (token
                       ids, e.g. from cluscomp generate-data)
  --loss L             ce (default: next-token cross-entropy) | kd (distillation from --teacher) | kd+ce
  --teacher DIR        the teacher model for kd (same vocabulary), e.g. the full-precision original
  --temperature T      distillation temperature (default 1)
  --ce-weight W        weight of the cross-entropy in kd+ce (default 1)
  --lora-rank r        LoRA rank (default 8)
  --lora-alpha a       LoRA alpha (default 2·r)
  --lora-targets L     linears to adapt, from ${Object.keys(LORA_TARGETS).join(",")} (default all seven)
  --merge              with --train lora: write a dense model with the adapters folded in
  --lr LR              AdamW learning rate (default 3e-4 with lora alone, else 1e-4)
  --epochs E           passes over the data (default 1)
  --max-steps N        stop after N optimizer steps (instead of --epochs)
  --batch-size B       examples per micro-batch (default 1)
  --grad-accum A       micro-batches per optimizer step (default 1)
  --seqlen L           window length / longest example (default: min(2048, the model's context))
  --warmup W           linear warmup steps (default min(10, 10 % of the steps))
  --schedule S         after warmup: ${SCHEDULES.join(" | ")} (default constant)
  --clip C             global gradient-norm clipping, 0 = off (default 1)
  --weight-decay W     AdamW weight decay (default 0)
  --seed S             data order and LoRA initialisation (default 0)
  --eval-data FILE     held-out perplexity before, after and every --eval-every steps (--eval-windows N: at most
                       N windows of --seqlen)
  --checkpoint-every N checkpoint into OUT.work every N steps (default 50); --resume continues from it
  --resume             continue an interrupted run (same options): the result is the uninterrupted run's
  --keep-activations   keep every layer's activations instead of recomputing them from the layer's input in the
                       backward: ~30 % faster, activation memory ~L× larger
${BACKEND_HELP}
  --json               print the report as one JSON object on stdout`;

const TRAIN_OPTIONS = {
  model: { type: "string" },
  data: { type: "string" },
  out: { type: "string" },
  train: { type: "string" },
  loss: { type: "string", default: "ce" },
  teacher: { type: "string" },
  temperature: { type: "string" },
  "ce-weight": { type: "string" },
  "lora-rank": { type: "string" },
  "lora-alpha": { type: "string" },
  "lora-targets": { type: "string" },
  merge: { type: "boolean" },
  lr: { type: "string" },
  epochs: { type: "string" },
  "max-steps": { type: "string" },
  "batch-size": { type: "string" },
  "grad-accum": { type: "string" },
  seqlen: { type: "string" },
  warmup: { type: "string" },
  schedule: { type: "string", default: "constant" },
  clip: { type: "string" },
  "weight-decay": { type: "string" },
  seed: { type: "string" },
  "eval-data": { type: "string" },
  "eval-every": { type: "string" },
  "eval-windows": { type: "string" },
  "checkpoint-every": { type: "string" },
  resume: { type: "boolean" },
  "keep-activations": { type: "boolean" },
  json: { type: "boolean" },
  ...BACKEND_OPTION,
} as const;

export async function trainCommand(argv: string[]): Promise<void> {
  const a = parse(argv, TRAIN_OPTIONS, "train");
  const modelDir = resolveModelPath(str(a, "model", "train"), "--model");
  const data = str(a, "data", "train");
  const sets = str(a, "train", "train")
    .split(",")
    .map((s) => s.trim());
  for (const s of sets) {
    if (!(TRAIN_SETS as readonly string[]).includes(s))
      usage("usage.train", `--train must list ${TRAIN_SETS.join(", ")}; got "${s}"`);
  }
  const loss = str(a, "loss", "train");
  if (!(LOSS_KINDS as readonly string[]).includes(loss))
    usage("usage.loss", `--loss must be ${LOSS_KINDS.join(", ")}, got "${loss}"`);
  const schedule = str(a, "schedule", "train");
  if (!(SCHEDULES as readonly string[]).includes(schedule))
    usage("usage.schedule", `--schedule must be ${SCHEDULES.join(", ")}, got "${schedule}"`);
  const lora = sets.includes("lora");
  for (const f of ["lora-rank", "lora-alpha", "lora-targets", "merge"]) {
    if (!lora && a.values[f] !== undefined) usage("usage.flag", `train: --${f} needs --train lora`);
  }
  if (loss === "ce")
    for (const f of ["temperature", "ce-weight", "teacher"])
      if (a.values[f] !== undefined) usage("usage.flag", `train: --${f} needs --loss kd or kd+ce`);
  if (loss === "kd" && a.values["ce-weight"] !== undefined)
    usage("usage.flag", "train: --ce-weight needs --loss kd+ce");
  if (a.values["eval-every"] !== undefined && a.values["eval-data"] === undefined)
    usage("usage.flag", "train: --eval-every needs --eval-data");
  const rank = intOpt(a, "lora-rank", 8, 1);
  const maxSteps = a.values["max-steps"] === undefined ? undefined : intOpt(a, "max-steps", 1, 1);
  if (maxSteps !== undefined && a.values.epochs !== undefined)
    usage("usage.flag", "train: give --epochs or --max-steps, not both");
  const teacherArg = optStr(a, "teacher");
  const teacher = teacherArg === undefined ? undefined : resolveModelPath(teacherArg, "--teacher");
  const out = checkOutputArg(str(a, "out", "train"));
  const backend = await backendFromArgs(a, "train", teacher ? [modelDir, teacher] : [modelDir]);
  let bar: ProgressBar | null = null;
  const evalLines: string[] = [];
  let seen = 0;
  const start = performance.now();
  const report = await trainModel(backend, modelDir, out, {
    data,
    sets: sets as TrainSet[],
    loss: {
      kind: loss as LossKind,
      temperature: numOpt(a, "temperature", 1),
      ceWeight: numOpt(a, "ce-weight", 1),
    },
    teacher,
    lora: lora
      ? {
          rank,
          alpha: numOpt(a, "lora-alpha", 2 * rank),
          targets: parseLoraTargets(optStr(a, "lora-targets") ?? Object.keys(LORA_TARGETS).join(",")),
        }
      : undefined,
    merge: flag(a, "merge"),
    lr: numOpt(a, "lr", sets.every((s) => s === "lora") ? 3e-4 : 1e-4),
    schedule: schedule as Schedule,
    warmup: a.values.warmup === undefined ? undefined : intOpt(a, "warmup", 0, 0),
    epochs: intOpt(a, "epochs", 1, 1),
    maxSteps,
    batchSize: intOpt(a, "batch-size", 1, 1),
    gradAccum: intOpt(a, "grad-accum", 1, 1),
    seqlen: a.values.seqlen === undefined ? undefined : intOpt(a, "seqlen", 2, 2),
    clip: numOpt(a, "clip", 1),
    weightDecay: numOpt(a, "weight-decay", 0),
    seed: intOpt(a, "seed", 0),
    evalData: optStr(a, "eval-data"),
    evalEvery: a.values["eval-every"] === undefined ? undefined : intOpt(a, "eval-every", 1, 1),
    evalWindows: a.values["eval-windows"] === undefined ? undefined : intOpt(a, "eval-windows", 1, 1),
    checkpointEvery: intOpt(a, "checkpoint-every", 50, 0),
    resume: flag(a, "resume"),
    keepActivations: flag(a, "keep-activations"),
    allowUnusedTensors: allowUnused(a),
    onProgress: (p) => {
      bar ??= new ProgressBar({ label: "train", total: p.steps, unit: "steps", initial: p.step - 1 });
      if (p.evalPpl !== undefined) evalLines.push(`step ${p.step}: held-out perplexity ${p.evalPpl.toFixed(4)}`);
      seen += p.tokens;
      const tps = seen / Math.max((performance.now() - start) / 1000, 1e-9);
      bar.update(
        p.step,
        `loss ${p.loss.toFixed(4)} ${tps.toFixed(0)} tok/s lr ${p.lr.toExponential(2)} |g| ${p.gradNorm.toFixed(3)}${p.evalPpl === undefined ? "" : ` ppl ${p.evalPpl.toFixed(3)}`}`,
      );
    },
  });
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  if (flag(a, "json")) {
    process.stdout.write(`${JSON.stringify({ ...report, peakRssMiB })}\n`);
    return;
  }
  const first = report.losses[0];
  const last = report.losses[report.losses.length - 1];
  const tps = report.tokens / Math.max(report.seconds, 1e-9);
  const lines = [
    `trained ${sets.join("+")} (${report.trainableParams.toLocaleString("en-US")} parameters) for ${report.steps} steps on ${report.examples} ${report.format} examples${report.resumedFrom ? ` (resumed at step ${report.resumedFrom})` : ""}`,
    `loss ${first?.toFixed(4)} (first step) → ${last?.toFixed(4)} (last step)`,
    ...evalLines,
    ...(report.pplBefore !== undefined
      ? [`held-out perplexity ${report.pplBefore.toFixed(4)} before → ${report.pplAfter?.toFixed(4)} after`]
      : []),
    `${report.tokens.toLocaleString("en-US")} tokens in ${report.seconds.toFixed(1)}s (${tps.toFixed(0)} tok/s), peak RSS ${peakRssMiB.toFixed(0)} MiB; wrote ${OUTPUT_WORDS[report.output]} to ${out}${report.output === "checkpoint+adapter" ? ` (apply the adapter with --adapter ${out})` : ""}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}
