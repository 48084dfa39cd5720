// ClusComp stage 2: block-by-block codebook tuning. Blocks run in order 0..L-1 with two activation streams over
// the calibration windows: `fp` (inputs of the full-precision model) and `q` (inputs produced by the already
// tuned compressed blocks). For block i: target = FP block i (fp input); prediction = compressed block i (q input);
// loss = MSE; only the codebooks train (optionally the norms), with AdamW on fp32 master copies, one sequence
// per step; afterwards they are rounded to their storage dtype and both streams advance through block i.
//
// Held-out windows (the last `holdout` windows of the calibration text, never trained on) guard each block: when
// tuning raises a block's loss on them, the block keeps its stage-1 codebooks (reported as `kept: "stage1"`), so
// stage 2 never makes a block worse on text it did not fit.
//
// Memory: one FP block, one compressed block, the streams (in memory, or on disk past maxMemory) and the
// optimizer state. After each block an atomic checkpoint (tuned tensors of the block, both streams, state.json)
// lets `resume` continue from the last finished block with a result equal to an uninterrupted run.

import * as fs from "node:fs";
import * as path from "node:path";
import type { Backend, Tensor } from "../backend/backend.js";
import { CompressionError, UsageError } from "../errors.js";
import { checkOutputDir, checkWorkDir, writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import { parseQuantizationConfig } from "../io/cluscomp_format.js";
import { type ModelConfig, readModelConfig } from "../io/hf_config.js";
import {
  copyCompanionFiles,
  openCheckpoint,
  SafetensorsFile,
  type TensorSource,
  type TensorToWrite,
  writeSafetensors,
} from "../io/safetensors.js";
import { loadTokenizer } from "../io/tokenizer.js";
import {
  type DecoderLayer,
  decoderLayerForward,
  disposeLayer,
  LAYER_LINEARS,
  type LayerContext,
} from "../model/decoder_layer.js";
import { CheckpointReader } from "../model/load.js";
import { ropeInvFreq, ropeTables } from "../model/rope.js";
import { checkCheckpoint } from "../model/tensors.js";
import { type DType, fromFloat32, toFloat32 } from "../tensor/dtype.js";
import { Rng } from "../tensor/rng.js";
import { calibrationWindows, readCalibrationText } from "./calibration.js";
import { AdamW, lrAt } from "./optimizer.js";
import { ActivationStream } from "./stream.js";
import { type TrainableParam, trainableParams, trainStep } from "./trainable.js";

export interface BlockwiseOptions {
  /** Calibration text (.txt) or documents (.jsonl). */
  calib: string;
  calibSamples?: number;
  /** Held-out windows (default: max(2, ⌈calibSamples/8⌉); 0 turns the guard off). */
  calibHoldout?: number;
  /** Window length; default and cap: the model's max_position_embeddings (and 2048). */
  calibSeqlen?: number;
  /** Seeds the calibration windows and the sample order of every epoch. */
  seed?: number;
  epochs?: number;
  lr?: number;
  /**
   * Learning-rate schedule over each block's steps: "constant", or "cosine" (linear warmup over the first 10 %
   * of the steps, then a cosine decay to 0).
   */
  lrSchedule?: LrSchedule;
  weightDecay?: number;
  /** Also train the RMSNorm weights of each block. */
  trainNorms?: boolean;
  /** Bytes the activation streams may hold in memory; beyond, they live in files of the work directory. */
  maxMemory?: number;
  /** Continue from the last finished block in the work directory. */
  resume?: boolean;
  /** Accept checkpoints with tensors their config does not use (see model/tensors.ts); default: refuse. */
  allowUnusedTensors?: boolean;
  onProgress?: (p: BlockwiseProgress) => void;
}

export interface BlockwiseProgress {
  phase: "embed" | "targets" | "loss" | "train" | "advance";
  block: number;
  blocks: number;
  /** 1-based epoch during "train". */
  epoch: number;
  epochs: number;
  /** Steps (samples) done in this phase / epoch. */
  step: number;
  steps: number;
  /** Mean loss over this epoch's steps so far ("train"). */
  loss?: number;
  /** Work of the whole run in forward-pass units (a training step counts 3), done / total: for an overall ETA. */
  workDone: number;
  workTotal: number;
}

export interface BlockReport {
  block: number;
  /** Mean MSE over the training windows of the stage-1 block, and of the tuned block (after rounding). */
  lossBefore: number;
  lossAfter: number;
  /** Mean MSE over the held-out windows of the stage-1 block and of the tuned one (NaN without held-out windows). */
  heldoutBefore: number;
  heldoutTuned: number;
  /** Which codebooks the block keeps: the tuned ones, or stage 1's when tuning raised the held-out loss. */
  kept: "tuned" | "stage1";
  /** Mean training loss of each epoch. */
  epochLosses: number[];
  seconds: number;
}

export interface BlockwiseReport {
  blocks: BlockReport[];
  samples: number;
  holdout: number;
  seqlen: number;
  epochs: number;
  lr: number;
  lrSchedule: LrSchedule;
  weightDecay: number;
  trainNorms: boolean;
  streamsOnDisk: boolean;
  /** This process's time (a resumed run counts only what it did). */
  seconds: number;
}

export type LrSchedule = "constant" | "cosine";
export const LR_SCHEDULES: readonly LrSchedule[] = ["constant", "cosine"];

/** The learning rate of step `step` (1-based) of `total` under a stage-2 schedule (cosine: warmup over 10 %). */
export function scheduledLr(lr: number, schedule: LrSchedule, step: number, total: number): number {
  if (schedule === "constant") return lr;
  return lrAt(lr, "cosine", Math.max(1, Math.round(0.1 * total)), step, total);
}

export interface BlockwiseSettings {
  calib: string;
  samples: number;
  holdout: number;
  seqlen: number;
  seed: number;
  epochs: number;
  lr: number;
  lrSchedule: LrSchedule;
  weightDecay: number;
  trainNorms: boolean;
}

interface State {
  version: 2;
  options: BlockwiseSettings;
  stage1Bpw: number;
  nextBlock: number;
  blocks: BlockReport[];
}

const STATE_FILE = "state.json";
const BETAS = [0.9, 0.999] as const;
/** Held-out windows of stage 2's guard when --calib-holdout is not given: max(2, ⌈N/8⌉). */
export function defaultHoldout(samples: number): number {
  return Math.max(2, Math.ceil(samples / 8));
}

/** Default AdamW learning rate of stage 2 (the reference's 5e-3 raised the loss on short schedules; docs/results.md). */
export const DEFAULT_LR = 1e-3;
/** Default learning-rate schedule of stage 2 (docs/results.md). */
export const DEFAULT_LR_SCHEDULE: LrSchedule = "constant";
/** A training step's cost in forward passes (forward, backward ≈ 2 forwards), for the overall ETA. */
const STEP_WORK = 3;
const ADAM_EPS = 1e-8;

function fail(code: string, msg: string): never {
  throw new CompressionError(code, msg);
}

/** The options of a run with defaults filled in, validated against the model (its context caps the window). */
export function resolveBlockwiseOptions(cfg: ModelConfig, o: BlockwiseOptions): BlockwiseSettings {
  const cap = Math.min(2048, cfg.maxPositionEmbeddings);
  const r: BlockwiseSettings = {
    calib: path.resolve(o.calib),
    samples: o.calibSamples ?? 128,
    holdout: o.calibHoldout ?? defaultHoldout(o.calibSamples ?? 128),
    seqlen: o.calibSeqlen ?? cap,
    seed: o.seed ?? 0,
    epochs: o.epochs ?? 20,
    lr: o.lr ?? DEFAULT_LR,
    lrSchedule: o.lrSchedule ?? DEFAULT_LR_SCHEDULE,
    weightDecay: o.weightDecay ?? 0.1,
    trainNorms: o.trainNorms ?? false,
  };
  if (!Number.isInteger(r.samples) || r.samples < 1)
    fail("finetune.samples", `--calib-samples must be ≥ 1, got ${r.samples}`);
  if (!Number.isInteger(r.holdout) || r.holdout < 0)
    fail("finetune.holdout", `--calib-holdout must be an integer ≥ 0, got ${r.holdout}`);
  if (!Number.isInteger(r.seqlen) || r.seqlen < 1 || r.seqlen > cfg.maxPositionEmbeddings) {
    fail(
      "finetune.seqlen",
      `--calib-seqlen must be in 1..${cfg.maxPositionEmbeddings} (the model's context), got ${r.seqlen}`,
    );
  }
  if (!Number.isInteger(r.epochs) || r.epochs < 0)
    fail("finetune.epochs", `--epochs must be an integer ≥ 0, got ${r.epochs}`);
  if (!(r.lr > 0)) fail("finetune.lr", `--lr must be > 0, got ${r.lr}`);
  if (!LR_SCHEDULES.includes(r.lrSchedule))
    fail("finetune.lr_schedule", `--lr-schedule must be one of ${LR_SCHEDULES.join(", ")}, got ${r.lrSchedule}`);
  if (!(r.weightDecay >= 0)) fail("finetune.weight_decay", `--weight-decay must be ≥ 0, got ${r.weightDecay}`);
  return r;
}

/** Block-wise tuning needs every codebook inside one block (share none or block). */
function checkSharing(stage1: ModelConfig): number {
  const q = parseQuantizationConfig(stage1.raw);
  if (!q || !["cluscomp", "reallm", "llm-codebook"].includes(q.method)) {
    fail(
      "finetune.not_codebook",
      "block-wise tuning needs a codebook checkpoint (cluscomp, reallm, llm-codebook), not RTN, GPTQ or a plain model",
    );
  }
  const layerOf = new Map<string, number>();
  for (const [name, m] of Object.entries(q.modules)) {
    if (m.method !== "cluscomp") continue;
    const layer = Number(/^model\.layers\.(\d+)\./.exec(name)?.[1] ?? -1);
    const prev = layerOf.get(m.codebook);
    if (prev !== undefined && prev !== layer) {
      fail(
        "finetune.shared_codebook",
        `codebook ${m.codebook} is shared by blocks ${prev} and ${layer} (--share model): block-wise tuning would change blocks it already tuned; use --share none or block`,
      );
    }
    layerOf.set(m.codebook, layer);
  }
  return q.bpw;
}

function shuffled(n: number, seed: number, block: number, epoch: number): number[] {
  const rng = new Rng((seed * 1_000_003 + (block + 1) * 7919 + epoch) >>> 0);
  return rng.shuffle(Array.from({ length: n }, (_, i) => i));
}

/** Runs block i on sample s of a stream: y [1, T, C] on the host. */
async function runBlock(
  be: Backend,
  cfg: ModelConfig,
  layer: DecoderLayer,
  x: Float32Array,
  T: number,
  ctx: LayerContext,
): Promise<Float32Array> {
  const xt = be.upload(x.slice(), [1, T, cfg.hiddenSize]);
  const { y } = decoderLayerForward(be, cfg, layer, xt, ctx);
  be.dispose(xt);
  const out = (await be.read(y)).slice();
  be.dispose(y);
  return out;
}

function mseHost(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}

/** The stored dtype of each trainable tensor in the stage-1 checkpoint. */
function storedDtype(source: TensorSource, name: string): DType {
  const info = source.info(name);
  if (!info) fail("finetune.missing", `stage-1 checkpoint has no tensor ${name}`);
  return info.dtype;
}

/**
 * Tunes the codebooks of the stage-1 checkpoint `stage1Dir` against the full-precision model `fpDir`, block by
 * block, and writes the tuned checkpoint to `outDir` (atomically). `workDir` holds the checkpoints of a run.
 */
export async function finetuneBlockwise(
  be: Backend,
  fpDir: string,
  stage1Dir: string,
  outDir: string,
  workDir: string,
  opts: BlockwiseOptions,
): Promise<BlockwiseReport> {
  const t0 = performance.now();
  const cfg = readModelConfig(fpDir);
  const stage1Cfg = readModelConfig(stage1Dir);
  const stage1Bpw = checkSharing(stage1Cfg);
  if (parseQuantizationConfig(cfg.raw)) {
    fail("finetune.fp_quantized", `${fpDir} is itself compressed; give the original full-precision model as --model`);
  }
  const geometry = (c: ModelConfig) =>
    [
      c.hiddenSize,
      c.numHiddenLayers,
      c.intermediateSize,
      c.numAttentionHeads,
      c.numKeyValueHeads,
      c.headDim,
      c.vocabSize,
    ].join(",");
  if (geometry(cfg) !== geometry(stage1Cfg)) {
    fail("finetune.mismatch", `${stage1Dir} is not a compressed ${fpDir}: their configs describe different shapes`);
  }
  const o = resolveBlockwiseOptions(cfg, opts);
  for (const [dir, c] of [
    [fpDir, cfg],
    [stage1Dir, stage1Cfg],
  ] as const) {
    const src = openCheckpoint(dir);
    try {
      checkCheckpoint(c, src, { allowUnused: opts.allowUnusedTensors });
    } finally {
      src.close();
    }
  }
  outDir = checkOutputDir(outDir).dir;
  checkWorkDir(workDir);
  const L = cfg.numHiddenLayers;
  const C = cfg.hiddenSize;
  const T = o.seqlen;
  const S = o.samples;
  // streams hold the S training windows, then the H held-out ones
  const W = S + o.holdout;
  const elems = T * C;
  const streamBytes = W * elems * 4;
  const inMemory = 4 * streamBytes <= (opts.maxMemory ?? 2 ** 31);
  const streamFile = (kind: "fp" | "q", block: number) => path.join(workDir, `${kind}-${block}.f32`);
  const stateFile = path.join(workDir, STATE_FILE);
  // work in forward passes: embedding (1 per window, cheap, counted 0), then per block targets, losses before,
  // training, losses after and the advance of the q stream
  const blockWork = 3 * W + o.holdout + STEP_WORK * o.epochs * S;
  const workTotal = L * blockWork;
  let workDone = 0;
  const emit = opts.onProgress ?? (() => {});
  const progress = (p: Omit<BlockwiseProgress, "workDone" | "workTotal">, work = 0) => {
    workDone += work;
    emit({ ...p, workDone, workTotal });
  };

  let state: State;
  if (opts.resume && fs.existsSync(stateFile)) {
    state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as State;
    if (state.version !== 2 || JSON.stringify(state.options) !== JSON.stringify(o) || state.stage1Bpw !== stage1Bpw) {
      throw new UsageError(
        "finetune.resume_mismatch",
        `${workDir} holds a run with other settings (${JSON.stringify(state.options)}); resume with the same options or delete it`,
      );
    }
    workDone = state.nextBlock * blockWork;
  } else {
    if (fs.existsSync(stateFile)) {
      throw new UsageError(
        "finetune.work_exists",
        `${workDir} holds an unfinished run; pass --resume to continue it or delete the directory`,
      );
    }
    const tokenizer = loadTokenizer(fpDir);
    const { train, heldout } = calibrationWindows(readCalibrationText(o.calib), tokenizer, {
      samples: S,
      holdout: o.holdout,
      seqlen: T,
      seed: o.seed,
    });
    const windows = [...train, ...heldout];
    fs.mkdirSync(workDir, { recursive: true });
    const fpSource = openCheckpoint(fpDir);
    try {
      const table = fpSource.readFloat32("model.embed_tokens.weight");
      const fp0 = ActivationStream.create(streamFile("fp", 0), W, elems, inMemory);
      const x = new Float32Array(elems);
      windows.forEach((ids, s) => {
        for (let t = 0; t < T; t++) x.set(table.subarray(ids[t] * C, (ids[t] + 1) * C), t * C);
        fp0.write(s, x);
        progress({ phase: "embed", block: 0, blocks: L, epoch: 0, epochs: o.epochs, step: s + 1, steps: W });
      });
      fp0.persist();
      fp0.close();
      fs.copyFileSync(streamFile("fp", 0), streamFile("q", 0));
    } finally {
      fpSource.close();
    }
    state = { version: 2, options: o, stage1Bpw, nextBlock: 0, blocks: [] };
    writeFileAtomic(stateFile, `${JSON.stringify(state, null, 2)}\n`);
  }

  const invFreq = ropeInvFreq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling);
  const tables = ropeTables(invFreq, T);
  const ctx: LayerContext = {
    cos: be.upload(tables.cos, [T, cfg.headDim / 2]),
    sin: be.upload(tables.sin, [T, cfg.headDim / 2]),
    past: 0,
  };
  const fpSource = openCheckpoint(fpDir);
  const qSource = openCheckpoint(stage1Dir);
  try {
    const fpReader = new CheckpointReader(be, cfg, fpSource);
    const qReader = new CheckpointReader(be, stage1Cfg, qSource);
    for (let i = state.nextBlock; i < L; i++) {
      const tb = performance.now();
      const prefix = `model.layers.${i}`;
      const at = (phase: BlockwiseProgress["phase"], step: number, steps: number, epoch = 0, loss?: number) => ({
        phase,
        block: i,
        blocks: L,
        epoch,
        epochs: o.epochs,
        step,
        steps,
        loss,
      });
      const fpIn = ActivationStream.open(streamFile("fp", i), W, elems, inMemory);
      const qIn = ActivationStream.open(streamFile("q", i), W, elems, inMemory);
      const targets = ActivationStream.create(streamFile("fp", i + 1), W, elems, inMemory);

      const fpLayer = fpReader.layer(i);
      for (let s = 0; s < W; s++) {
        targets.write(s, await runBlock(be, cfg, fpLayer, fpIn.read(s), T, ctx));
        progress(at("targets", s + 1, W), 1);
      }
      disposeLayer(be, fpLayer);
      fpIn.close();

      // mean MSE of the layer over windows [from, to) of the q stream against the targets
      const meanLoss = async (
        layer: DecoderLayer,
        from: number,
        to: number,
        onWindow?: (s: number, y: Float32Array) => void,
      ) => {
        let sum = 0;
        for (let s = from; s < to; s++) {
          const y = await runBlock(be, cfg, layer, qIn.read(s), T, ctx);
          sum += mseHost(y, targets.read(s));
          onWindow?.(s, y);
        }
        return to > from ? sum / (to - from) : Number.NaN;
      };
      const layer = qReader.layer(i);
      const params = trainableParams(layer, prefix, o.trainNorms);
      const lossBefore = await meanLoss(layer, 0, S);
      const heldoutBefore = await meanLoss(layer, S, W);
      if (!Number.isFinite(lossBefore) || (o.holdout > 0 && !Number.isFinite(heldoutBefore))) {
        fail(
          "finetune.non_finite",
          `block ${i + 1}: the stage-1 block's output is not finite on the calibration windows`,
        );
      }
      progress(at("loss", W, W), W);
      const epochLosses = await trainBlock(be, cfg, layer, params, qIn, targets, ctx, o, i, (p) =>
        progress(at("train", p.step, p.steps, p.epoch, p.loss), STEP_WORK),
      );
      let tuned = await roundToStorage(be, layer, params, qSource);
      const heldoutTuned = await meanLoss(layer, S, W);
      progress(at("loss", W, W, o.epochs), o.holdout);
      // the guard: tuning that raised the held-out loss is undone (the stage-1 tensors are what qSource holds)
      const kept: BlockReport["kept"] = !(heldoutTuned <= heldoutBefore) && o.holdout > 0 ? "stage1" : "tuned";
      if (kept === "stage1") tuned = restoreStage1(be, layer, params, qSource);

      const qOut = ActivationStream.create(streamFile("q", i + 1), W, elems, inMemory);
      const advance = (s: number, y: Float32Array) => {
        qOut.write(s, y);
        progress(at("advance", s + 1, W, o.epochs), 1);
      };
      const lossAfter = await meanLoss(layer, 0, S, advance);
      await meanLoss(layer, S, W, advance);
      if (!Number.isFinite(lossAfter)) {
        fail(
          "finetune.non_finite",
          `block ${i + 1}: the tuned block's output is not finite (its codebooks overflowed their dtype); try a lower --lr`,
        );
      }
      qIn.close();

      // checkpoint: tuned tensors of block i, both streams of block i+1, then state.json (the commit point)
      writeSafetensors(path.join(workDir, `block-${i}.safetensors`), tuned);
      targets.persist();
      qOut.persist();
      targets.close();
      qOut.close();
      disposeLayer(be, layer);
      state.blocks.push({
        block: i,
        lossBefore,
        lossAfter,
        heldoutBefore,
        heldoutTuned,
        kept,
        epochLosses,
        seconds: (performance.now() - tb) / 1000,
      });
      state.nextBlock = i + 1;
      writeFileAtomic(stateFile, `${JSON.stringify(state, null, 2)}\n`);
      fs.rmSync(streamFile("fp", i), { force: true });
      fs.rmSync(streamFile("q", i), { force: true });
    }
    await writeTuned(stage1Dir, qSource, workDir, outDir, state);
  } finally {
    fpSource.close();
    qSource.close();
    be.dispose(ctx.cos);
    be.dispose(ctx.sin);
  }
  fs.rmSync(workDir, { recursive: true, force: true });
  return {
    blocks: state.blocks,
    samples: o.samples,
    holdout: o.holdout,
    seqlen: T,
    epochs: o.epochs,
    lr: o.lr,
    lrSchedule: o.lrSchedule,
    weightDecay: o.weightDecay,
    trainNorms: o.trainNorms,
    streamsOnDisk: !inMemory,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** AdamW over the block's trainable tensors, one calibration window per step; returns each epoch's mean loss. */
async function trainBlock(
  be: Backend,
  cfg: ModelConfig,
  layer: DecoderLayer,
  params: TrainableParam[],
  qIn: ActivationStream,
  targets: ActivationStream,
  ctx: LayerContext,
  o: BlockwiseSettings,
  block: number,
  progress: (p: { epoch: number; step: number; steps: number; loss: number }) => void,
): Promise<number[]> {
  const T = o.seqlen;
  const C = cfg.hiddenSize;
  const opt = new AdamW(be, params, { beta1: BETAS[0], beta2: BETAS[1], eps: ADAM_EPS, weightDecay: o.weightDecay });
  const epochLosses: number[] = [];
  let step = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    let sum = 0;
    const order = shuffled(o.samples, o.seed, block, epoch);
    for (let k = 0; k < order.length; k++) {
      const s = order[k];
      const x = be.upload(qIn.read(s).slice(), [1, T, C]);
      const target = be.upload(targets.read(s).slice(), [1, T, C]);
      step++;
      const lr = scheduledLr(o.lr, o.lrSchedule, step, o.epochs * o.samples);
      const loss = await trainStep(be, cfg, layer, opt, x, target, ctx, lr, step);
      if (!Number.isFinite(loss)) {
        fail(
          "finetune.non_finite",
          `block ${block + 1}, epoch ${epoch + 1}, step ${k + 1} (calibration window ${s}): the loss is ${loss}; nothing of this block was kept — try a lower --lr`,
        );
      }
      sum += loss;
      be.dispose(x);
      be.dispose(target);
      progress({ epoch: epoch + 1, step: k + 1, steps: order.length, loss: sum / (k + 1) });
    }
    epochLosses.push(sum / order.length);
  }
  opt.dispose();
  return epochLosses;
}

/** f32 values encoded in a checkpoint dtype (F32, F16 or BF16). */
function encode(dtype: DType, values: Float32Array): ArrayBufferView {
  if (dtype === "F32") return values.slice();
  if (dtype === "F16" || dtype === "BF16") return fromFloat32(dtype, values);
  return fail("finetune.dtype", `cannot store a trained tensor as ${dtype} (F32, F16 or BF16 only)`);
}

/**
 * Puts `t` in the layer wherever `p.tensor` was (codebook of any linear, a low-rank factor, a norm) and frees the
 * old tensor.
 */
function replaceParam(be: Backend, layer: DecoderLayer, p: TrainableParam, t: Tensor): void {
  for (const [, key] of LAYER_LINEARS) {
    const lin = layer[key];
    if (lin.kind === "codebook" && lin.codebooks === p.tensor) lin.codebooks = t;
    if (lin.kind === "codebook" && lin.channelScale === p.tensor) lin.channelScale = t;
    if (lin.lowrank?.A === p.tensor) lin.lowrank.A = t;
    if (lin.lowrank?.B === p.tensor) lin.lowrank.B = t;
  }
  if (layer.inputLayernorm === p.tensor) layer.inputLayernorm = t;
  if (layer.postAttentionLayernorm === p.tensor) layer.postAttentionLayernorm = t;
  be.dispose(p.tensor);
  p.tensor = t;
}

/**
 * Rounds each trained tensor to its stored dtype (fp16 codebooks, the norms' dtype), as the checkpoint will hold
 * it, so the q stream continues from exactly what is saved. Returns the encoded tensors for the checkpoint.
 */
async function roundToStorage(
  be: Backend,
  layer: DecoderLayer,
  params: TrainableParam[],
  source: TensorSource,
): Promise<TensorToWrite[]> {
  const out: TensorToWrite[] = [];
  for (const p of params) {
    const dtype = storedDtype(source, p.name);
    const data = encode(dtype, await be.read(p.tensor));
    const rounded = dtype === "F32" ? (data as Float32Array) : toFloat32(dtype, data as Uint16Array);
    replaceParam(be, layer, p, be.upload(rounded.slice(), p.tensor.shape));
    out.push({ name: p.name, dtype, shape: p.tensor.shape, data });
  }
  return out;
}

/** Puts the stage-1 values of every trainable tensor back into the layer; returns them as stored. */
function restoreStage1(
  be: Backend,
  layer: DecoderLayer,
  params: TrainableParam[],
  source: TensorSource,
): TensorToWrite[] {
  return params.map((p) => {
    const info = source.info(p.name)!;
    replaceParam(be, layer, p, be.upload(source.readFloat32(p.name), p.tensor.shape));
    return { name: p.name, dtype: info.dtype, shape: info.shape, data: source.readRaw(p.name) };
  });
}

/** What config.json's quantization_config.finetune records of a run's settings. */
export function finetuneRecord(o: BlockwiseSettings): Record<string, unknown> {
  return {
    method: "blockwise",
    calib: path.basename(o.calib),
    calib_samples: o.samples,
    calib_holdout: o.holdout,
    calib_seqlen: o.seqlen,
    seed: o.seed,
    epochs: o.epochs,
    lr: o.lr,
    lr_schedule: o.lrSchedule,
    weight_decay: o.weightDecay,
    train_norms: o.trainNorms,
  };
}

/** The output checkpoint: the stage-1 directory with every tuned tensor replaced, written atomically. */
async function writeTuned(
  stage1Dir: string,
  source: TensorSource,
  workDir: string,
  outDir: string,
  state: State,
): Promise<void> {
  const tuned = new Map<string, TensorToWrite>();
  const blockFiles = state.blocks.map((b) => SafetensorsFile.open(path.join(workDir, `block-${b.block}.safetensors`)));
  try {
    for (const f of blockFiles) {
      for (const name of f.names()) {
        const info = f.info(name)!;
        tuned.set(name, { name, dtype: info.dtype, shape: info.shape, data: () => f.readRaw(name) });
      }
    }
    const tensors: TensorToWrite[] = source
      .names()
      .sort()
      .map((n) => {
        const t = tuned.get(n);
        if (t) return t;
        const info = source.info(n)!;
        return { name: n, dtype: info.dtype, shape: info.shape, data: () => source.readRaw(n) };
      });
    await writeDirAtomic(outDir, (dir) => {
      writeSafetensors(path.join(dir, "model.safetensors"), tensors, { format: "pt", cluscomp: "1" });
      const raw = readModelConfig(stage1Dir).raw;
      const qc = raw.quantization_config as Record<string, unknown>;
      const finetune = finetuneRecord(state.options);
      const config = { ...raw, quantization_config: { ...qc, finetune } };
      writeFileAtomic(path.join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
      copyCompanionFiles(stage1Dir, dir, ["cluscomp.json"]);
      const recordFile = path.join(stage1Dir, "cluscomp.json");
      if (fs.existsSync(recordFile)) {
        const record = {
          ...(JSON.parse(fs.readFileSync(recordFile, "utf8")) as object),
          finetune: { ...finetune, blocks: state.blocks },
        };
        writeFileAtomic(path.join(dir, "cluscomp.json"), `${JSON.stringify(record, null, 2)}\n`);
      }
    });
  } finally {
    for (const f of blockFiles) f.close();
  }
}
