// cluscomp compress --model DIR --out DIR --bits B [options]: stage 1 (k-means codebooks or the RTN baseline),
// and with --finetune blockwise stage 2 as well.

import * as fs from "node:fs";
import * as os from "node:os";
import {
  ASSIGNMENTS,
  type Assignment,
  type CalibrationSpec,
  CODE_BITS_MODES,
  COMPRESS_METHODS,
  type CodeBitsMode,
  type CodebookGroup,
  type CompressMethod,
  type CompressOptions,
  channelScaleBpw,
  compressAndTune,
  compressModel,
  DEFAULT_CHANNEL_SCALES,
  DEFAULT_CODE_BITS,
  DEFAULT_HESSIAN_INPUTS,
  defaultHoldout,
  defaultShare,
  describePlan,
  describeSide,
  HESSIAN_INPUTS,
  type HessianInputs,
  inputHessianBytes,
  isScalarMethod,
  layerHessianBytes,
  listLinears,
  MAX_BITS,
  planBpw,
  planBudget,
  readModelConfig,
  readTextFile,
  resolveModelPath,
  SHARE_MODES,
  type ShareMode,
  type SideSummary,
  WEIGHTINGS,
  type Weighting,
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
import {
  dirPerplexity,
  FINETUNE_OPTIONS,
  FINETUNE_OPTIONS_HELP,
  type FinetuneSummary,
  finetuneOptions,
  finetuneProgress,
  formatFinetune,
} from "./finetune.js";
import { ProgressBar } from "./progress.js";

export const COMPRESS_OPTIONS_HELP = `  --method NAME        cluscomp (k-means codebooks, default) | reallm (ReALLM: an fp16 low-rank part B·A plus
                       codebooks for the residual W − B·A) | llm-codebook (LLM-Codebook: Hessian-weighted k-means,
                       the most salient input channels kept in fp16; needs --calib; finetune it with train --train
                       lora) | rtn (round-to-nearest baseline) | gptq (GPTQ, the
                       scalar baseline: RTN's grid and format, codes by GPTQ's column sweep with error feedback
                       through each linear's input Hessian over --calib; no act-order)
  --bits B             cluscomp: target bits per weight, 0 < B < ${MAX_BITS}; the planner picks a vector length and K for
                       every codebook within it (codes and codebooks counted) and prints what it chose;
                       rtn, gptq: integer bit width 1..8
  --vector-dim d       cluscomp: one vector length for every codebook instead of the planner's choice
  --clusters K         cluscomp: centroids per codebook instead of --bits (needs --vector-dim)
  --rank R             reallm: rank of every matrix's low-rank part (default: the share of each matrix's bits it
                       takes — 0, 1/16, 1/8 or 1/4 — chosen by measured reconstruction error); the codebooks get
                       the bits it leaves (--bits counts both)
  --salient N          llm-codebook: input channels per matrix kept in fp16, those of largest Hessian-weighted
                       energy hᵢ·Σ W[:, i]² (default: their share of each matrix's bits — 0, 1/32, 1/16 or 1/8 —
                       chosen by measured reconstruction error)
  --codebooks m        cluscomp: codebooks per matrix along its output axis (default 1; m > 1 means --share none)
  --code-bits C        cluscomp: min (default: each code in ⌈log₂K⌉ bits, packed; the planner spends what that
                       saves on the codebooks' rate) | 16 (every code 16 bits, as the reference stores them)
  --share MODE         cluscomp: block (default: one codebook per block for attention, one for the MLP; measured
                       best on both shared models) | none (one per matrix) | model (one per projection type)
  --iters N            cluscomp: Lloyd iterations, ≥ 1 (default 20)
  --seed S             cluscomp: k-means seed (default 0)
  --centroid-dtype T   cluscomp: F16 (default) | BF16
  --channel-scales S   cluscomp, reallm, llm-codebook: on (default: one fp16 scale per output row, the codebook
                       fitting each row divided by its largest |w|; counted in --bits) | off
  --group-size G       rtn, gptq: group size along the input axis (default 128)`;

export const COMPRESS_HELP = `cluscomp compress --model DIR --out DIR --bits B [options]
  Compresses every q/k/v/o and gate/up/down weight; writes a cluscomp checkpoint directory (atomically; the
  output must not exist or be empty). --model is a directory or a Hugging Face hub id in the local cache.
${COMPRESS_OPTIONS_HELP}
  --weighting W        cluscomp: none (default: plain k-means) | hessian: each vector weighs by Σ x² of its input
                       channel over --calib (LLM-Codebook's Hessian-aware objective)
  --assignment A       cluscomp: nearest (each vector's nearest centroid) | gptq: GPTQ's column order with error
                       feedback through the inverse of XᵀX over --calib (the codebook from k-means); default gptq
                       with --finetune blockwise (its --calib is there; measured better before and after stage 2),
                       else nearest (both read --calib, --calib-samples, --calib-seqlen and --seed, also without
                       --finetune)
  --hessian-inputs I   original (default: the statistics of the full-precision model's inputs) | compressed (each
                       block's from the blocks before it as compressed, GPTQ's sequential order); both one block
                       at a time with --share none or block
  --finetune MODE      none (default) | blockwise: ClusComp stage 2, tune the codebooks block by block (needs
                       --calib; --share none or block); stage 1 and per-block checkpoints go to OUT.work
${FINETUNE_OPTIONS_HELP}
${BACKEND_HELP}
  --json               print one JSON object {bpw, bytes, seconds, …} on stdout
  Progress: k-means work in Mdist (millions of vector–centroid distances: N vectors · K centroids per Lloyd
  iteration), with the mse (mean squared error per weight) of the codebook being fitted.`;

export const COMPRESS_OPTIONS: OptionSpec = {
  method: { type: "string", default: "cluscomp" },
  bits: { type: "string" },
  "vector-dim": { type: "string" },
  clusters: { type: "string" },
  codebooks: { type: "string" },
  rank: { type: "string" },
  salient: { type: "string" },
  "code-bits": { type: "string" },
  share: { type: "string" },
  iters: { type: "string" },
  seed: { type: "string" },
  "centroid-dtype": { type: "string" },
  "channel-scales": { type: "string" },
  "group-size": { type: "string" },
};

/** The flags each method reads; any other compression flag given with it is a usage error, never ignored. */
const CODEBOOK_FLAGS = [
  "bits",
  "vector-dim",
  "code-bits",
  "share",
  "iters",
  "seed",
  "centroid-dtype",
  "channel-scales",
];
const METHOD_FLAGS: Record<CompressMethod, readonly string[]> = {
  cluscomp: [...CODEBOOK_FLAGS, "clusters", "codebooks"],
  reallm: [...CODEBOOK_FLAGS, "rank"],
  "llm-codebook": [...CODEBOOK_FLAGS, "salient"],
  rtn: ["bits", "group-size"],
  gptq: ["bits", "group-size"],
};

/** Compression options from parsed flags (shared by `compress` and `compare --run`), validated as usage. */
export function compressOptions(a: ParsedArgs, command: string): CompressOptions {
  const method = str(a, "method", command) as CompressMethod;
  if (!COMPRESS_METHODS.includes(method))
    usage("usage.method", `--method must be ${COMPRESS_METHODS.join(", ")}, got "${method}"`);
  for (const name of Object.keys(COMPRESS_OPTIONS)) {
    if (name === "method" || a.values[name] === undefined) continue;
    if (!METHOD_FLAGS[method].includes(name)) {
      const others = COMPRESS_METHODS.filter((m) => METHOD_FLAGS[m].includes(name));
      const list = others.length > 1 ? `${others.slice(0, -1).join(", ")} or ${others.at(-1)}` : others[0];
      usage("usage.flag", `${command}: --${name} applies to --method ${list} only`);
    }
  }
  const opt = (name: string) => (optStr(a, name) === undefined ? undefined : numOpt(a, name, 0));
  const bits = opt("bits");
  if (isScalarMethod(method)) {
    if (bits === undefined)
      usage("usage.missing", `${command}: --method ${method} needs --bits (an integer bit width 1..8)`);
    if (!Number.isInteger(bits) || bits < 1 || bits > 8)
      usage("usage.value", `--bits for --method ${method} must be an integer in 1..8, got ${bits}`);
    return { method, bits, groupSize: intOpt(a, "group-size", 128, 1) };
  }
  const clusters = a.values.clusters === undefined ? undefined : intOpt(a, "clusters", 0, 1);
  if ((bits === undefined) === (clusters === undefined))
    usage("usage.missing", `${command}: give --bits B (a target bits per weight) or --clusters K with --vector-dim`);
  if (bits !== undefined && !(bits > 0 && bits < MAX_BITS)) {
    usage(
      "usage.value",
      `--bits must be above 0 and below ${MAX_BITS} bits per weight (a code is 16 bits, so ${MAX_BITS} or more compresses nothing), got ${bits}`,
    );
  }
  const vectorDim = a.values["vector-dim"] === undefined ? undefined : intOpt(a, "vector-dim", 0, 1);
  if (clusters !== undefined && vectorDim === undefined)
    usage("usage.missing", `${command}: --clusters needs --vector-dim`);
  const share = optStr(a, "share");
  if (share !== undefined && !(SHARE_MODES as readonly string[]).includes(share))
    usage("usage.share", `--share must be one of ${SHARE_MODES.join(", ")}, got "${share}"`);
  const dtype = optStr(a, "centroid-dtype") ?? "F16";
  if (dtype !== "F16" && dtype !== "BF16") usage("usage.dtype", `--centroid-dtype must be F16 or BF16, got "${dtype}"`);
  const codebooks = a.values.codebooks === undefined ? undefined : intOpt(a, "codebooks", 1, 1);
  const codeBits = optStr(a, "code-bits") ?? DEFAULT_CODE_BITS;
  if (!(CODE_BITS_MODES as readonly string[]).includes(codeBits))
    usage("usage.value", `--code-bits must be ${CODE_BITS_MODES.join(" or ")}, got "${codeBits}"`);
  const scales = optStr(a, "channel-scales") ?? (DEFAULT_CHANNEL_SCALES ? "on" : "off");
  if (scales !== "on" && scales !== "off") usage("usage.value", `--channel-scales must be on or off, got "${scales}"`);
  const rank = a.values.rank === undefined ? undefined : intOpt(a, "rank", 0, 1);
  const salient = a.values.salient === undefined ? undefined : intOpt(a, "salient", 0, 1);
  if ((method === "reallm" || method === "llm-codebook") && bits === undefined)
    usage("usage.missing", `${command}: --method ${method} needs --bits B (its side parts and codebooks together)`);
  return {
    method,
    bits,
    vectorDim,
    clusters,
    codebooks,
    ...(rank !== undefined ? { rank } : {}),
    ...(salient !== undefined ? { salient } : {}),
    codeBits: codeBits as CodeBitsMode,
    share: (share as ShareMode | undefined) ?? defaultShare({ codebooks }),
    iters: intOpt(a, "iters", 20, 1),
    seed: intOpt(a, "seed", 0),
    centroidDtype: dtype,
    channelScales: scales === "on",
  };
}

/** Progress bar adapter for compressModel. */
export function compressProgress(method: string): CompressOptions["onProgress"] {
  let bar: ProgressBar | null = null;
  let phase: string | undefined;
  return (p) => {
    // a preliminary pass (reallm's rank probes) has its own bar
    if (bar && p.phase !== phase) bar = null;
    phase = p.phase;
    bar ??= new ProgressBar({
      label: isScalarMethod(method as CompressMethod) ? method : p.phase ? `k-means (${p.phase})` : "k-means",
      total: p.total,
      unit: isScalarMethod(method as CompressMethod) ? "matrices" : "Mdist",
    });
    bar.update(p.done, p.mse === undefined ? p.current : `${p.current} mse ${p.mse.toExponential(3)}`);
  };
}

/** What the planner chose, on stderr before the work starts (and why some codebooks got another rate). */
export function printPlan(
  plan: CodebookGroup[],
  share: ShareMode,
  target?: number,
  side?: SideSummary,
  channelScales = false,
): void {
  const { params } = planBudget(plan);
  const scaleBpw = channelScales ? channelScaleBpw(plan.flatMap((g) => g.members)) : 0;
  const taken = [
    ...(channelScales ? [`channel scales (fp16, one per output row) take ${scaleBpw.toFixed(3)}`] : []),
    ...(side ? [`${describeSide(side)} take ${side.bpw.toFixed(3)}`] : []),
  ];
  if (taken.length > 0) process.stderr.write(`plan: ${taken.join("; ")} bits per weight; the codebooks get the rest\n`);
  const bits = target === undefined ? target : target - (side?.bpw ?? 0) - scaleBpw;
  process.stderr.write(
    `plan: --share ${share}; ${describePlan(plan).join("; ")} → ${planBpw(plan).toFixed(3)} bits per weight over ${params.toLocaleString("en-US")} weights\n`,
  );
  if (bits === undefined) return;
  const over = plan.filter((g) => !g.tookLeftover && (g.targetBits ?? bits) > bits + 1e-9);
  if (over.length === 0) return;
  const rest = plan.find((g) => !g.tookLeftover && (g.targetBits ?? bits) <= bits + 1e-9)?.targetBits;
  const names = [...new Set(over.flatMap((g) => g.members.map((x) => x.projection)))].join(", ");
  process.stderr.write(
    `plan: ${over.length} codebook${over.length > 1 ? "s" : ""} (${names}) cannot go below ${Math.min(...over.map((g) => g.targetBits!)).toFixed(3)} bpw (a code covers at most as many weights as the matrix has outputs); the others are planned at ${rest?.toFixed(3)} bpw so the model averages ${bits}\n`,
  );
}

/**
 * GPTQ-style codes estimate XᵀX [in, in] from the calibration tokens; with fewer than 8·in of them the estimate is
 * poor and the codes can be worse than nearest ones (stories260K, 2 windows of 64 tokens: perplexity 26.97 vs
 * 23.95). Says so on stderr; the run goes on.
 */
function warnFewTokens(c: CalibrationSpec, modelDir: string): void {
  const widest = Math.max(...listLinears(readModelConfig(modelDir)).map((x) => x.in));
  const tokens = c.samples * c.seqlen;
  if (tokens < 8 * widest) {
    process.stderr.write(
      `note: GPTQ's error feedback estimates each linear's input Hessian from ${tokens} calibration tokens, fewer than 8× the widest input (${widest}); more --calib-samples is likely better\n`,
    );
  }
}

/** --weighting / --assignment as compress and compare --run read them. */
export const CALIBRATED_OPTIONS: OptionSpec = {
  weighting: { type: "string" },
  assignment: { type: "string" },
  "hessian-inputs": { type: "string" },
};

/**
 * --weighting and --assignment, validated: assignment defaults to gptq with stage 2 (its --calib is there; one
 * codebook per matrix), else nearest. `readsWithoutStage2`: the calibration flags they read also without it.
 */
export function calibratedOptions(
  a: ParsedArgs,
  command: string,
  finetune: string,
  options: CompressOptions,
): {
  weighting: Weighting;
  assignment: Assignment;
  hessianInputs: HessianInputs;
  needsCalibration: boolean;
  flag: string;
  readsWithoutStage2: string[];
} {
  const weighting = (optStr(a, "weighting") ?? (options.method === "llm-codebook" ? "hessian" : "none")) as Weighting;
  if (!WEIGHTINGS.includes(weighting))
    usage("usage.weighting", `--weighting must be ${WEIGHTINGS.join(" or ")}, got "${weighting}"`);
  if (options.method === "llm-codebook" && weighting !== "hessian")
    usage("usage.weighting", `${command}: --method llm-codebook is Hessian-weighted k-means (--weighting hessian)`);
  const assignment = (optStr(a, "assignment") ??
    (finetune === "blockwise" && !isScalarMethod(options.method) && (options.codebooks ?? 1) === 1
      ? "gptq"
      : "nearest")) as Assignment;
  if (!ASSIGNMENTS.includes(assignment))
    usage("usage.assignment", `--assignment must be ${ASSIGNMENTS.join(" or ")}, got "${assignment}"`);
  const codebookCalibrated = weighting !== "none" || assignment !== "nearest";
  const flag =
    options.method === "gptq" || options.method === "llm-codebook"
      ? "--method"
      : weighting !== "none"
        ? "--weighting"
        : "--assignment";
  if (codebookCalibrated && isScalarMethod(options.method))
    usage(
      "usage.flag",
      `${command}: ${weighting !== "none" ? "--weighting" : "--assignment"} applies to --method cluscomp, reallm or llm-codebook only`,
    );
  // GPTQ reads its input Hessians from the calibration text
  const needsCalibration = codebookCalibrated || options.method === "gptq";
  if (assignment === "gptq" && (options.codebooks ?? 1) > 1)
    usage("usage.flag", `${command}: --assignment gptq needs one codebook per matrix (--codebooks 1)`);
  const hessianInputs = (optStr(a, "hessian-inputs") ?? DEFAULT_HESSIAN_INPUTS) as HessianInputs;
  if (!HESSIAN_INPUTS.includes(hessianInputs))
    usage("usage.value", `--hessian-inputs must be ${HESSIAN_INPUTS.join(" or ")}, got "${hessianInputs}"`);
  if (optStr(a, "hessian-inputs") !== undefined && !needsCalibration)
    usage(
      "usage.flag",
      `${command}: --hessian-inputs applies to calibrated compression (--assignment gptq, --weighting hessian, --method gptq or llm-codebook)`,
    );
  if (hessianInputs === "compressed" && options.share === "model")
    usage("usage.flag", `${command}: --hessian-inputs compressed works block by block: not with --share model`);
  const readsWithoutStage2 = needsCalibration ? ["calib", "calib-samples", "calib-seqlen"] : [];
  return { weighting, assignment, hessianInputs, needsCalibration, flag, readsWithoutStage2 };
}

/** The calibration of --weighting / --assignment: --calib (required), --calib-samples (128), --calib-seqlen (the context, ≤ 2048). */
export function calibrationSpec(
  a: ParsedArgs,
  modelDir: string,
  flagName: string,
  command = "compress",
): CalibrationSpec {
  const calib = optStr(a, "calib");
  if (calib === undefined)
    usage(
      "usage.missing",
      `${command}: ${flagName} ${optStr(a, flagName.slice(2))} needs --calib FILE (calibration text)`,
    );
  readTextFile(calib, "--calib");
  const context = Math.min(2048, readModelConfig(modelDir).maxPositionEmbeddings);
  const seqlen = a.values["calib-seqlen"] === undefined ? context : intOpt(a, "calib-seqlen", 0, 1);
  if (seqlen > context)
    usage("usage.value", `--calib-seqlen ${seqlen} is longer than the model's context (${context})`);
  const samples = intOpt(a, "calib-samples", 128, 1);
  // with stage 2, its held-out windows stay unread here too (the same default as finetune's)
  const holdout =
    optStr(a, "finetune") === "blockwise"
      ? a.values["calib-holdout"] === undefined
        ? defaultHoldout(samples)
        : intOpt(a, "calib-holdout", 0, 0)
      : undefined;
  return { calib, samples, seqlen, seed: intOpt(a, "seed", 0), ...(holdout === undefined ? {} : { holdout }) };
}

export async function compressCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      out: { type: "string" },
      json: { type: "boolean" },
      finetune: { type: "string", default: "none" },
      ...CALIBRATED_OPTIONS,
      ...COMPRESS_OPTIONS,
      ...FINETUNE_OPTIONS,
      ...BACKEND_OPTION,
    },
    "compress",
  );
  const options = compressOptions(a, "compress");
  const finetune = str(a, "finetune", "compress");
  if (finetune !== "none" && finetune !== "blockwise")
    usage("usage.finetune", `--finetune must be none or blockwise, got "${finetune}"`);
  const calibrated = calibratedOptions(a, "compress", finetune, options);
  if (finetune === "none") {
    const stray = Object.keys(FINETUNE_OPTIONS).find(
      (f) => a.values[f] !== undefined && !calibrated.readsWithoutStage2.includes(f),
    );
    if (stray) usage("usage.flag", `compress: --${stray} is a stage-2 option; it needs --finetune blockwise`);
  } else {
    if (isScalarMethod(options.method))
      usage(
        "usage.finetune",
        "--finetune blockwise needs a codebook method (cluscomp, reallm or llm-codebook): it tunes codebooks or low-rank parts",
      );
    if (options.share === "model") {
      usage(
        "usage.finetune",
        "--finetune blockwise tunes one block at a time, so its codebooks must stay inside a block: use --share none or block",
      );
    }
  }
  const modelDir = resolveModelPath(str(a, "model", "compress"), "--model");
  const tuning = finetune === "blockwise" ? finetuneOptions(a, "compress", options.seed ?? 0) : undefined;
  const out = checkOutputArg(str(a, "out", "compress"));
  const { weighting } = calibrated;
  let { assignment } = calibrated;
  // with --share none or block the statistics are taken one block at a time (the sequential order)
  const linears = listLinears(readModelConfig(modelDir));
  const hessianBytes = options.share === "model" ? inputHessianBytes(linears) : layerHessianBytes(linears);
  if (options.method === "gptq" && hessianBytes > os.totalmem() / 2)
    usage(
      "usage.memory",
      `--method gptq holds every layer's input Hessian (${(hessianBytes / 2 ** 30).toFixed(1)} GiB), more than half this machine's memory`,
    );
  if (assignment === "gptq" && hessianBytes > os.totalmem() / 2) {
    const need = `${(hessianBytes / 2 ** 30).toFixed(1)} GiB`;
    if (optStr(a, "assignment") === "gptq")
      usage(
        "usage.memory",
        `--assignment gptq holds ${options.share === "model" ? "every layer's input Hessian" : "a block's input Hessians"} (${need}), more than half this machine's memory; use --assignment nearest`,
      );
    process.stderr.write(
      `note: GPTQ-style codes would hold ${need} of input Hessians, more than half this machine's memory: nearest codes instead\n`,
    );
    assignment = "nearest";
  }
  const calibration =
    weighting !== "none" || assignment !== "nearest" || options.method === "gptq"
      ? calibrationSpec(a, modelDir, calibrated.flag)
      : undefined;
  if (calibration && (assignment === "gptq" || options.method === "gptq")) warnFewTokens(calibration, modelDir);
  const backend = await backendFromArgs(a, "compress", [modelDir]);
  const onPlan = (plan: CodebookGroup[], side?: SideSummary) =>
    printPlan(plan, options.share ?? "block", options.bits, side, options.channelScales);
  let statsBar: ProgressBar | null = null;
  const stage1Options: CompressOptions = {
    ...options,
    weighting,
    assignment,
    calibration,
    ...(calibration ? { hessianInputs: calibrated.hessianInputs } : {}),
    onStatistics: (done, total) => {
      statsBar ??= new ProgressBar({ label: "input statistics", total, unit: "window passes" });
      statsBar.update(done);
    },
    onProgress: compressProgress(options.method),
    onPlan,
    allowUnusedTensors: allowUnused(a),
  };
  if (!tuning) {
    const report = await compressModel(backend, modelDir, out, stage1Options);
    if (report.skippedFiles?.length)
      process.stderr.write(
        `not copied (links outside the model directory, or not regular files): ${report.skippedFiles.join(", ")}\n`,
      );
    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    if (flag(a, "json")) {
      const { groups: _g, ...rest } = report;
      process.stdout.write(`${JSON.stringify({ ...rest, peakRssMiB })}\n`);
    } else {
      process.stdout.write(
        `compressed ${report.compressedParams.toLocaleString("en-US")} weights to ${report.bpw.toFixed(4)} bits/weight (${report.method}); ` +
          `output ${(report.bytes / 2 ** 20).toFixed(2)} MiB in ${report.seconds.toFixed(1)}s, peak RSS ${peakRssMiB.toFixed(0)} MiB\n`,
      );
    }
    return;
  }

  const { tune, evalSet } = tuning;
  if (tune.resume && fs.existsSync(`${out}.work`)) process.stderr.write(`resuming the run in ${out}.work\n`);
  let pplOriginal: number | undefined;
  let pplBefore: number | undefined;
  let evalSeqlen: number | undefined;
  const r = await compressAndTune(
    backend,
    modelDir,
    out,
    stage1Options,
    { ...tune, onProgress: finetuneProgress() },
    {
      afterStage1: async (stage1Dir) => {
        if (!evalSet) return;
        const o = await dirPerplexity(backend, modelDir, evalSet, "original");
        pplOriginal = o.ppl;
        evalSeqlen = o.seqlen;
        pplBefore = (await dirPerplexity(backend, stage1Dir, evalSet, "stage 1")).ppl;
      },
    },
  );
  const pplAfter = evalSet ? (await dirPerplexity(backend, out, evalSet, "tuned")).ppl : undefined;
  const summary: FinetuneSummary = { ...r.tune, pplOriginal, pplBefore, pplAfter, evalSeqlen };
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  if (flag(a, "json")) {
    process.stdout.write(
      `${JSON.stringify({ method: "cluscomp", finetune: "blockwise", bpw: r.bpw, bytes: r.bytes, ...summary, tuneSeconds: r.tune.seconds, seconds: r.seconds, peakRssMiB })}\n`,
    );
  } else {
    process.stdout.write(formatFinetune(summary));
    process.stdout.write(
      `compressed to ${r.bpw.toFixed(4)} bits/weight and tuned; output ${(r.bytes / 2 ** 20).toFixed(2)} MiB in ${r.seconds.toFixed(1)}s, peak RSS ${peakRssMiB.toFixed(0)} MiB\n`,
    );
  }
}
