// Stage 1: turn a Hugging Face checkpoint into a cluscomp checkpoint (k-means codebooks, or the RTN baseline).
// Reads one weight at a time, clusters each codebook group, then writes the output directory atomically:
// everything goes to a temporary sibling directory that is renamed into place only when complete.

import * as fs from "node:fs";
import * as path from "node:path";
import type { Backend, Tensor } from "../backend/backend.js";
import { CompressionError, ModelError } from "../errors.js";
import { checkOutputDir, writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import { channelScaleName, FORMAT_VERSION, QUANT_METHOD, type QuantModule } from "../io/cluscomp_format.js";
import { modelFingerprint } from "../io/fingerprint.js";
import { type ModelConfig, readModelConfig } from "../io/hf_config.js";
import { OverlaySource } from "../io/memory_source.js";
import {
  copyCompanionFiles,
  openCheckpoint,
  type TensorSource,
  type TensorToWrite,
  writeSafetensors,
} from "../io/safetensors.js";
import { loadTokenizer } from "../io/tokenizer.js";
import { decoderLayerForward, disposeLayer } from "../model/decoder_layer.js";
import { assertFinite, CheckpointReader, loadModel } from "../model/load.js";
import { ropeInvFreq, ropeTables } from "../model/rope.js";
import { checkCheckpoint } from "../model/tensors.js";
import { fromFloat32, isFloatDType, toFloat32 } from "../tensor/dtype.js";
import { formatShape, shapeEquals } from "../tensor/shape.js";
import { calibrationWindows, readCalibrationText } from "../train/calibration.js";
import { addBudget, type BitBudget, budgetBpw, channelScaleBits, rtnBpw } from "./bits.js";
import { decodeWeight, extractVectors, placeCodes, vectorLayout } from "./codebook.js";
import { gptqAssign, gptqFactorFast, gptqQuantize } from "./gptq.js";
import {
  collectInputStatistics,
  type InputStatistics,
  type InputStatisticsMap,
  layerInputStatistics,
  vectorWeights,
} from "./hessian.js";
import { type CentroidDtype, kmeans, roundCentroids } from "./kmeans.js";
import { lowRankFactors, lowRankProduct, randomizedSvd } from "./lowrank.js";
import { type CodebookGroup, listLinears, type MatrixSpec, planBudget, planCodebooks, type ShareMode } from "./plan.js";
import { packBits, type RtnWeight, rtnQuantize, validateRtn } from "./rtn.js";
import { channelScaleBpw, channelScales, scaleRows } from "./scales.js";
import {
  channelSelection,
  fixedSizes,
  SIDE_SHARES,
  type SideKind,
  type SideSummary,
  salientChannels,
  shareSizes,
  sidePartBits,
  sideSummary,
} from "./side.js";

export type CompressMethod = "cluscomp" | "reallm" | "llm-codebook" | "rtn" | "gptq";
export const COMPRESS_METHODS: readonly CompressMethod[] = ["cluscomp", "reallm", "llm-codebook", "rtn", "gptq"];
/** The codebook methods with a side part (side.ts): ReALLM's low-rank part, LLM-Codebook's salient channels. */
export function sideKind(m: CompressMethod): SideKind | undefined {
  return m === "reallm" ? "lowrank" : m === "llm-codebook" ? "salient" : undefined;
}
/** The scalar-grid methods (RTN's format: b-bit codes, fp16 scale and zero per group). */
export const isScalarMethod = (m: CompressMethod): m is "rtn" | "gptq" => m === "rtn" || m === "gptq";

export interface CompressOptions {
  method: CompressMethod;
  /** cluscomp, reallm: target bits per weight (planner chooses K); rtn: integer bit width. */
  bits?: number;
  /**
   * reallm: rank of every matrix's fp16 low-rank part (capped at its smaller side); default: the share of each
   * matrix's bits spent on it is chosen from SIDE_SHARES.lowrank by measured reconstruction error.
   */
  rank?: number;
  /** llm-codebook: salient input channels kept in fp16 per matrix; default: chosen as the rank is (SIDE_SHARES.salient). */
  salient?: number;
  /**
   * cluscomp, reallm, llm-codebook: one fp16 scale per output row of every matrix, the codebook fitting the rows
   * divided by their largest |w| (compress/scales.ts); default DEFAULT_CHANNEL_SCALES.
   */
  channelScales?: boolean;
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
  /**
   * Whose inputs the statistics are taken from, block by block: "original" (the full-precision model's) or
   * "compressed" (the blocks before as compressed: GPTQ's sequential order). Default DEFAULT_HESSIAN_INPUTS.
   */
  hessianInputs?: HessianInputs;
  onProgress?: (p: CompressProgress) => void;
  /** Window passes (one calibration window through one block) of the statistics pass done / total. */
  onStatistics?: (done: number, total: number) => void;
  /** Receives the codebook plan (vector length and K of every codebook) before any weight is read. */
  onPlan?: (plan: CodebookGroup[], side?: SideSummary) => void;
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
/**
 * Channel scales by default: on stories260K they cut KL by a quarter to a half at every rate (and win 4.5 bpw back
 * from GPTQ); on llama-en-26m they are a wash (2.5 bpw better, 2.0 / 3.25 / 4.1 a little worse; docs/results.md,
 * "Channel scales"). A probe on the weights' reconstruction error could not tell the two apart (it said off on
 * stories260K at 2–2.5 bpw, where scales win most), so there is no automatic choice.
 */
export const DEFAULT_CHANNEL_SCALES = true;
export type Weighting = "none" | "hessian";
export type HessianInputs = "original" | "compressed";
export const HESSIAN_INPUTS: readonly HessianInputs[] = ["original", "compressed"];
/** Measured: docs/results.md, "Better codebooks". */
export const DEFAULT_HESSIAN_INPUTS: HessianInputs = "original";
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
  /** A preliminary pass with its own done/total (reallm's rank probes: "rank probe, share 1/8"); absent for the fit. */
  phase?: string;
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
  /** Σ over members of ‖W − Ŵ‖² (each input channel weighted by its Hessian diagonal when statistics exist). */
  reconstructionError: number;
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
  /**
   * reallm without --rank, llm-codebook without --salient: the side-part shares probed with their reconstruction
   * errors (Σ of the groups'), and the one kept.
   */
  sideProbes?: { share: number; error: number }[];
  sideShare?: number;
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

/** The side parts clusterModel fits: every member's size (absent or 0: none) and, for lowrank, alternations. */
interface SideFit {
  kind: SideKind;
  sizes: Map<string, number>;
  /** Refits of the low-rank part on W − VQ(residual), each followed by a warm-started k-means (LQ-LoRA). */
  alternations: number;
}

/** GPTQ's factor of each linear's input Hessian, computed once per input stream (linears sharing an input share it). */
function gptqFactors(backend: Backend, map: InputStatisticsMap): (name: string, n: number) => Promise<Float64Array> {
  const factors = new Map<InputStatistics, Promise<Float64Array>>();
  return (name, n) => {
    const st = map.get(name);
    if (!st?.hessian) throw new CompressionError("compress.hessian", `no input Hessian for ${name}`);
    let u = factors.get(st);
    if (!u) {
      u = gptqFactorFast(backend, st.hessian, n);
      factors.set(st, u);
    }
    return u;
  };
}

/** One group's k-means fit: codebooks [m, K, d], every member's codes [in, nb] and the objectives. */
interface GroupFit {
  codebooks: Float32Array;
  codes: Map<string, Uint16Array>;
  objectiveFirst: number;
  objectiveFinal: number;
  repairs: number;
  vectors: number;
}

/** Work of one Lloyd iteration of a codebook part, in millions of distances: (vectors of the part) · K. */
function partWork(g: CodebookGroup): number {
  return (g.members.reduce((s, x) => s + x.in * Math.ceil(Math.ceil(x.out / g.d) / g.m), 0) * g.K) / 1e6;
}

/** The k-means work of a whole plan (progress totals): every part, every iteration, every refit. */
function planWork(plan: CodebookGroup[], iters: number, alternations: number): number {
  return plan.reduce((s, g) => s + g.m * partWork(g) * iters * (1 + alternations), 0);
}

interface WorkCounter {
  done: number;
  total: number;
}

async function clusterModel(
  backend: Backend,
  source: TensorSource,
  plan: CodebookGroup[],
  o: Required<Pick<CompressOptions, "iters" | "seed" | "centroidDtype" | "channelScales">> &
    Pick<CompressOptions, "onProgress"> & { work?: WorkCounter },
  stats?: { map: InputStatisticsMap; weighting: Weighting; assignment: Assignment },
  side?: SideFit,
): Promise<Compressed> {
  const factorOf = stats ? gptqFactors(backend, stats.map) : undefined;
  const tensors: TensorToWrite[] = [];
  const modules: Record<string, QuantModule> = {};
  const groups: GroupReport[] = [];
  let sideBits = 0;
  const alternations = side?.kind === "lowrank" ? side.alternations : 0;
  // a sequential run calls this once per block with one counter for the whole plan
  const work = o.work ?? { done: 0, total: planWork(plan, o.iters, alternations) };
  const totalWork = work.total;
  /**
   * k-means of every part of group g on the members' `targets` (W, or ReALLM's W − B·A), warm-started from `init`;
   * the vectors of each member's `ignored` input channels (LLM-Codebook's salient ones) weigh 0.
   */
  const fitGroup = async (
    g: CodebookGroup,
    targets: Map<string, Float32Array>,
    ignored: Map<string, Int32Array>,
    init?: Float32Array,
  ): Promise<GroupFit> => {
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
        return { x, layout, v: extractVectors(targets.get(x.name)!, layout, g.m === 1 ? 0 : p) };
      });
      const n = parts.reduce((s, q) => s + q.v.length, 0);
      const all = new Float32Array(n);
      const weighted = stats?.weighting === "hessian" || g.members.some((x) => ignored.has(x.name));
      const weights = weighted ? new Float32Array(n / g.d).fill(1) : undefined;
      let off = 0;
      for (const q of parts) {
        all.set(q.v, off);
        const perChannel = q.v.length / g.d / q.x.in;
        if (weights && stats?.weighting === "hessian") {
          const st = stats!.map.get(q.x.name);
          if (!st) throw new CompressionError("compress.hessian", `no input statistics for ${q.x.name}`);
          weights.set(vectorWeights(st.diagonal, perChannel), off / g.d);
        }
        // the vectors of channel i are i·perChannel … (i+1)·perChannel − 1 of the part (extractVectors' order)
        for (const i of ignored.get(q.x.name) ?? [])
          weights!.fill(0, off / g.d + i * perChannel, off / g.d + (i + 1) * perChannel);
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
        init: init?.subarray(p * g.K * g.d, (p + 1) * g.K * g.d),
        onIteration: (it, objective) =>
          o.onProgress?.({
            done: Math.min(totalWork, work.done + (it + 1) * partWork(g)),
            total: totalWork,
            current: label,
            mse: weights ? undefined : objective / all.length,
          }),
      });
      work.done += partWork(g) * o.iters;
      codebooks.set(r.centroids, p * g.K * g.d);
      objectiveFirst += r.objectives[0] ?? r.finalObjective;
      objectiveFinal += r.finalObjective;
      repairs += r.repairs;
      off = 0;
      for (const q of parts) {
        const count = q.v.length / g.d;
        const partCodes =
          stats?.assignment === "gptq"
            ? await gptqAssign(
                backend,
                targets.get(q.x.name)!,
                await factorOf!(q.x.name, q.x.in),
                r.centroids,
                q.layout,
              )
            : r.codes.subarray(off, off + count);
        placeCodes(codes.get(q.x.name)!, partCodes, q.layout, g.m === 1 ? 0 : p);
        off += count;
      }
    }
    return { codebooks, codes, objectiveFirst, objectiveFinal, repairs, vectors };
  };
  for (const g of plan) {
    const weights = new Map(g.members.map((x) => [x.name, readWeight(source, x)] as const));
    const sizeOf = (x: MatrixSpec) => side?.sizes.get(x.name) ?? 0;
    // ReALLM: B·A from the truncated SVD of W (later of W − VQ), rounded to fp16 as stored; the codebook fits W − B·A
    const factorsOf = new Map<string, { A: Float32Array; B: Float32Array }>();
    const targets = new Map<string, Float32Array>();
    // LLM-Codebook: each member's salient input channels, left out of the k-means
    const salient = new Map<string, Int32Array>();
    for (const x of g.members) {
      if (side?.kind !== "salient" || sizeOf(x) === 0) continue;
      const h = stats?.map.get(x.name)?.diagonal;
      if (!h) throw new CompressionError("compress.hessian", `no input statistics for ${x.name}`);
      salient.set(x.name, salientChannels(weights.get(x.name)!, x.out, x.in, h, sizeOf(x)));
    }
    const refit = async (decoded?: Map<string, Float32Array>) => {
      for (const x of g.members) {
        const w = weights.get(x.name)!;
        const r = side?.kind === "lowrank" ? sizeOf(x) : 0;
        if (r === 0) {
          targets.set(x.name, w);
          continue;
        }
        const dec = decoded?.get(x.name);
        const base = dec ? Float32Array.from(w, (v, i) => v - dec[i]) : w;
        const f = lowRankFactors(await randomizedSvd(backend, base, x.out, x.in, r, { seed: o.seed }));
        const A = roundCentroids(f.A, o.centroidDtype);
        const B = roundCentroids(f.B, o.centroidDtype);
        factorsOf.set(x.name, { A, B });
        const ba = lowRankProduct(A, B, x.out, x.in);
        targets.set(
          x.name,
          Float32Array.from(w, (v, i) => v - ba[i]),
        );
      }
    };
    // channel scales: the codebook fits each target's rows divided by their scale (compress/scales.ts)
    const scalesOf = new Map<string, Float32Array>();
    const fitTargets = new Map<string, Float32Array>();
    const normalize = () => {
      for (const x of g.members) {
        const t = targets.get(x.name)!;
        if (!o.channelScales) {
          fitTargets.set(x.name, t);
          continue;
        }
        const sc = channelScales(t, x.out, x.in, o.centroidDtype, salient.get(x.name));
        scalesOf.set(x.name, sc);
        fitTargets.set(x.name, scaleRows(t, sc, x.in, true));
      }
    };
    const decodeAll = (f: GroupFit) =>
      new Map(
        g.members.map((x) => {
          const layout = vectorLayout(x.out, x.in, g.d, g.m);
          const dec = decodeWeight(f.codes.get(x.name)!, f.codebooks, layout, g.K);
          const sc = scalesOf.get(x.name);
          return [x.name, sc ? scaleRows(dec, sc, x.in) : dec] as const;
        }),
      );
    await refit();
    normalize();
    let fit = await fitGroup(g, fitTargets, salient);
    // no member with a low-rank part: nothing to alternate with (a refit would only add k-means iterations)
    const groupAlternations = g.members.some((x) => side?.kind === "lowrank" && sizeOf(x) > 0) ? alternations : 0;
    for (let a = 0; a < groupAlternations; a++) {
      await refit(decodeAll(fit));
      normalize();
      fit = await fitGroup(g, fitTargets, salient, fit.codebooks);
    }
    work.done += (alternations - groupAlternations) * g.m * partWork(g) * o.iters;
    const decoded = decodeAll(fit);
    // LLM-Codebook: B [out, k] = W[:, S] − VQ[:, S], so the salient channels are exact up to fp16
    for (const [name, S] of salient) {
      const x = g.members.find((m) => m.name === name)!;
      const w = weights.get(name)!;
      const dec = decoded.get(name)!;
      const B = new Float32Array(x.out * S.length);
      for (let o2 = 0; o2 < x.out; o2++)
        for (let c = 0; c < S.length; c++) B[o2 * S.length + c] = w[o2 * x.in + S[c]] - dec[o2 * x.in + S[c]];
      factorsOf.set(name, { A: channelSelection(S, x.in), B: roundCentroids(B, o.centroidDtype) });
    }
    tensors.push({
      name: g.codebook,
      dtype: o.centroidDtype,
      shape: [g.m, g.K, g.d],
      data: fromFloat32(o.centroidDtype, fit.codebooks),
    });
    for (const x of g.members) {
      const c = fit.codes.get(x.name)!;
      if (g.codeBits < 16) {
        const packed = packBits(Int32Array.from(c), g.codeBits);
        tensors.push({ name: `${x.name}.codes`, dtype: "U8", shape: [packed.length], data: packed });
      } else {
        tensors.push({ name: `${x.name}.codes`, dtype: "U16", shape: [x.in, Math.ceil(x.out / g.d)], data: c });
      }
      const sc = scalesOf.get(x.name);
      if (sc) {
        tensors.push({
          name: channelScaleName(x.name),
          dtype: o.centroidDtype,
          shape: [x.out],
          data: fromFloat32(o.centroidDtype, sc),
        });
        sideBits += channelScaleBits(x.out);
      }
      const f = factorsOf.get(x.name);
      const S = salient.get(x.name);
      if (f && S) {
        tensors.push({ name: `${x.name}.salient_index`, dtype: "I32", shape: [S.length], data: S });
        tensors.push({
          name: `${x.name}.salient_weight`,
          dtype: o.centroidDtype,
          shape: [x.out, S.length],
          data: fromFloat32(o.centroidDtype, f.B),
        });
        sideBits += sidePartBits("salient", S.length, x.out, x.in);
      } else if (f) {
        const r = f.A.length / x.in;
        tensors.push({
          name: `${x.name}.lowrank_A`,
          dtype: o.centroidDtype,
          shape: [r, x.in],
          data: fromFloat32(o.centroidDtype, f.A),
        });
        tensors.push({
          name: `${x.name}.lowrank_B`,
          dtype: o.centroidDtype,
          shape: [x.out, r],
          data: fromFloat32(o.centroidDtype, f.B),
        });
        sideBits += sidePartBits("lowrank", r, x.out, x.in);
      }
      modules[x.name] = {
        method: "cluscomp",
        d: g.d,
        K: g.K,
        m: g.m,
        codebook: g.codebook,
        ...(g.codeBits < 16 ? { code_bits: g.codeBits } : {}),
        ...(f && !S ? { rank: f.A.length / x.in } : {}),
        ...(S ? { salient: S.length } : {}),
        ...(sc ? { channel_scale: true as const } : {}),
      };
    }
    let reconstructionError = 0;
    for (const x of g.members) {
      // W − Ŵ = (W − B·A) − VQ = target − decoded; salient channels: W − VQ − B
      const e = Float32Array.from(targets.get(x.name)!, (t, i) => t - decoded.get(x.name)![i]);
      const S = salient.get(x.name);
      if (S) {
        const B = factorsOf.get(x.name)!.B;
        for (let o2 = 0; o2 < x.out; o2++)
          for (let c = 0; c < S.length; c++) e[o2 * x.in + S[c]] -= B[o2 * S.length + c];
      }
      const h = stats?.map.get(x.name)?.diagonal;
      for (let i = 0; i < e.length; i++) reconstructionError += (h ? h[i % x.in] : 1) * e[i] ** 2;
    }
    groups.push({
      codebook: g.codebook,
      members: g.members.map((x) => x.name),
      d: g.d,
      K: g.K,
      m: g.m,
      reconstructionError,
      vectors: fit.vectors,
      objectiveFirst: fit.objectiveFirst,
      objectiveFinal: fit.objectiveFinal,
      repairs: fit.repairs,
    });
  }
  const budget = planBudget(plan);
  return { tensors, modules, budget: { params: budget.params, bits: budget.bits + sideBits }, groups };
}

