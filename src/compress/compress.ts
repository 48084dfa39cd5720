// Stage 1: turn a Hugging Face checkpoint into a cluscomp checkpoint (k-means codebooks, or the RTN baseline).
// Reads one weight at a time, clusters each codebook group, then writes the output directory atomically:
// everything goes to a temporary sibling directory that is renamed into place only when complete.

import * as fs from "node:fs";
import * as path from "node:path";
import type { Backend } from "../backend/backend.js";
import { CompressionError, ModelError } from "../errors.js";
import { checkOutputDir, writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import { FORMAT_VERSION, QUANT_METHOD, type QuantModule } from "../io/cluscomp_format.js";
import { modelFingerprint } from "../io/fingerprint.js";
import { type ModelConfig, readModelConfig } from "../io/hf_config.js";
import {
  copyCompanionFiles,
  openCheckpoint,
  type TensorSource,
  type TensorToWrite,
  writeSafetensors,
} from "../io/safetensors.js";
import { loadTokenizer } from "../io/tokenizer.js";
import { assertFinite, loadModel } from "../model/load.js";
import { checkCheckpoint } from "../model/tensors.js";
import { fromFloat32, isFloatDType, toFloat32 } from "../tensor/dtype.js";
import { formatShape, shapeEquals } from "../tensor/shape.js";
import { calibrationWindows, readCalibrationText } from "../train/calibration.js";
import { type BitBudget, budgetBpw, rtnBpw } from "./bits.js";
import { extractVectors, placeCodes, vectorLayout } from "./codebook.js";
import { gptqAssign, gptqFactor } from "./gptq.js";
import { collectInputStatistics, type InputStatistics, type InputStatisticsMap, vectorWeights } from "./hessian.js";
import { type CentroidDtype, kmeans } from "./kmeans.js";
import { type CodebookGroup, listLinears, type MatrixSpec, planBudget, planCodebooks, type ShareMode } from "./plan.js";
import { packBits, rtnQuantize, validateRtn } from "./rtn.js";

export type CompressMethod = "cluscomp" | "rtn";

export interface CompressOptions {
  method: CompressMethod;
  /** cluscomp: target bits per weight (planner chooses K); rtn: integer bit width. */
  bits?: number;
  /** cluscomp: vector length d (default: chosen per codebook for --bits by the planner, see plan.ts). */
  vectorDim?: number;
  /** cluscomp: centroids per codebook (instead of --bits). */
  clusters?: number;
  /** cluscomp: codebooks per matrix (m). */
  codebooks?: number;
  /** cluscomp: "min" (default: each code in ⌈log₂K⌉ bits, packed) or "16" (the reference's fixed width). */
  codeBits?: CodeBitsMode;
  share?: ShareMode;
  iters?: number;
  seed?: number;
  centroidDtype?: CentroidDtype;
  /** rtn: group size along the input axis. */
  groupSize?: number;
  /**
   * cluscomp: "hessian" = Hessian-weighted k-means (LLM-Codebook's objective, compress/hessian.ts): each vector
   * weighs by the diagonal of XᵀX of its input channel, X = the linear's inputs in the full-precision model on
   * the `calibration` windows. Default "none" (plain k-means).
   */
  weighting?: Weighting;
  /**
   * cluscomp: "gptq" = codes by GPTQ's column order with error feedback through the inverse of XᵀX
   * (compress/gptq.ts), the codebook from k-means; default "nearest" (each vector's nearest centroid).
   */
  assignment?: Assignment;
  /** The calibration windows `weighting: "hessian"` and `assignment: "gptq"` read. */
  calibration?: CalibrationSpec;
  onProgress?: (p: CompressProgress) => void;
  /** Windows of the Hessian statistics pass done / total. */
  onStatistics?: (done: number, total: number) => void;
  /** Receives the codebook plan (vector length and K of every codebook) before any weight is read. */
  onPlan?: (plan: CodebookGroup[]) => void;
  /** Compress a checkpoint with tensors its config does not use (they are copied as they are); default: refuse. */
  allowUnusedTensors?: boolean;
}

export type CodeBitsMode = "16" | "min";
export const CODE_BITS_MODES: readonly CodeBitsMode[] = ["min", "16"];
/**
 * Packed codes by default: at the same bits per weight they leave the codebooks far more rate (stage 1 on
 * stories260K at 2.5 bpw: perplexity 49.0 against 1104 with 16-bit codes; docs/results.md, "Better codebooks").
 */
export const DEFAULT_CODE_BITS: CodeBitsMode = "min";
export type Weighting = "none" | "hessian";
export type Assignment = "nearest" | "gptq";
export const WEIGHTINGS: readonly Weighting[] = ["none", "hessian"];
export const ASSIGNMENTS: readonly Assignment[] = ["nearest", "gptq"];

export interface CalibrationSpec {
  /** Calibration text (.txt) or documents (.jsonl). */
  calib: string;
  /** Windows drawn from it (seeded). */
  samples: number;
  seqlen: number;
  seed: number;
  /** Windows at the end of the text never read (stage 2's held-out windows, when it follows); default 0. */
  holdout?: number;
}

export interface CompressProgress {
  /**
   * Units done / total: for k-means, millions of vector–centroid distances (N·K per Lloyd iteration, so the rate
   * and ETA hold across codebooks of very different sizes); for rtn, matrices.
   */
  done: number;
  total: number;
  current: string;
  /** k-means: mean squared error per weight of the codebook being fitted, after the latest assignment. */
  mse?: number;
}

export interface GroupReport {
  codebook: string;
  members: string[];
  d: number;
  K: number;
  m: number;
  vectors: number;
  objectiveFirst: number;
  objectiveFinal: number;
  repairs: number;
}

export interface CompressReport {
  method: CompressMethod;
  /** Parameter-weighted bpw over the compressed matrices. */
  bpw: number;
  compressedParams: number;
  /** Bytes of the whole output directory. */
  bytes: number;
  seconds: number;
  options: Omit<CompressOptions, "onProgress" | "onPlan" | "onStatistics" | "allowUnusedTensors">;
  groups?: GroupReport[];
  /** Entries of the model directory not copied: links outside it (and its cache blobs), special files. */
  skippedFiles?: string[];
}

/** Bytes of every file under dir. */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const st = fs.statSync(path.join(dir, f));
    if (st.isFile()) total += st.size;
  }
  return total;
}

