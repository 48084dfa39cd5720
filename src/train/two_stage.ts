// ClusComp's two stages in one call (`cluscomp compress --finetune blockwise`, `compare --run "… finetune=blockwise"`):
// stage 1 into OUT.work/stage1 (kept until the end, so `resume` can continue after a crash), stage 2 from it into
// OUT, then the work directory goes. The output appears atomically, as for either stage alone.

import * as fs from "node:fs";
import * as path from "node:path";
import type { Backend } from "../backend/backend.js";
import {
  type CompressOptions,
  type CompressReport,
  compressModel,
  dirBytes,
  isScalarMethod,
  resolvedCompressOptions,
} from "../compress/compress.js";
import { CompressionError, UsageError } from "../errors.js";
import { checkOutputDir, checkWorkDir } from "../io/atomic.js";
import { type BlockwiseOptions, type BlockwiseReport, finetuneBlockwise } from "./blockwise.js";

export interface TwoStageReport {
  /** Stage 1's bpw (stage 2 keeps every shape, so it is the output's). */
  bpw: number;
  /** Stage 1's report, or undefined when a resumed run found stage 1 already done. */
  stage1?: CompressReport;
  tune: BlockwiseReport;
  /** Bytes of the output directory. */
  bytes: number;
  seconds: number;
}

export interface TwoStageHooks {
  /** Called with the stage-1 directory before stage 2 starts (e.g. to measure its perplexity). */
  afterStage1?: (stage1Dir: string) => Promise<void>;
}

/** The settings a stage-1 checkpoint kept in the work directory must share with the options of a resumed run. */
const STAGE1_KEYS = [
  "method",
  "bits",
  "rank",
  "vectorDim",
  "clusters",
  "codebooks",
  "share",
  "iters",
  "seed",
  "centroidDtype",
] as const;

export async function compressAndTune(
  backend: Backend,
  modelDir: string,
  out: string,
  compress: CompressOptions,
  tune: BlockwiseOptions,
  hooks: TwoStageHooks = {},
): Promise<TwoStageReport> {
  const t0 = performance.now();
  if (isScalarMethod(compress.method))
    throw new CompressionError(
      "compress.finetune",
      "--finetune blockwise needs a codebook method (cluscomp, reallm or llm-codebook)",
    );
  if (compress.share === "model") {
    throw new CompressionError(
      "compress.finetune",
      "--finetune blockwise tunes one block at a time, so its codebooks must stay inside a block: use --share none or block",
    );
  }
  const outDir = checkOutputDir(out).dir;
  const work = `${outDir}.work`;
  checkWorkDir(work);
  const stage1Dir = path.join(work, "stage1");
  const recordFile = path.join(stage1Dir, "cluscomp.json");
  let stage1: CompressReport | undefined;
  let bpw: number;
  if (fs.existsSync(recordFile)) {
    if (!tune.resume) {
      throw new UsageError(
        "compress.resume",
        `${work} holds an unfinished run; pass --resume to continue it or delete it`,
      );
    }
    // the stage 1 kept in the work directory must be the one these options ask for
    const record = JSON.parse(fs.readFileSync(recordFile, "utf8")) as { bpw: number; options: CompressOptions };
    const kept = record.options;
    const wanted = resolvedCompressOptions(compress);
    const differ: string[] = STAGE1_KEYS.filter((k) => kept[k] !== wanted[k]).map(
      (k) => `${k} ${String(kept[k])} ≠ ${String(wanted[k])}`,
    );
    // records from before these options existed mean 16-bit codes, plain k-means, nearest codes, no channel scales
    const later = (
      o: Pick<
        CompressOptions,
        "codeBits" | "weighting" | "assignment" | "calibration" | "hessianInputs" | "channelScales"
      >,
    ) =>
      JSON.stringify([
        o.codeBits ?? "16",
        o.weighting ?? "none",
        o.assignment ?? "nearest",
        o.calibration ?? null,
        o.calibration ? (o.hessianInputs ?? "original") : null,
        o.channelScales ?? false,
      ]);
    if (later(kept) !== later(wanted))
      differ.push(
        `code bits, weighting, assignment, calibration, Hessian inputs, channel scales ${later(kept)} ≠ ${later(wanted)}`,
      );
    if (differ.length > 0) {
      throw new UsageError(
        "compress.resume",
        `${stage1Dir} was compressed with other settings (${differ.join(", ")}); resume with the same options or delete ${work}`,
      );
    }
    bpw = record.bpw;
  } else {
    fs.rmSync(stage1Dir, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    stage1 = await compressModel(backend, modelDir, stage1Dir, compress);
    bpw = stage1.bpw;
  }
  await hooks.afterStage1?.(stage1Dir);
  const report = await finetuneBlockwise(backend, modelDir, stage1Dir, outDir, path.join(work, "tune"), tune);
  fs.rmSync(work, { recursive: true, force: true });
  return { bpw, stage1, tune: report, bytes: dirBytes(outDir), seconds: (performance.now() - t0) / 1000 };
}
