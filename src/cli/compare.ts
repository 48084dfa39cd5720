// cluscomp compare --model DIR --data FILE --out DIR --run "SPEC" [--run "SPEC" …] [eval options]
// Compresses the model once per spec (compress flags, stage 2 included), evaluates each and the original, and
// writes results.json, results.md (table) and bpw_vs_ppl.svg into --out. A finished variant is reused on a re-run
// only when it was made from the same source model (fingerprint of its config and tensor headers) with the same
// settings; otherwise it is made again.

import * as fs from "node:fs";
import * as path from "node:path";
import {
  type BlockwiseOptions,
  bitsPerplexitySvg,
  type ComparisonRow,
  type CompressOptions,
  compressAndTune,
  compressModel,
  dirBytes,
  finetuneRecord,
  isScalarMethod,
  loadModel,
  loadTokenizer,
  modelFingerprint,
  perplexity,
  readModelConfig,
  readTextFile,
  resolveBlockwiseOptions,
  resolvedCompressOptions,
  resolveModelPath,
  resultsTable,
} from "../index.js";
import { writeFileAtomic } from "../io/atomic.js";
import { allowUnused, BACKEND_HELP, BACKEND_OPTION, backendFromArgs, flag, intOpt, parse, str, usage } from "./args.js";
import {
  CALIBRATED_OPTIONS,
  COMPRESS_OPTIONS,
  calibratedOptions,
  calibrationSpec,
  compressOptions,
  compressProgress,
  printPlan,
} from "./compress.js";
import { FINETUNE_OPTIONS, finetuneOptions, finetuneProgress } from "./finetune.js";
import { ProgressBar } from "./progress.js";

/** Stage-2 keys a --run spec may carry (the eval and resume flags belong to compare itself). */
const RUN_FINETUNE_KEYS = Object.keys(FINETUNE_OPTIONS).filter(
  (k) => !["eval-data", "seqlen", "max-windows", "resume"].includes(k),
);

export const COMPARE_HELP = `cluscomp compare --model DIR --data FILE --out DIR --run "SPEC" [--run "SPEC" …] [options]
  Compresses the model once per SPEC, evaluates every variant and the original on FILE (.txt or .jsonl), and
  writes results.json, results.md and bpw_vs_ppl.svg into DIR. A variant already in DIR is reused only when it
  was made from the same model (config and tensor headers) with the same settings.
  SPEC: options of cluscomp compress as key=value, e.g. "method=rtn bits=3 group-size=128",
  "bits=3 vector-dim=6 share=model", "bits=2.5 finetune=blockwise calib=c4.jsonl calib-samples=64 epochs=4".
  keys: ${Object.keys(COMPRESS_OPTIONS).join(", ")}, ${Object.keys(CALIBRATED_OPTIONS).join(", ")},
        finetune (none | blockwise) and its ${RUN_FINETUNE_KEYS.join(", ")} (train-norms=true); as for compress,
        assignment defaults to gptq with finetune=blockwise
  --seqlen N, --max-windows N, --batch-size N   as for cluscomp eval
${BACKEND_HELP}
  --json               print {title, rows} as one JSON object on stdout instead of the table`;

export interface RunSpec {
  spec: string;
  compress: CompressOptions;
  tune?: BlockwiseOptions;
}