function readWeight(source: TensorSource, x: MatrixSpec): Float32Array {
  const name = `${x.name}.weight`;
  const info = source.info(name);
  if (!info) throw new ModelError("model.missing_tensor", `checkpoint has no tensor "${name}"`);
  if (!shapeEquals(info.shape, [x.out, x.in])) {
    throw new ModelError(
      "model.tensor_shape",
      `tensor "${name}" is ${formatShape(info.shape)}, config implies [${x.out}, ${x.in}]`,
    );
  }
  const w = source.readFloat32(name);
  assertFinite(name, w);
  return w;
}

interface Compressed {
  tensors: TensorToWrite[];
  modules: Record<string, QuantModule>;
  budget: BitBudget;
  groups?: GroupReport[];
}

async function clusterModel(
  backend: Backend,
  source: TensorSource,
  plan: CodebookGroup[],
  o: Required<Pick<CompressOptions, "iters" | "seed" | "centroidDtype">> & Pick<CompressOptions, "onProgress">,
  stats?: { map: InputStatisticsMap; weighting: Weighting; assignment: Assignment },
): Promise<Compressed> {
  const factors = new Map<InputStatistics, Float64Array>();
  const factorOf = (name: string, n: number): Float64Array => {
    const st = stats!.map.get(name);
    if (!st?.hessian) throw new CompressionError("compress.hessian", `no input Hessian for ${name}`);
    let u = factors.get(st);
    if (!u) {
      u = gptqFactor(st.hessian, n);
      factors.set(st, u);
    }
    return u;
  };
  const tensors: TensorToWrite[] = [];
  const modules: Record<string, QuantModule> = {};
  const groups: GroupReport[] = [];
  // work of one Lloyd iteration of each codebook part, in millions of distances: (vectors of the part) · K
  const partWork = (g: CodebookGroup) =>
    (g.members.reduce((s, x) => s + x.in * Math.ceil(Math.ceil(x.out / g.d) / g.m), 0) * g.K) / 1e6;
  const totalWork = plan.reduce((s, g) => s + g.m * partWork(g) * o.iters, 0);
  let workDone = 0;
  for (const g of plan) {
    const codebooks = new Float32Array(g.m * g.K * g.d);
    const codes = new Map<string, Uint16Array>();
    for (const x of g.members) codes.set(x.name, new Uint16Array(x.in * Math.ceil(x.out / g.d)));
    let objectiveFirst = 0;
    let objectiveFinal = 0;
    let repairs = 0;
    let vectors = 0;
    for (let p = 0; p < g.m; p++) {
      // the vectors this codebook is fitted on: part p of the single member, or all of every member (shared)
      const parts = g.members.map((x) => {
        const layout = vectorLayout(x.out, x.in, g.d, g.m);
        return { x, layout, v: extractVectors(readWeight(source, x), layout, g.m === 1 ? 0 : p) };
      });
      const n = parts.reduce((s, q) => s + q.v.length, 0);
      const all = new Float32Array(n);
      const weights = stats?.weighting === "hessian" ? new Float32Array(n / g.d) : undefined;
      let off = 0;
      for (const q of parts) {
        all.set(q.v, off);
        if (weights) {
          const st = stats!.map.get(q.x.name);
          if (!st) throw new CompressionError("compress.hessian", `no input statistics for ${q.x.name}`);
          weights.set(vectorWeights(st.diagonal, q.v.length / g.d / q.x.in), off / g.d);
        }
        off += q.v.length;
      }
      vectors += n / g.d;
      const label = g.m > 1 ? `${g.codebook}[${p}]` : g.codebook;
      const r = await kmeans(backend, all, g.d, {
        K: g.K,
        iters: o.iters,
        seed: o.seed,
        centroidDtype: o.centroidDtype,
        weights,
        onIteration: (it, objective) =>
          o.onProgress?.({
            done: Math.min(totalWork, workDone + (it + 1) * partWork(g)),
            total: totalWork,
            current: label,
            mse: weights ? undefined : objective / all.length,
          }),
      });
      workDone += partWork(g) * o.iters;
      codebooks.set(r.centroids, p * g.K * g.d);
      objectiveFirst += r.objectives[0] ?? r.finalObjective;
      objectiveFinal += r.finalObjective;
      repairs += r.repairs;
      off = 0;
      for (const q of parts) {
        const count = q.v.length / g.d;
        const partCodes =
          stats?.assignment === "gptq"
            ? await gptqAssign(backend, readWeight(source, q.x), factorOf(q.x.name, q.x.in), r.centroids, q.layout)
            : r.codes.subarray(off, off + count);
        placeCodes(codes.get(q.x.name)!, partCodes, q.layout, g.m === 1 ? 0 : p);
        off += count;
      }
    }
    tensors.push({
      name: g.codebook,
      dtype: o.centroidDtype,
      shape: [g.m, g.K, g.d],
      data: fromFloat32(o.centroidDtype, codebooks),
    });
    for (const x of g.members) {
      const c = codes.get(x.name)!;
      if (g.codeBits < 16) {
        const packed = packBits(Int32Array.from(c), g.codeBits);
        tensors.push({ name: `${x.name}.codes`, dtype: "U8", shape: [packed.length], data: packed });
      } else {
        tensors.push({ name: `${x.name}.codes`, dtype: "U16", shape: [x.in, Math.ceil(x.out / g.d)], data: c });
      }
      modules[x.name] = {
        method: "cluscomp",
        d: g.d,
        K: g.K,
        m: g.m,
        codebook: g.codebook,
        ...(g.codeBits < 16 ? { code_bits: g.codeBits } : {}),
      };
    }
    groups.push({
      codebook: g.codebook,
      members: g.members.map((x) => x.name),
      d: g.d,
      K: g.K,
      m: g.m,
      vectors,
      objectiveFirst,
      objectiveFinal,
      repairs,
    });
  }
  return { tensors, modules, budget: planBudget(plan), groups };
}

