// cluscomp compress --model DIR --out DIR (--bits B | --vector-dim d --clusters K [--codebooks m]) [options]

import * as fs from "node:fs";
import * as path from "node:path";
import { UsageError } from "../errors.js";
import {
  type CompressOptions,
  checkOutputDir,
  compressModel,
  dirBytes,
  SHARE_MODES,
  type ShareMode,
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
import { FINETUNE_OPTIONS, FINETUNE_OPTIONS_HELP, finetuneOptions, formatFinetune, runFinetune } from "./finetune.js";
import { ProgressBar } from "./progress.js";

export const COMPRESS_HELP = `cluscomp compress --model DIR --out DIR (--bits B | --vector-dim d --clusters K) [options]
  Compresses every q/k/v/o and gate/up/down weight; writes a cluscomp checkpoint directory (atomically).
  --method NAME        cluscomp (k-means codebooks, default) | rtn (round-to-nearest baseline)
  --bits B             cluscomp: target bits per weight (the planner picks K per codebook);
                       rtn: integer bit width (1..8)
  --vector-dim d       cluscomp: vector length (default from --bits: 4.14→4, 3→6, 2.28/2.14→8, 2→9)
  --clusters K         cluscomp: centroids per codebook (instead of --bits; needs --vector-dim)
  --codebooks m        cluscomp: codebooks per matrix along its output axis (default 1; --share none)
  --share MODE         none | block (attention / MLP codebook per block) | model (per projection type)
  --iters N            Lloyd iterations (default 20)
  --seed S             k-means seed (default 0)
  --centroid-dtype T   F16 (default) | BF16
  --group-size G       rtn: group size along the input axis (default 128)
  --finetune MODE      none (default) | blockwise: ClusComp stage 2, tune the codebooks block by block (needs
                       --calib; --share none or block); stage 1 and per-block checkpoints go to OUT.work
${FINETUNE_OPTIONS_HELP}
  --backend NAME       cpu | reference | auto (default auto)
  --threads N          CPU threads (default: every core)
  --json               print one JSON object {bpw, bytes, seconds, …} on stdout`;

const COMPRESS_OPTIONS: OptionSpec = {
  method: { type: "string", default: "cluscomp" },
  bits: { type: "string" },
  "vector-dim": { type: "string" },
  clusters: { type: "string" },
  codebooks: { type: "string" },
  share: { type: "string", default: "none" },
  iters: { type: "string" },
  seed: { type: "string" },
  "centroid-dtype": { type: "string", default: "F16" },
  "group-size": { type: "string" },
};

/** Compression options from parsed flags (shared by `compress` and `compare --run`). */
export function compressOptions(a: ParsedArgs, command: string): CompressOptions {
  const method = str(a, "method", command);
  if (method !== "cluscomp" && method !== "rtn")
    throw new UsageError("usage.method", `--method must be cluscomp or rtn, got "${method}"`);
  const share = str(a, "share", command);
  if (!(SHARE_MODES as readonly string[]).includes(share)) {
    throw new UsageError("usage.share", `--share must be one of ${SHARE_MODES.join(", ")}, got "${share}"`);
  }
  const dtype = str(a, "centroid-dtype", command);
  if (dtype !== "F16" && dtype !== "BF16")
    throw new UsageError("usage.dtype", `--centroid-dtype must be F16 or BF16, got "${dtype}"`);
  const opt = (name: string) => (optStr(a, name) === undefined ? undefined : numOpt(a, name, 0));
  return {
    method,
    bits: opt("bits"),
    vectorDim: opt("vector-dim"),
    clusters: opt("clusters"),
    codebooks: opt("codebooks"),
    share: share as ShareMode,
    iters: intOpt(a, "iters", 20),
    seed: intOpt(a, "seed", 0),
    centroidDtype: dtype,
    groupSize: intOpt(a, "group-size", 128, 1),
  };
}

/** Parses a `compare --run` spec of compress flags without dashes: "method=rtn bits=3 group-size=128". */
export function parseCompressSpec(spec: string): CompressOptions {
  const argv = spec
    .trim()
    .split(/\s+/)
    .flatMap((kv) => {
      const eq = kv.indexOf("=");
      if (eq < 1)
        throw new UsageError("usage.run", `--run "${spec}": "${kv}" is not key=value (e.g. "method=rtn bits=3")`);
      return [`--${kv.slice(0, eq)}`, kv.slice(eq + 1)];
    });
  return compressOptions(parse(argv, COMPRESS_OPTIONS, "compare --run"), "compare --run");
}

/** Progress bar adapter for compressModel. */
export function compressProgress(method: string): CompressOptions["onProgress"] {
  let bar: ProgressBar | null = null;
  return (p) => {
    bar ??= new ProgressBar({
      label: method === "rtn" ? "rtn" : "k-means",
      total: p.total,
      unit: method === "rtn" ? "mat" : "Mdist",
    });
    bar.update(p.done, p.objective === undefined ? p.current : `${p.current} obj ${p.objective.toExponential(4)}`);
  };
}

export async function compressCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      out: { type: "string" },
      json: { type: "boolean" },
      finetune: { type: "string", default: "none" },
      ...COMPRESS_OPTIONS,
      ...FINETUNE_OPTIONS,
      ...BACKEND_OPTION,
    },
    "compress",
  );
  const options = compressOptions(a, "compress");
  const modelDir = str(a, "model", "compress");
  const out = str(a, "out", "compress");
  const finetune = str(a, "finetune", "compress");
  if (finetune !== "none" && finetune !== "blockwise")
    throw new UsageError("usage.finetune", `--finetune must be none or blockwise, got "${finetune}"`);
  const backend = await backendFromArgs(a, "compress", [modelDir]);
  if (finetune === "none") {
    const report = await compressModel(backend, modelDir, out, {
      ...options,
      onProgress: compressProgress(options.method),
    });
    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    if (flag(a, "json")) {
      const { groups: _g, ...rest } = report;
      process.stdout.write(`${JSON.stringify({ ...rest, peakRssMiB })}\n`);
    } else {
      process.stdout.write(
        `compressed ${report.compressedParams} weights to ${report.bpw.toFixed(4)} bits/weight (${report.method}); ` +
          `output ${(report.bytes / 2 ** 20).toFixed(2)} MiB in ${report.seconds.toFixed(1)}s, peak RSS ${peakRssMiB.toFixed(0)} MiB\n`,
      );
    }
    return;
  }

  // stage 1 into OUT.work/stage1 (kept for --resume), then stage 2 into OUT
  if (options.method !== "cluscomp") throw new UsageError("usage.finetune", "--finetune needs --method cluscomp");
  if (options.share === "model") {
    throw new UsageError(
      "usage.finetune",
      "--finetune blockwise tunes one block at a time, so its codebooks must stay inside a block: use --share none or block",
    );
  }
  const { tune, evalSet } = finetuneOptions(a, "compress", options.seed ?? 0);
  checkOutputDir(out);
  const t0 = performance.now();
  const work = `${out}.work`;
  const stage1 = path.join(work, "stage1");
  if (fs.existsSync(path.join(stage1, "config.json")) && !tune.resume) {
    throw new UsageError("usage.resume", `${work} holds an unfinished run; pass --resume to continue it or delete it`);
  }
  let bpw: number;
  if (!fs.existsSync(path.join(stage1, "config.json"))) {
    fs.mkdirSync(work, { recursive: true });
    bpw = (
      await compressModel(backend, modelDir, stage1, {
        ...options,
        onProgress: compressProgress(options.method),
      })
    ).bpw;
  } else {
    // the stage 1 kept in the work directory must be the one these options ask for
    const record = JSON.parse(fs.readFileSync(path.join(stage1, "cluscomp.json"), "utf8")) as {
      bpw: number;
      options: CompressOptions;
    };
    const kept = record.options;
    bpw = record.bpw;
    const keys = ["bits", "vectorDim", "clusters", "codebooks", "share", "iters", "seed", "centroidDtype"] as const;
    const differ = keys.filter((k) => kept[k] !== options[k]);
    if (differ.length > 0) {
      throw new UsageError(
        "usage.resume",
        `${stage1} was compressed with other settings (${differ.map((k) => `${k} ${String(kept[k])} ≠ ${String(options[k])}`).join(", ")}); resume with the same options or delete ${work}`,
      );
    }
    process.stderr.write(`resuming: stage 1 already in ${stage1}\n`);
  }
  const r = await runFinetune(backend, modelDir, stage1, out, path.join(work, "tune"), tune, evalSet);
  fs.rmSync(work, { recursive: true, force: true });
  const bytes = dirBytes(out);
  const seconds = (performance.now() - t0) / 1000;
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  if (flag(a, "json")) {
    process.stdout.write(
      `${JSON.stringify({ method: "cluscomp", finetune: "blockwise", bpw, bytes, ...r, tuneSeconds: r.seconds, seconds, peakRssMiB })}\n`,
    );
  } else {
    process.stdout.write(formatFinetune(r));
    process.stdout.write(
      `compressed to ${bpw.toFixed(4)} bits/weight and tuned; output ${(bytes / 2 ** 20).toFixed(2)} MiB in ${seconds.toFixed(1)}s, peak RSS ${peakRssMiB.toFixed(0)} MiB\n`,
    );
  }
}