/** Parses a `compare --run` spec of compress flags without dashes: "method=rtn bits=3 group-size=128". */
export function parseRunSpec(spec: string, modelDir: string): RunSpec {
  const argv = spec
    .trim()
    .split(/\s+/)
    .flatMap((kv) => {
      const eq = kv.indexOf("=");
      if (eq < 1) usage("usage.run", `--run "${spec}": "${kv}" is not key=value (e.g. "method=rtn bits=3")`);
      const key = kv.slice(0, eq);
      const value = kv.slice(eq + 1);
      if (FINETUNE_OPTIONS[key]?.type === "boolean") {
        if (!["true", "false"].includes(value)) usage("usage.run", `--run "${spec}": ${key} must be true or false`);
        return value === "true" ? [`--${key}`] : [];
      }
      if (key in FINETUNE_OPTIONS && !RUN_FINETUNE_KEYS.includes(key))
        usage("usage.run", `--run "${spec}": ${key} is an option of compare itself, not of a variant`);
      return [`--${key}`, value];
    });
  const spec2 = {
    ...COMPRESS_OPTIONS,
    ...CALIBRATED_OPTIONS,
    finetune: { type: "string" as const, default: "none" },
    ...FINETUNE_OPTIONS,
  };
  const command = `compare --run "${spec}"`;
  const a = parse(argv, spec2, command);
  const options = compressOptions(a, command);
  const finetune = a.values.finetune;
  if (finetune !== "none" && finetune !== "blockwise")
    usage("usage.run", `--run "${spec}": finetune must be none or blockwise, got ${JSON.stringify(finetune)}`);
  const calibrated = calibratedOptions(a, command, finetune, options);
  if (finetune === "none") {
    const stray = RUN_FINETUNE_KEYS.find(
      (k) => a.values[k] !== undefined && !calibrated.readsWithoutStage2.includes(k),
    );
    if (stray) usage("usage.run", `--run "${spec}": ${stray} is a stage-2 key; it needs finetune=blockwise`);
  } else if (isScalarMethod(options.method)) {
    usage(
      "usage.run",
      `--run "${spec}": finetune=blockwise needs a codebook method (cluscomp, reallm or llm-codebook)`,
    );
  }
  const tune = finetune === "blockwise" ? finetuneOptions(a, command, options.seed ?? 0).tune : undefined;
  const compress = {
    ...options,
    weighting: calibrated.weighting,
    assignment: calibrated.assignment,
    calibration: calibrated.needsCalibration ? calibrationSpec(a, modelDir, calibrated.flag, command) : undefined,
    ...(calibrated.needsCalibration ? { hessianInputs: calibrated.hessianInputs } : {}),
  };
  return tune ? { spec, compress, tune } : { spec, compress };
}

function slug(spec: string): string {
  return spec
    .trim()
    .replace(/[^A-Za-z0-9.]+/g, "-")
    .slice(0, 120);
}

interface Recorded {
  sourceFingerprint?: string;
  options?: unknown;
  bpw: number;
  compressSeconds: number;
  finetune?: Record<string, unknown>;
}

/** Why a finished variant in DIR cannot be reused for this run (undefined: it can). */
function reuseProblem(dir: string, fingerprint: string, run: RunSpec, cfgDir: string): string | undefined {
  const recordFile = path.join(dir, "cluscomp.json");
  if (!fs.existsSync(recordFile)) return "no cluscomp.json";
  let rec: Recorded;
  try {
    rec = JSON.parse(fs.readFileSync(recordFile, "utf8")) as Recorded;
  } catch {
    return "cluscomp.json is not valid JSON";
  }
  if (rec.sourceFingerprint !== fingerprint) return "it was made from another model (or an older cluscomp)";
  if (JSON.stringify(rec.options) !== JSON.stringify(resolvedCompressOptions(run.compress)))
    return "its compression settings differ";
  const { blocks: _b, ...recordedTune } = (rec.finetune ?? {}) as Record<string, unknown>;
  const wanted = run.tune ? finetuneRecord(resolveBlockwiseOptions(readModelConfig(cfgDir), run.tune)) : {};
  if (JSON.stringify(recordedTune) !== JSON.stringify(wanted)) return "its stage-2 settings differ";
  return undefined;
}