/**
 * RTN, or with `hessians` GPTQ (its column sweep with error feedback through each linear's input Hessian): the
 * same grid and the same stored format.
 */
async function rtnModel(
  backend: Backend,
  source: TensorSource,
  mats: MatrixSpec[],
  bits: number,
  group: number,
  onProgress?: CompressOptions["onProgress"],
  hessians?: InputStatisticsMap,
  progress: { offset: number; total: number } = { offset: 0, total: mats.length },
): Promise<Compressed> {
  const tensors: TensorToWrite[] = [];
  const modules: Record<string, QuantModule> = {};
  let params = 0;
  let totalBits = 0;
  const factorOf = hessians ? gptqFactors(backend, hessians) : undefined;
  for (const [i, x] of mats.entries()) {
    const w = readWeight(source, x);
    const q: RtnWeight = factorOf
      ? await gptqQuantize(backend, w, x.out, x.in, bits, group, await factorOf(x.name, x.in))
      : rtnQuantize(w, x.out, x.in, bits, group);
    const packed = packBits(q.q, bits);
    const ng = Math.ceil(x.in / group);
    tensors.push({ name: `${x.name}.qweight`, dtype: "U8", shape: [packed.length], data: packed });
    tensors.push({ name: `${x.name}.scales`, dtype: "F16", shape: [x.out, ng], data: q.scales });
    tensors.push({ name: `${x.name}.zeros`, dtype: "F16", shape: [x.out, ng], data: q.zeros });
    modules[x.name] = { method: "rtn", bits, group_size: group };
    params += x.in * x.out;
    totalBits += rtnBpw(bits, group, x.in) * x.in * x.out;
    onProgress?.({ done: progress.offset + i + 1, total: progress.total, current: x.name });
  }
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
  if (o.method === "gptq")
    return {
      method: "gptq",
      bits: o.bits,
      groupSize: o.groupSize ?? 128,
      calibration: o.calibration,
      hessianInputs: o.hessianInputs ?? DEFAULT_HESSIAN_INPUTS,
    };
  const { onProgress: _p, onPlan: _q, onStatistics: _s, allowUnusedTensors: _u, ...rest } = o;
  const weighting = o.weighting ?? "none";
  const assignment = o.assignment ?? "nearest";
  const calibrated = weighting !== "none" || assignment !== "nearest";
  return {
    ...rest,
    weighting,
    assignment,
    calibration: calibrated ? o.calibration : undefined,
    hessianInputs: calibrated ? (o.hessianInputs ?? DEFAULT_HESSIAN_INPUTS) : undefined,
    share: o.share ?? defaultShare(o),
    codeBits: o.codeBits ?? DEFAULT_CODE_BITS,
    channelScales: o.channelScales ?? DEFAULT_CHANNEL_SCALES,
    iters: o.iters ?? 20,
    seed: o.seed ?? 0,
    centroidDtype: o.centroidDtype ?? "F16",
  };
}