function rtnModel(
  source: TensorSource,
  mats: MatrixSpec[],
  bits: number,
  group: number,
  onProgress?: CompressOptions["onProgress"],
): Compressed {
  const tensors: TensorToWrite[] = [];
  const modules: Record<string, QuantModule> = {};
  let params = 0;
  let totalBits = 0;
  mats.forEach((x, i) => {
    const q = rtnQuantize(readWeight(source, x), x.out, x.in, bits, group);
    const packed = packBits(q.q, bits);
    const ng = Math.ceil(x.in / group);
    tensors.push({ name: `${x.name}.qweight`, dtype: "U8", shape: [packed.length], data: packed });
    tensors.push({ name: `${x.name}.scales`, dtype: "F16", shape: [x.out, ng], data: q.scales });
    tensors.push({ name: `${x.name}.zeros`, dtype: "F16", shape: [x.out, ng], data: q.zeros });
    modules[x.name] = { method: "rtn", bits, group_size: group };
    params += x.in * x.out;
    totalBits += rtnBpw(bits, group, x.in) * x.in * x.out;
    onProgress?.({ done: i + 1, total: mats.length, current: x.name });
  });
  return { tensors, modules, budget: { params, bits: totalBits } };
}

/** The sharing used when none is given: block sharing measured best on both shared models (docs/results.md). */
export function defaultShare(o: Pick<CompressOptions, "codebooks">): ShareMode {
  return (o.codebooks ?? 1) > 1 ? "none" : "block";
}

