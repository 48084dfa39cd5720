// ClusComp stage 2: block-by-block codebook tuning. Blocks run in order 0..L-1 with two activation streams over
// the calibration windows: `fp` (inputs of the full-precision model) and `q` (inputs produced by the already
// tuned compressed blocks). For block i: target = FP block i (fp input); prediction = compressed block i (q input);
// loss = MSE; only the codebooks train (optionally the norms), with AdamW on fp32 master copies, one sequence
// per step; afterwards they are rounded to their storage dtype and both streams advance through block i.
//
// Memory: one FP block, one compressed block, the streams (in memory, or on disk past maxMemory) and the
// optimizer state. After each block an atomic checkpoint (tuned tensors of the block, both streams, state.json)
// lets `resume` continue from the last finished block with a result equal to an uninterrupted run.

import * as fs from "node:fs";
import * as path from "node:path";
import type { Backend, Tensor } from "../backend/backend.js";
import { checkOutputDir } from "../compress/compress.js";
import { CompressionError } from "../errors.js";
import { writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
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
import { type DecoderLayer, decoderLayerForward, LAYER_LINEARS, type LayerContext } from "../model/decoder_layer.js";
import { linearTensors } from "../model/linear.js";
import { CheckpointReader } from "../model/load.js";
import { ropeInvFreq, ropeTables } from "../model/rope.js";
import { type DType, fromFloat32, toFloat32 } from "../tensor/dtype.js";
import { Rng } from "../tensor/rng.js";
import { calibrationWindows, readCalibrationText } from "./calibration.js";
import { ActivationStream } from "./stream.js";
import { adamMoments, type TrainableParam, trainableParams, trainStep } from "./trainable.js";

export interface BlockwiseOptions {
  /** Calibration text (.txt) or documents (.jsonl). */
  calib: string;
  calibSamples?: number;
  /** Window length; default and cap: the model's max_position_embeddings (and 2048). */
  calibSeqlen?: number;
  /** Seeds the calibration windows and the sample order of every epoch. */
  seed?: number;
  epochs?: number;
  lr?: number;
  weightDecay?: number;
  /** Also train the RMSNorm weights of each block. */
  trainNorms?: boolean;
  /** Bytes the activation streams may hold in memory; beyond, they live in files of the work directory. */
  maxMemory?: number;
  /** Continue from the last finished block in the work directory. */
  resume?: boolean;
  onProgress?: (p: BlockwiseProgress) => void;
}

export interface BlockwiseProgress {
  phase: "embed" | "targets" | "train" | "advance";
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
}

export interface BlockReport {
  block: number;
  /** Mean MSE over the calibration windows of the stage-1 block, and of the tuned block (after rounding). */
  lossBefore: number;
  lossAfter: number;
  /** Mean training loss of each epoch. */
  epochLosses: number[];
  seconds: number;
}

export interface BlockwiseReport {
  blocks: BlockReport[];
  samples: number;
  seqlen: number;
  epochs: number;
  lr: number;
  weightDecay: number;
  trainNorms: boolean;
  streamsOnDisk: boolean;
  /** This process's time (a resumed run counts only what it did). */
  seconds: number;
}

interface Resolved {
  calib: string;
  samples: number;
  seqlen: number;
  seed: number;
  epochs: number;
  lr: number;
  weightDecay: number;
  trainNorms: boolean;
}

interface State {
  version: 1;
  options: Resolved;
  stage1Bpw: number;
  nextBlock: number;
  blocks: BlockReport[];
}

const STATE_FILE = "state.json";
const BETAS = [0.9, 0.999] as const;
const ADAM_EPS = 1e-8;

function fail(code: string, msg: string): never {
  throw new CompressionError(code, msg);
}

function resolveOptions(cfg: ModelConfig, o: BlockwiseOptions): Resolved {
  const cap = Math.min(2048, cfg.maxPositionEmbeddings);
  const r: Resolved = {
    calib: path.resolve(o.calib),
    samples: o.calibSamples ?? 128,
    seqlen: o.calibSeqlen ?? cap,
    seed: o.seed ?? 0,
    epochs: o.epochs ?? 20,
    lr: o.lr ?? 5e-3,
    weightDecay: o.weightDecay ?? 0.1,
    trainNorms: o.trainNorms ?? false,
  };
  if (!Number.isInteger(r.samples) || r.samples < 1)
    fail("finetune.samples", `--calib-samples must be ≥ 1, got ${r.samples}`);
  if (!Number.isInteger(r.seqlen) || r.seqlen < 1 || r.seqlen > cfg.maxPositionEmbeddings) {
    fail(
      "finetune.seqlen",
      `--calib-seqlen must be in 1..${cfg.maxPositionEmbeddings} (the model's context), got ${r.seqlen}`,
    );
  }
  if (!Number.isInteger(r.epochs) || r.epochs < 0)
    fail("finetune.epochs", `--epochs must be an integer ≥ 0, got ${r.epochs}`);
  if (!(r.lr > 0)) fail("finetune.lr", `--lr must be > 0, got ${r.lr}`);
  if (!(r.weightDecay >= 0)) fail("finetune.weight_decay", `--weight-decay must be ≥ 0, got ${r.weightDecay}`);
  return r;
}

/** Block-wise tuning needs every codebook inside one block (share none or block). */
function checkSharing(stage1: ModelConfig): number {
  const q = parseQuantizationConfig(stage1.raw);
  if (q?.method !== "cluscomp") {
    fail(
      "finetune.not_codebook",
      "block-wise tuning needs a cluscomp (k-means codebook) checkpoint, not RTN or a plain model",
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
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

function disposeLayer(be: Backend, layer: DecoderLayer): void {
  const all = new Set<Tensor>([layer.inputLayernorm, layer.postAttentionLayernorm]);
  for (const [, key] of LAYER_LINEARS) for (const t of linearTensors(layer[key])) all.add(t);
  for (const t of all) be.dispose(t);
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
  const o = resolveOptions(cfg, opts);
  checkOutputDir(outDir);
  const L = cfg.numHiddenLayers;
  const C = cfg.hiddenSize;
  const T = o.seqlen;
  const elems = T * C;
  const streamBytes = o.samples * elems * 4;
  const inMemory = 4 * streamBytes <= (opts.maxMemory ?? 2 ** 31);
  const progress = opts.onProgress ?? (() => {});
  const streamFile = (kind: "fp" | "q", block: number) => path.join(workDir, `${kind}-${block}.f32`);
  const stateFile = path.join(workDir, STATE_FILE);

  let state: State;
  if (opts.resume && fs.existsSync(stateFile)) {
    state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as State;
    if (JSON.stringify(state.options) !== JSON.stringify(o) || state.stage1Bpw !== stage1Bpw) {
      fail(
        "finetune.resume_mismatch",
        `${workDir} holds a run with other settings (${JSON.stringify(state.options)}); resume with the same options or delete it`,
      );
    }
  } else {
    if (fs.existsSync(stateFile)) {
      fail(
        "finetune.work_exists",
        `${workDir} holds an unfinished run; pass --resume to continue it or delete the directory`,
      );
    }
    const tokenizer = loadTokenizer(fpDir);
    const windows = calibrationWindows(readCalibrationText(o.calib), tokenizer, {
      samples: o.samples,
      seqlen: T,
      seed: o.seed,
    });
    fs.mkdirSync(workDir, { recursive: true });
    const fpSource = openCheckpoint(fpDir);
    try {
      const table = fpSource.readFloat32("model.embed_tokens.weight");
      const fp0 = ActivationStream.create(streamFile("fp", 0), o.samples, elems, inMemory);
      const x = new Float32Array(elems);
      windows.forEach((ids, s) => {
        for (let t = 0; t < T; t++) x.set(table.subarray(ids[t] * C, (ids[t] + 1) * C), t * C);
        fp0.write(s, x);
        progress({ phase: "embed", block: 0, blocks: L, epoch: 0, epochs: o.epochs, step: s + 1, steps: o.samples });
      });
      fp0.persist();
      fp0.close();
      fs.copyFileSync(streamFile("fp", 0), streamFile("q", 0));
    } finally {
      fpSource.close();
    }
    state = { version: 1, options: o, stage1Bpw, nextBlock: 0, blocks: [] };
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
      const fpIn = ActivationStream.open(streamFile("fp", i), o.samples, elems, inMemory);
      const qIn = ActivationStream.open(streamFile("q", i), o.samples, elems, inMemory);
      const targets = ActivationStream.create(streamFile("fp", i + 1), o.samples, elems, inMemory);

      const fpLayer = fpReader.layer(i);
      for (let s = 0; s < o.samples; s++) {
        targets.write(s, await runBlock(be, cfg, fpLayer, fpIn.read(s), T, ctx));
        progress({ phase: "targets", block: i, blocks: L, epoch: 0, epochs: o.epochs, step: s + 1, steps: o.samples });
      }
      disposeLayer(be, fpLayer);
      fpIn.close();

      const layer = qReader.layer(i);
      const params = trainableParams(layer, prefix, o.trainNorms);
      let lossBefore = 0;
      for (let s = 0; s < o.samples; s++) {
        lossBefore += mseHost(await runBlock(be, cfg, layer, qIn.read(s), T, ctx), targets.read(s)) / o.samples;
      }
      const epochLosses = await trainBlock(be, cfg, layer, params, qIn, targets, ctx, o, i, L, progress);
      const tuned = await roundToStorage(be, layer, params, qSource);

      const qOut = ActivationStream.create(streamFile("q", i + 1), o.samples, elems, inMemory);
      let lossAfter = 0;
      for (let s = 0; s < o.samples; s++) {
        const y = await runBlock(be, cfg, layer, qIn.read(s), T, ctx);
        lossAfter += mseHost(y, targets.read(s)) / o.samples;
        qOut.write(s, y);
        progress({
          phase: "advance",
          block: i,
          blocks: L,
          epoch: o.epochs,
          epochs: o.epochs,
          step: s + 1,
          steps: o.samples,
        });
      }
      qIn.close();

      // checkpoint: tuned tensors of block i, both streams of block i+1, then state.json (the commit point)
      writeSafetensors(path.join(workDir, `block-${i}.safetensors`), tuned);
      targets.persist();
      qOut.persist();
      targets.close();
      qOut.close();
      disposeLayer(be, layer);
      state.blocks.push({ block: i, lossBefore, lossAfter, epochLosses, seconds: (performance.now() - tb) / 1000 });
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
    seqlen: T,
    epochs: o.epochs,
    lr: o.lr,
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
  o: Resolved,
  block: number,
  blocks: number,
  progress: (p: BlockwiseProgress) => void,
): Promise<number[]> {
  const T = o.seqlen;
  const C = cfg.hiddenSize;
  const moments = adamMoments(be, params);
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
      const hp = { lr: o.lr, beta1: BETAS[0], beta2: BETAS[1], eps: ADAM_EPS, weightDecay: o.weightDecay, step };
      sum += await trainStep(be, cfg, layer, params, moments, x, target, ctx, hp);
      be.dispose(x);
      be.dispose(target);
      progress({
        phase: "train",
        block,
        blocks,
        epoch: epoch + 1,
        epochs: o.epochs,
        step: k + 1,
        steps: order.length,
        loss: sum / (k + 1),
      });
    }
    epochLosses.push(sum / order.length);
  }
  for (const mv of moments) {
    be.dispose(mv.m);
    be.dispose(mv.v);
  }
  return epochLosses;
}

/** f32 values encoded in a checkpoint dtype (F32, F16 or BF16). */
function encode(dtype: DType, values: Float32Array): ArrayBufferView {
  if (dtype === "F32") return values.slice();
  if (dtype === "F16" || dtype === "BF16") return fromFloat32(dtype, values);
  return fail("finetune.dtype", `cannot store a trained tensor as ${dtype} (F32, F16 or BF16 only)`);
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
    const t = be.upload(rounded.slice(), p.tensor.shape);
    for (const [, key] of LAYER_LINEARS) {
      const lin = layer[key];
      if (lin.kind === "codebook" && lin.codebooks === p.tensor) lin.codebooks = t;
    }
    if (layer.inputLayernorm === p.tensor) layer.inputLayernorm = t;
    if (layer.postAttentionLayernorm === p.tensor) layer.postAttentionLayernorm = t;
    be.dispose(p.tensor);
    p.tensor = t;
    out.push({ name: p.name, dtype, shape: t.shape, data });
  }
  return out;
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
      const o = state.options;
      const finetune = {
        method: "blockwise",
        calib: path.basename(o.calib),
        calib_samples: o.samples,
        calib_seqlen: o.seqlen,
        seed: o.seed,
        epochs: o.epochs,
        lr: o.lr,
        weight_decay: o.weightDecay,
        train_norms: o.trainNorms,
      };
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