/**
 * Without --rank (reallm) or --salient (llm-codebook), compress fits the model at each share of SIDE_SHARES
 * (k-means of SIDE_PROBE_ITERS iterations, nearest codes, no alternation) and keeps the share of least
 * reconstruction error Σ h·(W − Ŵ)² (h: the Hessian diagonal when statistics are collected, else 1).
 */
const SIDE_PROBE_ITERS = 5;
/** ReALLM: refits of the low-rank part on W − VQ after the first k-means, each followed by a warm-started k-means. */
export const REALLM_ALTERNATIONS = 1;

/** The side-part size a run fixes (--rank, --salient), if any. */
function fixedSide(o: CompressOptions): number | undefined {
  return o.method === "reallm" ? o.rank : o.method === "llm-codebook" ? o.salient : undefined;
}

/** The codebook plan beside side parts: the planner at the bits per weight the side parts leave. */
export function sidePlan(
  cfg: ModelConfig,
  o: CompressOptions,
  kind: SideKind,
  sizes: Map<string, number>,
): CodebookGroup[] {
  const { bpw } = sideSummary(kind, listLinears(cfg), sizes);
  const what = kind === "lowrank" ? "low-rank parts" : "salient channels";
  return resolvePlan(cfg, o, { bpw, what, flag: kind === "lowrank" ? "rank" : "salient" });
}