/** The options as a run uses them, defaults filled in (what cluscomp.json records). */
export function resolvedCompressOptions(
  o: CompressOptions,
): Omit<CompressOptions, "onProgress" | "onPlan" | "onStatistics" | "allowUnusedTensors"> {
  if (o.method === "rtn") return { method: "rtn", bits: o.bits, groupSize: o.groupSize ?? 128 };
  const { onProgress: _p, onPlan: _q, onStatistics: _s, allowUnusedTensors: _u, ...rest } = o;
  const weighting = o.weighting ?? "none";
  const assignment = o.assignment ?? "nearest";
  const calibrated = weighting !== "none" || assignment !== "nearest";
  return {
    ...rest,
    weighting,
    assignment,
    calibration: calibrated ? o.calibration : undefined,
    share: o.share ?? defaultShare(o),
    codeBits: o.codeBits ?? DEFAULT_CODE_BITS,
    iters: o.iters ?? 20,
    seed: o.seed ?? 0,
    centroidDtype: o.centroidDtype ?? "F16",
  };
}

/** Bits per weight must leave room for codes of 16 bits: 0 < B < 16. */
export const MAX_BITS = 16;

/** Resolves and validates options into a codebook plan (no weights read). */
export function resolvePlan(cfg: ModelConfig, o: CompressOptions): CodebookGroup[] {
  if ((o.bits === undefined) === (o.clusters === undefined)) {
    throw new CompressionError(
      "compress.usage",
      "give exactly one of --bits (a target bpw) or --clusters K (with --vector-dim)",
    );
  }
  if (o.bits !== undefined && !(o.bits > 0 && o.bits < MAX_BITS)) {
    throw new CompressionError(
      "compress.bits",
      `--bits must be above 0 and below ${MAX_BITS} (a code alone is 16 bits; ${MAX_BITS} or more is no compression), got ${o.bits}`,
    );
  }
  if (o.clusters !== undefined && o.vectorDim === undefined) {
    throw new CompressionError("compress.usage", "--clusters needs --vector-dim");
  }
  return planCodebooks(listLinears(cfg), {
    share: o.share ?? defaultShare(o),
    d: o.vectorDim,
    m: o.codebooks ?? 1,
    clusters: o.clusters,
    bits: o.bits,
    packed: (o.codeBits ?? DEFAULT_CODE_BITS) === "min",
  });
}

/** One line per kind of codebook of a plan: "attention d = 8, K = 96 (×5)", for the CLI to print what it chose. */
export function describePlan(plan: CodebookGroup[]): string[] {
  const rows = new Map<string, number>();
  for (const g of plan) {
    const fams = [...new Set(g.members.map((x) => (g.members.length > 1 ? x.family : x.projection)))].join("+");
    const key = `${fams} d = ${g.d}, K = ${g.K}${g.m > 1 ? `, m = ${g.m}` : ""}${g.codeBits < 16 ? `, ${g.codeBits}-bit codes` : ""}`;
    rows.set(key, (rows.get(key) ?? 0) + 1);
  }
  return [...rows].map(([k, n]) => `${k} (×${n})`);
}

/** The full-precision model's input statistics on the calibration windows (the model is freed afterwards). */
async function inputStatistics(
  backend: Backend,
  srcDir: string,
  c: CalibrationSpec,
  full: boolean,
  o: Pick<CompressOptions, "allowUnusedTensors" | "onStatistics">,
): Promise<InputStatisticsMap> {
  const windows = calibrationWindows(readCalibrationText(c.calib), loadTokenizer(srcDir), {
    samples: c.samples,
    seqlen: c.seqlen,
    seed: c.seed,
    holdout: c.holdout ?? 0,
  }).train;
  const { model } = loadModel(srcDir, backend, { allowUnused: o.allowUnusedTensors });
  try {
    return await collectInputStatistics(model, windows, { full, onWindow: o.onStatistics });
  } finally {
    model.dispose();
  }
}