export async function compareCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      data: { type: "string" },
      out: { type: "string" },
      run: { type: "string", multiple: true },
      seqlen: { type: "string" },
      "max-windows": { type: "string" },
      "batch-size": { type: "string" },
      json: { type: "boolean" },
      ...BACKEND_OPTION,
    },
    "compare",
  );
  const src = resolveModelPath(str(a, "model", "compare"), "--model");
  const out = str(a, "out", "compare");
  const dataFile = str(a, "data", "compare");
  const text = readTextFile(dataFile, "--data");
  const specs = (a.values.run as string[] | undefined) ?? [];
  if (specs.length === 0)
    usage("usage.missing", 'compare: give at least one --run "SPEC" (see cluscomp compare --help)');
  const runs = specs.map((spec) => parseRunSpec(spec, src)); // validate all before any work
  const seqlenArg = a.values.seqlen === undefined ? undefined : intOpt(a, "seqlen", 2, 2);
  const maxWindows = a.values["max-windows"] === undefined ? undefined : intOpt(a, "max-windows", 0, 1);
  const batchSize = intOpt(a, "batch-size", 1, 1);
  const backend = await backendFromArgs(a, "compare", [src]);
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory())
    usage("usage.out", `--out ${out} exists and is not a directory`);
  fs.mkdirSync(out, { recursive: true });
  const fingerprint = modelFingerprint(src);
  const tokenizer = loadTokenizer(src);
  const ids = tokenizer.encode(text);
  const evalOne = async (dir: string, label: string) => {
    const { config, model } = loadModel(dir, backend, { allowUnused: allowUnused(a) });
    try {
      const seqlen = seqlenArg ?? Math.min(2048, config.maxPositionEmbeddings);
      const total = Math.min(Math.floor(ids.length / seqlen), maxWindows ?? Number.POSITIVE_INFINITY);
      const bar = new ProgressBar({ label: `eval ${label} (windows of ${seqlen})`, total, unit: "win" });
      const t0 = performance.now();
      const r = await perplexity(model, ids, {
        seqlen,
        maxWindows,
        batchSize,
        onProgress: (p) => bar.update(p.windowsDone),
      });
      return { ppl: r.ppl, evalSeconds: (performance.now() - t0) / 1000, seqlen, windows: r.windows };
    } finally {
      model.dispose();
    }
  };
  const rows: ComparisonRow[] = [];
  const fp = await evalOne(src, "original");
  rows.push({ label: "original", method: "none", bytes: dirBytes(src), ppl: fp.ppl, evalSeconds: fp.evalSeconds });
  for (const run of runs) {
    const name = slug(run.spec);
    const dir = path.join(out, name);
    let compressSeconds: number;
    let bpw: number;
    const problem = fs.existsSync(dir) ? reuseProblem(dir, fingerprint, run, src) : "absent";
    if (problem === undefined) {
      const rec = JSON.parse(fs.readFileSync(path.join(dir, "cluscomp.json"), "utf8")) as Recorded;
      bpw = rec.bpw;
      compressSeconds = rec.compressSeconds;
      process.stderr.write(`reusing ${dir} (same model, same settings)\n`);
    } else {
      if (problem !== "absent") {
        process.stderr.write(`not reusing ${dir}: ${problem}; making it again\n`);
        fs.rmSync(dir, { recursive: true, force: true });
      }
      const stage1: CompressOptions = {
        ...run.compress,
        allowUnusedTensors: allowUnused(a),
        onProgress: compressProgress(run.compress.method),
        onPlan: (plan, side) =>
          printPlan(plan, run.compress.share ?? "block", run.compress.bits, side, run.compress.channelScales),
      };
      if (run.tune) {
        const r = await compressAndTune(backend, src, dir, stage1, {
          ...run.tune,
          allowUnusedTensors: allowUnused(a),
          onProgress: finetuneProgress(),
        });
        bpw = r.bpw;
        compressSeconds = r.seconds;
      } else {
        const report = await compressModel(backend, src, dir, stage1);
        bpw = report.bpw;
        compressSeconds = report.seconds;
      }
    }
    const e = await evalOne(dir, name);
    const c = run.compress;
    rows.push({
      label: name,
      method: isScalarMethod(c.method)
        ? `${c.method} g${c.groupSize}`
        : `${c.method} share=${c.share ?? "block"}${run.tune ? " + stage 2" : ""}`,
      bpw,
      bytes: dirBytes(dir),
      ppl: e.ppl,
      compressSeconds,
      evalSeconds: e.evalSeconds,
      command: `cluscomp compress --model ${src} --out ${dir} ${run.spec
        .trim()
        .replace(/(\S+)=(\S+)/g, "--$1 $2")
        .replace(/--(\S+) true/g, "--$1")}`,
    });
    process.stderr.write(`${name}: ${bpw.toFixed(3)} bpw, ppl ${e.ppl.toFixed(3)}\n`);
  }
  const title = `${path.basename(path.resolve(src))} on ${path.basename(dataFile)} (seqlen ${fp.seqlen}, ${fp.windows} windows)`;
  writeFileAtomic(path.join(out, "results.json"), `${JSON.stringify({ title, rows }, null, 2)}\n`);
  writeFileAtomic(path.join(out, "results.md"), `### ${title}\n\n${resultsTable(rows)}`);
  writeFileAtomic(
    path.join(out, "bpw_vs_ppl.svg"),
    bitsPerplexitySvg(rows, title, (r) => r.method),
  );
  if (flag(a, "json")) process.stdout.write(`${JSON.stringify({ title, rows })}\n`);
  else process.stdout.write(`### ${title}\n\n${resultsTable(rows)}`);
}