function tryPlan(
  cfg: ModelConfig,
  o: CompressOptions,
  kind: SideKind,
  sizes: Map<string, number>,
): CodebookGroup[] | undefined {
  try {
    return sidePlan(cfg, o, kind, sizes);
  } catch (e) {
    if (e instanceof CompressionError) return undefined;
    throw e;
  }
}

interface SideChoice {
  share: number;
  sizes: Map<string, number>;
  plan: CodebookGroup[];
  probes: { share: number; error: number }[];
}

/** Fits the model at each feasible share of SIDE_SHARES[kind] (cheaply) and keeps the least error's. */
async function chooseSideShare(
  backend: Backend,
  source: TensorSource,
  cfg: ModelConfig,
  mats: MatrixSpec[],
  o: CompressOptions,
  kind: SideKind,
  stats: { map: InputStatisticsMap; weighting: Weighting; assignment: Assignment } | undefined,
): Promise<SideChoice> {
  let best: (SideChoice & { error: number }) | undefined;
  const probes: { share: number; error: number }[] = [];
  const tried = new Set<string>();
  for (const share of SIDE_SHARES[kind]) {
    const sizes = shareSizes(kind, mats, o.bits!, share);
    const key = [...sizes.values()].join();
    const plan = tryPlan(cfg, o, kind, sizes);
    // a share whose sizes round to an earlier one's (narrow matrices) is the same fit
    if (!plan || tried.has(key)) continue;
    tried.add(key);
    const probe = await clusterModel(
      backend,
      source,
      plan,
      {
        iters: Math.min(o.iters ?? 20, SIDE_PROBE_ITERS),
        seed: o.seed ?? 0,
        centroidDtype: o.centroidDtype ?? "F16",
        channelScales: o.channelScales ?? DEFAULT_CHANNEL_SCALES,
        onProgress: (p) => o.onProgress?.({ ...p, phase: `${kind} probe, share ${share}` }),
      },
      stats ? { ...stats, assignment: "nearest" } : undefined,
      { kind, sizes, alternations: 0 },
    );
    const error = probe.groups!.reduce((s, g) => s + g.reconstructionError, 0);
    probes.push({ share, error });
    if (!best || error < best.error) best = { share, sizes, plan, probes, error };
  }
  if (!best) throw new CompressionError("compress.side", `no ${kind} share gives a feasible plan at these --bits`);
  return best;
}