export async function compressModel(
  backend: Backend,
  srcDir: string,
  out: string,
  opts: CompressOptions,
): Promise<CompressReport> {
  const t0 = performance.now();
  const outDir = checkOutputDir(out).dir;
  const cfg = readModelConfig(srcDir);
  if (cfg.raw.quantization_config !== undefined) {
    throw new CompressionError(
      "compress.already",
      `${srcDir} is already quantized (config.json has quantization_config)`,
    );
  }
  const { onProgress, onPlan } = opts;
  const iters = opts.iters ?? 20;
  const seed = opts.seed ?? 0;
  const centroidDtype = opts.centroidDtype ?? "F16";
  if (!Number.isInteger(iters) || iters < 1)
    throw new CompressionError("compress.iters", `--iters must be an integer ≥ 1, got ${iters}`);
  const mats = listLinears(cfg);
  let plan: CodebookGroup[] = [];
  if (opts.method === "rtn") {
    if (opts.bits === undefined)
      throw new CompressionError("compress.usage", "--method rtn needs --bits (integer bit width)");
    if ((opts.weighting ?? "none") !== "none" || (opts.assignment ?? "nearest") !== "nearest")
      throw new CompressionError(
        "compress.usage",
        "weighting and assignment are codebook options: not with --method rtn",
      );
    validateRtn(opts.bits, opts.groupSize ?? 128);
  } else if (opts.method === "cluscomp") {
    plan = resolvePlan(cfg, opts);
    if ((opts.weighting ?? "none") !== "none" || (opts.assignment ?? "nearest") !== "nearest") {
      if (!opts.calibration)
        throw new CompressionError("compress.usage", "Hessian weighting and GPTQ assignment need calibration text");
      if (!WEIGHTINGS.includes(opts.weighting ?? "none") || !ASSIGNMENTS.includes(opts.assignment ?? "nearest"))
        throw new CompressionError("compress.usage", `unknown weighting or assignment`);
      if (opts.assignment === "gptq" && plan.some((g) => g.m > 1))
        throw new CompressionError("compress.usage", "GPTQ assignment needs one codebook per matrix (--codebooks 1)");
    }
    onPlan?.(plan);
  } else {
    throw new CompressionError("compress.method", `unknown --method "${String(opts.method)}" (cluscomp | rtn)`);
  }

  const fingerprint = modelFingerprint(srcDir);
  const source = openCheckpoint(srcDir);
  try {
    checkCheckpoint(cfg, source, { allowUnused: opts.allowUnusedTensors });
    const weighting = opts.weighting ?? "none";
    const assignment = opts.assignment ?? "nearest";
    const stats =
      opts.method === "cluscomp" && opts.calibration && (weighting !== "none" || assignment !== "nearest")
        ? {
            map: await inputStatistics(backend, srcDir, opts.calibration, assignment === "gptq", opts),
            weighting,
            assignment,
          }
        : undefined;
    const result =
      opts.method === "rtn"
        ? rtnModel(source, mats, opts.bits!, opts.groupSize ?? 128, onProgress)
        : await clusterModel(backend, source, plan, { iters, seed, centroidDtype, onProgress }, stats);
    const replaced = new Set(mats.map((x) => `${x.name}.weight`));
    const kept: TensorToWrite[] = source
      .names()
      .filter((n) => !replaced.has(n))
      .sort()
      .map((n) => {
        const info = source.info(n)!;
        const data = () => {
          const raw = source.readRaw(n);
          if (isFloatDType(info.dtype))
            assertFinite(n, info.dtype === "F32" ? (raw as Float32Array) : toFloat32(info.dtype, raw));
          return raw;
        };
        return { name: n, dtype: info.dtype, shape: info.shape, data };
      });
    const bpw = budgetBpw(result.budget);
    const resolved = resolvedCompressOptions(opts);
    const quantization_config = {
      quant_method: QUANT_METHOD,
      format_version: FORMAT_VERSION,
      method: opts.method,
      bpw,
      ...(opts.method === "cluscomp"
        ? { share: resolved.share, centroid_dtype: centroidDtype, iters, seed, weighting, assignment }
        : {}),
      modules: result.modules,
    };
    const report: CompressReport = {
      method: opts.method,
      bpw,
      compressedParams: result.budget.params,
      bytes: 0,
      seconds: 0,
      options: resolved,
      groups: result.groups,
    };
    const { bytes: _bytes, seconds: _seconds, ...recorded } = report;
    await writeDirAtomic(outDir, (dir) => {
      writeSafetensors(path.join(dir, "model.safetensors"), [...kept, ...result.tensors], {
        format: "pt",
        cluscomp: String(FORMAT_VERSION),
      });
      writeFileAtomic(
        path.join(dir, "config.json"),
        `${JSON.stringify({ ...cfg.raw, quantization_config }, null, 2)}\n`,
      );
      report.skippedFiles = copyCompanionFiles(srcDir, dir);
      const record = {
        source: path.resolve(srcDir),
        sourceFingerprint: fingerprint,
        ...recorded,
        compressSeconds: (performance.now() - t0) / 1000,
      };
      writeFileAtomic(path.join(dir, "cluscomp.json"), `${JSON.stringify(record, null, 2)}\n`);
    });
    report.bytes = dirBytes(outDir);
    report.seconds = (performance.now() - t0) / 1000;
    return report;
  } finally {
    source.close();
  }
}