/** Bits per weight must leave room for codes of 16 bits: 0 < B < 16. */
export const MAX_BITS = 16;

/** Resolves and validates options into a codebook plan (no weights read). */
export function resolvePlan(
  cfg: ModelConfig,
  o: CompressOptions,
  reserved?: { bpw: number; what: string; flag: string },
): CodebookGroup[] {
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
  const mats = listLinears(cfg);
  // channel scales and side parts take their bits off the codebooks' budget
  const taken = [
    ...(reserved ? [reserved] : []),
    ...((o.channelScales ?? DEFAULT_CHANNEL_SCALES) && o.bits !== undefined
      ? [{ bpw: channelScaleBpw(mats), what: "channel scales" }]
      : []),
  ];
  const takenBpw = taken.reduce((n, t) => n + t.bpw, 0);
  const bits = o.bits === undefined ? undefined : o.bits - takenBpw;
  const whats = taken.map((t) => t.what).join(" and ");
  if (bits !== undefined && !(bits > 0))
    throw new CompressionError(
      "compress.bits",
      `the ${whats} take ${takenBpw.toFixed(3)} bits per weight, leaving none of --bits ${o.bits} for the codebooks: raise --bits${reserved ? ` or lower --${reserved.flag}` : ""}${taken.some((t) => t.what === "channel scales") ? " or give --channel-scales off" : ""}`,
    );
  return planCodebooks(mats, {
    share: o.share ?? defaultShare(o),
    d: o.vectorDim,
    m: o.codebooks ?? 1,
    clusters: o.clusters,
    bits,
    packed: (o.codeBits ?? DEFAULT_CODE_BITS) === "min",
    ...(takenBpw > 0
      ? { bitsLabel: `--bits ${o.bits} (${bits!.toFixed(3)} for the codebooks after the ${whats})` }
      : {}),
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
/** The calibration windows statistics read (stage 2's held-out windows left out). */
function calibrationTrainWindows(srcDir: string, c: CalibrationSpec): Int32Array[] {
  return calibrationWindows(readCalibrationText(c.calib), loadTokenizer(srcDir), {
    samples: c.samples,
    seqlen: c.seqlen,
    seed: c.seed,
    holdout: c.holdout ?? 0,
  }).train;
}

async function inputStatistics(
  backend: Backend,
  srcDir: string,
  c: CalibrationSpec,
  full: boolean,
  o: Pick<CompressOptions, "allowUnusedTensors" | "onStatistics">,
): Promise<InputStatisticsMap> {
  const windows = calibrationTrainWindows(srcDir, c);
  const { model } = loadModel(srcDir, backend, { allowUnused: o.allowUnusedTensors });
  try {
    const L = model.config.numHiddenLayers;
    return await collectInputStatistics(model, windows, {
      full,
      onWindow: (w, n) => o.onStatistics?.(w * L, n * L),
    });
  } finally {
    model.dispose();
  }
}

/** Adds one block's compressed tensors, modules, bits and reports to a whole model's. */
function mergeCompressed(into: Compressed, part: Compressed): void {
  into.tensors.push(...part.tensors);
  Object.assign(into.modules, part.modules);
  into.budget = addBudget(into.budget, part.budget);
  if (part.groups) into.groups = [...(into.groups ?? []), ...part.groups];
}

/**
 * Block by block: block l's input statistics come from the calibration windows' hidden states (the full-precision
 * block l run on them), block l is compressed by `compressBlock`, and the states move on to block l + 1 — through the
 * original block (`inputs: "original"`: the statistics of the full-precision model) or through block l as just
 * compressed, read back through the checkpoint loader (`"compressed"`: GPTQ's sequential order, each block
 * compensating the error of those before it). Only one block's statistics (and Hessians) are held at a time.
 */
async function compressSequential(
  backend: Backend,
  srcDir: string,
  cfg: ModelConfig,
  source: TensorSource,
  c: CalibrationSpec,
  full: boolean,
  method: CompressMethod,
  inputs: HessianInputs,
  onStatistics: CompressOptions["onStatistics"],
  compressBlock: (layer: number, stats: InputStatisticsMap) => Promise<Compressed>,
): Promise<Compressed> {
  const windows = calibrationTrainWindows(srcDir, c);
  if (windows.length === 0) throw new CompressionError("compress.calib", "Hessian statistics need calibration windows");
  const fpReader = new CheckpointReader(backend, cfg, source);
  const embed = fpReader.tensor("model.embed_tokens.weight", [cfg.vocabSize, cfg.hiddenSize]);
  let xs: Tensor[] = windows.map((ids) => {
    const idsT = backend.uploadInt(ids, [1, ids.length]);
    const h = backend.embedding(idsT, embed);
    backend.dispose(idsT);
    return h;
  });
  backend.dispose(embed);
  const positions = Math.max(...windows.map((w) => w.length));
  const tables = ropeTables(ropeInvFreq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling), positions);
  const half = cfg.headDim / 2;
  const rope = {
    cos: backend.upload(tables.cos, [positions, half]),
    sin: backend.upload(tables.sin, [positions, half]),
  };
  const all: Compressed = { tensors: [], modules: {}, budget: { params: 0, bits: 0 }, groups: [] };
  let done = 0;
  const total = cfg.numHiddenLayers * windows.length;
  try {
    for (let l = 0; l < cfg.numHiddenLayers; l++) {
      const fpLayer = fpReader.layer(l);
      const { stats, outputs } = await layerInputStatistics(
        backend,
        cfg,
        fpLayer,
        l,
        xs,
        () => rope,
        full,
        () => onStatistics?.(++done, total),
      );
      disposeLayer(backend, fpLayer);
      const part = await compressBlock(l, stats);
      mergeCompressed(all, part);
      if (inputs === "original" || l + 1 === cfg.numHiddenLayers) {
        for (const x of xs) backend.dispose(x);
        xs = outputs;
        continue;
      }
      for (const y of outputs) backend.dispose(y);
      // the windows through block l as compressed, for block l + 1
      const quantization_config = {
        quant_method: QUANT_METHOD,
        format_version: FORMAT_VERSION,
        method,
        bpw: 0,
        modules: part.modules,
      };
      const qReader = new CheckpointReader(
        backend,
        { ...cfg, raw: { ...cfg.raw, quantization_config } },
        new OverlaySource(part.tensors, source),
      );
      const qLayer = qReader.layer(l);
      xs = xs.map((x) => {
        const { y } = decoderLayerForward(backend, cfg, qLayer, x, { cos: rope.cos, sin: rope.sin, past: 0 });
        backend.dispose(x);
        return y;
      });
      disposeLayer(backend, qLayer);
    }
  } finally {
    for (const x of xs) backend.dispose(x);
    backend.dispose(rope.cos);
    backend.dispose(rope.sin);
  }
  return all;
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
  const kind = sideKind(opts.method);
  let plan: CodebookGroup[] = [];
  if (isScalarMethod(opts.method)) {
    if (opts.bits === undefined)
      throw new CompressionError("compress.usage", `--method ${opts.method} needs --bits (integer bit width)`);
    if (opts.method === "gptq" && !opts.calibration)
      throw new CompressionError("compress.usage", "--method gptq needs calibration text (--calib)");
    if ((opts.weighting ?? "none") !== "none" || (opts.assignment ?? "nearest") !== "nearest")
      throw new CompressionError(
        "compress.usage",
        `weighting and assignment are codebook options: not with --method ${opts.method}`,
      );
    validateRtn(opts.bits, opts.groupSize ?? 128);
  } else if (opts.method === "cluscomp" || kind) {
    if (opts.rank !== undefined && opts.method !== "reallm")
      throw new CompressionError("compress.usage", "--rank is ReALLM's low-rank part: it needs --method reallm");
    if (opts.salient !== undefined && opts.method !== "llm-codebook")
      throw new CompressionError("compress.usage", "--salient is LLM-Codebook's: it needs --method llm-codebook");
    if (kind) {
      if (opts.bits === undefined)
        throw new CompressionError(
          "compress.usage",
          `--method ${opts.method} needs --bits (a target bpw, its ${kind === "lowrank" ? "low-rank parts" : "salient channels"} included)`,
        );
      if ((opts.codebooks ?? 1) > 1)
        throw new CompressionError(
          "compress.usage",
          `--method ${opts.method} uses one codebook per matrix (--codebooks 1)`,
        );
      if (kind === "salient" && (opts.weighting !== "hessian" || !opts.calibration))
        throw new CompressionError(
          "compress.usage",
          "--method llm-codebook is Hessian-weighted k-means: it needs --weighting hessian and calibration text (--calib)",
        );
      const n = fixedSide(opts);
      if (n !== undefined) {
        if (!Number.isInteger(n) || n < 1)
          throw new CompressionError(
            "compress.side",
            `--${kind === "lowrank" ? "rank" : "salient"} must be an integer ≥ 1, got ${n}`,
          );
        plan = sidePlan(cfg, opts, kind, fixedSizes(kind, mats, n));
      } else if (!SIDE_SHARES[kind].some((f) => tryPlan(cfg, opts, kind, shareSizes(kind, mats, opts.bits!, f))))
        plan = resolvePlan(cfg, opts); // no share plans: let the planner's own error speak
    } else plan = resolvePlan(cfg, opts);
    if ((opts.weighting ?? "none") !== "none" || (opts.assignment ?? "nearest") !== "nearest") {
      if (!opts.calibration)
        throw new CompressionError("compress.usage", "Hessian weighting and GPTQ assignment need calibration text");
      if (!WEIGHTINGS.includes(opts.weighting ?? "none") || !ASSIGNMENTS.includes(opts.assignment ?? "nearest"))
        throw new CompressionError("compress.usage", `unknown weighting or assignment`);
      if (opts.assignment === "gptq" && (opts.codebooks ?? 1) > 1)
        throw new CompressionError("compress.usage", "GPTQ assignment needs one codebook per matrix (--codebooks 1)");
    }
    // a side part without a fixed size plans once its share is chosen (after the probes, below)
    const n = fixedSide(opts);
    if (!kind) onPlan?.(plan);
    else if (n !== undefined) onPlan?.(plan, sideSummary(kind, mats, fixedSizes(kind, mats, n)));
  } else {
    throw new CompressionError(
      "compress.method",
      `unknown --method "${String(opts.method)}" (${COMPRESS_METHODS.join(" | ")})`,
    );
  }

  const fingerprint = modelFingerprint(srcDir);
  const source = openCheckpoint(srcDir);
  try {
    checkCheckpoint(cfg, source, { allowUnused: opts.allowUnusedTensors });
    const weighting = opts.weighting ?? "none";
    const assignment = opts.assignment ?? "nearest";
    const calibrated = opts.method === "gptq" || weighting !== "none" || assignment !== "nearest";
    // block by block needs every codebook inside one block (share none or block)
    // (share none or block: every codebook inside one block; the plan itself may not exist yet, see the probes)
    const sequential = calibrated && (isScalarMethod(opts.method) || (opts.share ?? defaultShare(opts)) !== "model");
    const hessianInputs = opts.hessianInputs ?? DEFAULT_HESSIAN_INPUTS;
    if (!HESSIAN_INPUTS.includes(hessianInputs))
      throw new CompressionError("compress.usage", `unknown Hessian inputs "${String(hessianInputs)}"`);
    if (hessianInputs === "compressed" && !sequential)
      throw new CompressionError(
        "compress.usage",
        "Hessians from the compressed blocks' inputs need calibration statistics and codebooks inside one block (--share none or block)",
      );
    const full = assignment === "gptq" || opts.method === "gptq";
    // whole-model statistics from the full-precision inputs: --share model, and the side-part probes (diagonal)
    const wholeStats = async (withHessians: boolean) => ({
      map: await inputStatistics(backend, srcDir, opts.calibration!, withHessians, opts),
      weighting,
      assignment,
    });
    const stats = calibrated && !isScalarMethod(opts.method) && !sequential ? await wholeStats(full) : undefined;
    let side: SideFit | undefined;
    let sideChoice: SideChoice | undefined;
    if (kind) {
      const n = fixedSide(opts);
      if (n !== undefined) side = { kind, sizes: fixedSizes(kind, mats, n), alternations: REALLM_ALTERNATIONS };
      else {
        const probeStats = stats ?? (weighting === "hessian" ? await wholeStats(false) : undefined);
        sideChoice = await chooseSideShare(backend, source, cfg, mats, opts, kind, probeStats);
        plan = sideChoice.plan;
        onPlan?.(plan, sideSummary(kind, mats, sideChoice.sizes));
        side = { kind, sizes: sideChoice.sizes, alternations: REALLM_ALTERNATIONS };
      }
    }
    const group = opts.groupSize ?? 128;
    const withScales = !isScalarMethod(opts.method) && (opts.channelScales ?? DEFAULT_CHANNEL_SCALES);
    const o = { iters, seed, centroidDtype, channelScales: withScales, onProgress };
    let result: Compressed;
    if (sequential) {
      const work = { done: 0, total: planWork(plan, iters, side?.kind === "lowrank" ? side.alternations : 0) };
      let offset = 0;
      result = await compressSequential(
        backend,
        srcDir,
        cfg,
        source,
        opts.calibration!,
        full,
        opts.method,
        hessianInputs,
        opts.onStatistics,
        async (l, map) => {
          if (isScalarMethod(opts.method)) {
            const layerMats = mats.filter((x) => x.layer === l);
            const r = await rtnModel(backend, source, layerMats, opts.bits!, group, onProgress, map, {
              offset,
              total: mats.length,
            });
            offset += layerMats.length;
            return r;
          }
          const layerPlan = plan.filter((g) => g.members[0].layer === l);
          return clusterModel(backend, source, layerPlan, { ...o, work }, { map, weighting, assignment }, side);
        },
      );
    } else if (isScalarMethod(opts.method)) {
      result = await rtnModel(backend, source, mats, opts.bits!, group, onProgress);
    } else result = await clusterModel(backend, source, plan, o, stats, side);
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
      ...(!isScalarMethod(opts.method)
        ? {
            share: resolved.share,
            centroid_dtype: centroidDtype,
            iters,
            seed,
            weighting,
            assignment,
            channel_scales: withScales,
          }
        : {}),
      ...(calibrated ? { hessian_inputs: sequential ? hessianInputs : "original" } : {}),
      ...(opts.method === "reallm"
        ? {
            alternations: REALLM_ALTERNATIONS,
            ...(opts.rank !== undefined ? { rank: opts.rank } : { rank_share: sideChoice!.share }),
          }
        : {}),
      ...(opts.method === "llm-codebook"
        ? opts.salient !== undefined
          ? { salient: opts.salient }
          : { salient_share: sideChoice!.share }
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
      ...(sideChoice ? { sideProbes: sideChoice.probes, sideShare: sideChoice.share } : {}),
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
