// End-to-end training (`cluscomp train`): a model — dense, ClusComp or RTN — trained on a dataset with
// cross-entropy and/or distillation from a teacher, its chosen sets (codebooks, norms, LoRA, all) updated by AdamW
// with gradient accumulation, global-norm clipping and a warmup + decay schedule, in a seeded example order.
//
// Resumable: every `checkpointEvery` steps the trained tensors, the optimizer's moments and the step go to
// OUT.work (state.json last: the commit point); `resume` continues from there, and since the example order is a
// function of (seed, step) and every op is deterministic, the final output has the bytes of an uninterrupted run.
// Outputs (atomic): a LoRA adapter in PEFT's layout (or, with `merge`, a dense model with the adapters folded in);
// otherwise the model's checkpoint with its trained tensors replaced in their stored dtype. Beside it `train.json`:
// the resolved options and the report.

import * as fs from "node:fs";
import * as path from "node:path";
import type { Backend, Tensor } from "../backend/backend.js";
import { ModelError, UsageError } from "../errors.js";
import { perplexity } from "../eval/perplexity.js";
import { checkOutputDir, checkWorkDir, writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import { parseQuantizationConfig } from "../io/cluscomp_format.js";
import { JSON_LIMITS, readJsonFile } from "../io/files.js";
import { readModelConfig } from "../io/hf_config.js";
import {
  copyCompanionFiles,
  INDEX_FILE,
  openCheckpoint,
  SafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
} from "../io/safetensors.js";
import { readTextFile } from "../io/text.js";
import { loadTokenizer } from "../io/tokenizer.js";
import { LAYER_LINEARS } from "../model/decoder_layer.js";
import { denseWeight, linearWeight } from "../model/linear.js";
import type { LlamaModel } from "../model/llama.js";
import { loadModel } from "../model/load.js";
import { type DType, fromFloat32 } from "../tensor/dtype.js";
import { epochOrder, padBatch, readDataset } from "./data.js";
import { batchGradients } from "./gradients.js";
import { ADAPTER_CONFIG, adapterWriter, attachLora, type LoraSettings, mergeLora, saveAdapter } from "./lora.js";
import type { LossSpec } from "./losses.js";
import { ADAMW_DEFAULTS, AdamW, clipGradients, lrAt, type Schedule } from "./optimizer.js";
import { GradAccumulator, modelTrainableParams, paramSet, type TrainableParam, type TrainSet } from "./trainable.js";

export interface TrainOptions {
  /** The training data file (train/data.ts formats). */
  data: string;
  sets: TrainSet[];
  loss: LossSpec;
  /** The teacher model directory (for kd, kd+ce). */
  teacher?: string;
  lora?: LoraSettings;
  /** Fold the adapters into a dense model instead of writing an adapter. */
  merge?: boolean;
  lr: number;
  schedule: Schedule;
  /** Linear warmup steps (default min(10, 10 % of the steps)). */
  warmup?: number;
  /** Epochs over the data (ignored when maxSteps is given). */
  epochs: number;
  maxSteps?: number;
  batchSize: number;
  gradAccum: number;
  /** Window / longest example (default: min(2048, the model's context)). */
  seqlen?: number;
  /** Global-norm clipping threshold (0 = off). */
  clip: number;
  weightDecay: number;
  seed: number;
  /** Held-out perplexity: a text file, evaluated before, every evalEvery steps and after. */
  evalData?: string;
  evalEvery?: number;
  evalWindows?: number;
  /** Checkpoint every N steps into OUT.work (0 = only at the end). */
  checkpointEvery?: number;
  resume?: boolean;
  /** Positions of logits computed at a time. */
  chunk?: number;
  /** Keep every layer's activations instead of recomputing them in the backward: faster, more memory. */
  keepActivations?: boolean;
  allowUnusedTensors?: boolean;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainProgress {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  /** Held-out perplexity, when it was measured at this step. */
  evalPpl?: number;
}

export interface TrainReport {
  steps: number;
  /** Targets trained on (all micro-batches of all steps this process ran). */
  tokens: number;
  trainableParams: number;
  examples: number;
  format: string;
  /** Mean loss of each step (the resumed part of a run included: from the checkpoint). */
  losses: number[];
  evals: { step: number; ppl: number }[];
  pplBefore?: number;
  pplAfter?: number;
  seconds: number;
  resumedFrom?: number;
  /**
   * adapter: a PEFT adapter over the unchanged base (--train lora alone); merged: a dense model with the adapters
   * folded in; checkpoint: the model with its trained tensors; checkpoint+adapter: lora with other sets — the
   * model with its trained tensors and, in the same directory, the adapter trained with them.
   */
  output: "adapter" | "checkpoint" | "merged" | "checkpoint+adapter";
}

interface Resolved {
  model: string;
  data: string;
  sets: TrainSet[];
  loss: LossSpec;
  teacher: string | null;
  lora: LoraSettings | null;
  merge: boolean;
  lr: number;
  schedule: Schedule;
  warmup: number;
  steps: number;
  batchSize: number;
  gradAccum: number;
  seqlen: number;
  clip: number;
  weightDecay: number;
  seed: number;
}

interface State {
  version: 1;
  options: Resolved;
  step: number;
  losses: number[];
  evals: { step: number; ppl: number }[];
  pplBefore?: number;
}

const STATE = "state.json";

function fail(code: string, msg: string): never {
  throw new UsageError(`train.${code}`, msg);
}

function evalIds(file: string, dir: string): number[] {
  return loadTokenizer(dir).encode(readTextFile(file, "--eval-data"));
}

async function heldOut(model: LlamaModel, ids: number[], seqlen: number, windows?: number): Promise<number> {
  return (await perplexity(model, ids, { seqlen, maxWindows: windows })).ppl;
}

/** The trained tensors and the moments as files of a checkpoint step (names: tensor, tensor#m, tensor#v). */
async function writeCheckpoint(be: Backend, work: string, step: number, opt: AdamW, state: State): Promise<void> {
  const tensors: TensorToWrite[] = [];
  for (const [j, p] of opt.params.entries()) {
    tensors.push({ name: p.name, dtype: "F32", shape: p.tensor.shape, data: await be.read(p.tensor) });
    tensors.push({ name: `${p.name}#m`, dtype: "F32", shape: p.tensor.shape, data: await be.read(opt.moments[j].m) });
    tensors.push({ name: `${p.name}#v`, dtype: "F32", shape: p.tensor.shape, data: await be.read(opt.moments[j].v) });
  }
  writeSafetensors(path.join(work, `step-${step}.safetensors`), tensors);
  writeFileAtomic(path.join(work, STATE), `${JSON.stringify({ ...state, step }, null, 2)}\n`);
  for (const f of fs.readdirSync(work))
    if (/^step-\d+\.safetensors$/.test(f) && f !== `step-${step}.safetensors`) fs.rmSync(path.join(work, f));
}

function restoreCheckpoint(be: Backend, work: string, step: number, opt: AdamW): void {
  const src = SafetensorsFile.open(path.join(work, `step-${step}.safetensors`));
  try {
    opt.params.forEach((p, j) => {
      for (const [name, target] of [
        [p.name, p.tensor],
        [`${p.name}#m`, opt.moments[j].m],
        [`${p.name}#v`, opt.moments[j].v],
      ] as const) {
        if (!src.info(name)) throw new ModelError("train.checkpoint", `${work}: the checkpoint has no ${name}`);
        be.assign(target, src.readFloat32(name));
      }
    });
  } finally {
    src.close();
  }
}

export async function trainModel(be: Backend, modelDir: string, out: string, o: TrainOptions): Promise<TrainReport> {
  const t0 = performance.now();
  const cfg = readModelConfig(modelDir);
  const seqlen = o.seqlen ?? Math.min(2048, cfg.maxPositionEmbeddings);
  if (!Number.isInteger(seqlen) || seqlen < 2 || seqlen > cfg.maxPositionEmbeddings)
    fail(
      "seqlen",
      `--seqlen must be an integer in 2..${cfg.maxPositionEmbeddings} (the model's context), got ${seqlen}`,
    );
  for (const [k, v, min] of [
    ["batch-size", o.batchSize, 1],
    ["grad-accum", o.gradAccum, 1],
    ["epochs", o.epochs, 1],
    ["warmup", o.warmup ?? 0, 0],
  ] as const) {
    if (!Number.isInteger(v) || v < min) fail("option", `--${k} must be an integer ≥ ${min}, got ${v}`);
  }
  if (o.maxSteps !== undefined && (!Number.isInteger(o.maxSteps) || o.maxSteps < 1))
    fail("option", `--max-steps must be an integer ≥ 1, got ${o.maxSteps}`);
  if (!(o.lr > 0)) fail("option", `--lr must be > 0, got ${o.lr}`);
  if (o.sets.includes("lora") !== (o.lora !== undefined))
    fail("lora", "--train lora and the LoRA settings go together");
  if (o.merge && !o.sets.includes("lora"))
    fail("merge", "--merge folds LoRA adapters into the model: it needs --train lora");
  if (o.merge && o.sets.some((s) => s !== "lora"))
    fail("merge", "--merge writes a dense model from LoRA adapters alone; train the other sets in a separate run");
  if (o.loss.kind !== "ce" && !o.teacher) fail("teacher", `--loss ${o.loss.kind} needs --teacher DIR`);
  if (o.loss.kind === "ce" && o.teacher) fail("teacher", "--teacher is used by --loss kd or kd+ce only");
  const outDir = checkOutputDir(out).dir;
  const work = `${outDir}.work`;
  checkWorkDir(work);

  // everything read and checked before any work: model, teacher, data, eval data
  const { model } = loadModel(modelDir, be, { allowUnused: o.allowUnusedTensors });
  const tokenizer = loadTokenizer(modelDir);
  let teacher: LlamaModel | undefined;
  if (o.teacher) {
    const tcfg = readModelConfig(o.teacher);
    if (tcfg.vocabSize !== cfg.vocabSize) {
      fail(
        "teacher",
        `the teacher's vocabulary has ${tcfg.vocabSize} tokens and the model's ${cfg.vocabSize}: distillation needs the same tokenizer`,
      );
    }
    teacher = loadModel(o.teacher, be, { allowUnused: o.allowUnusedTensors }).model;
  }
  const data = readDataset(o.data, tokenizer, seqlen);
  const evalTokens = o.evalData ? evalIds(o.evalData, modelDir) : undefined;
  if (o.sets.includes("lora")) attachLora(model, o.lora!, o.seed);
  const params = modelTrainableParams(model, o.sets);
  const trainable = paramSet(params);
  const trainableCount = params.reduce((s, p) => s + p.tensor.shape.reduce((a, b) => a * b, 1), 0);
  const N = data.examples.length;
  const perStep = o.batchSize * o.gradAccum;
  const steps = o.maxSteps ?? o.epochs * Math.ceil(N / perStep);
  const warmup = o.warmup ?? Math.min(10, Math.round(0.1 * steps));
  const resolved: Resolved = {
    model: path.resolve(modelDir),
    data: path.resolve(o.data),
    sets: [...o.sets],
    loss: { kind: o.loss.kind, temperature: o.loss.temperature ?? 1, ceWeight: o.loss.ceWeight ?? 1 },
    teacher: o.teacher ? path.resolve(o.teacher) : null,
    lora: o.lora ?? null,
    merge: o.merge ?? false,
    lr: o.lr,
    schedule: o.schedule,
    warmup,
    steps,
    batchSize: o.batchSize,
    gradAccum: o.gradAccum,
    seqlen,
    clip: o.clip,
    weightDecay: o.weightDecay,
    seed: o.seed,
  };
  const opt = new AdamW(be, params, { ...ADAMW_DEFAULTS, weightDecay: o.weightDecay });
  let state: State = { version: 1, options: resolved, step: 0, losses: [], evals: [] };
  const stateFile = path.join(work, STATE);
  let resumedFrom: number | undefined;
  if (fs.existsSync(stateFile)) {
    if (!o.resume) fail("work_exists", `${work} holds an unfinished run; pass --resume to continue it or delete it`);
    const saved = readJsonFile(stateFile, JSON_LIMITS.config, (c, m) => fail(c, m)) as State;
    if (JSON.stringify(saved.options) !== JSON.stringify(resolved)) {
      fail("resume_mismatch", `${work} holds a run with other settings; resume with the same options or delete it`);
    }
    restoreCheckpoint(be, work, saved.step, opt);
    state = saved;
    resumedFrom = saved.step;
  }
  const pad = tokenizer.eosTokenIds[0] ?? 0;
  const evalWin = o.evalWindows;
  if (evalTokens && state.step === 0 && state.pplBefore === undefined)
    state.pplBefore = await heldOut(model, evalTokens, seqlen, evalWin);
  let tokens = 0;
  try {
    fs.mkdirSync(work, { recursive: true });
    for (let step = state.step; step < steps; step++) {
      const acc = new GradAccumulator(be);
      let lossSum = 0;
      let stepTokens = 0;
      for (let micro = 0; micro < o.gradAccum; micro++) {
        const first = (step * o.gradAccum + micro) * o.batchSize;
        const examples = Array.from({ length: o.batchSize }, (_, k) => {
          const i = first + k;
          return data.examples[epochOrder(N, o.seed, Math.floor(i / N))[i % N]];
        });
        const b = padBatch(examples, pad);
        const r = await batchGradients(model, b, o.loss, trainable, acc, {
          teacher,
          chunk: o.chunk,
          keepActivations: o.keepActivations,
        });
        if (!Number.isFinite(r.loss))
          throw new ModelError(
            "train.non_finite",
            `step ${step + 1}: the loss is ${r.loss}; try a lower --lr or --clip`,
          );
        lossSum += r.loss;
        stepTokens += r.tokens;
      }
      acc.scaleAll(1 / o.gradAccum);
      const norm = await clipGradients(be, params, acc, o.clip);
      const lr = lrAt(o.lr, o.schedule, warmup, step + 1, steps);
      opt.step(acc, lr, step + 1);
      acc.dispose();
      tokens += stepTokens;
      const loss = lossSum / o.gradAccum;
      state.losses.push(loss);
      let evalPpl: number | undefined;
      if (evalTokens && o.evalEvery && (step + 1) % o.evalEvery === 0 && step + 1 < steps) {
        evalPpl = await heldOut(model, evalTokens, seqlen, evalWin);
        state.evals.push({ step: step + 1, ppl: evalPpl });
      }
      o.onProgress?.({ step: step + 1, steps, loss, lr, gradNorm: norm, tokens: stepTokens, evalPpl });
      if (o.checkpointEvery && (step + 1) % o.checkpointEvery === 0 && step + 1 < steps)
        await writeCheckpoint(be, work, step + 1, opt, state);
    }
    const pplAfter = evalTokens ? await heldOut(model, evalTokens, seqlen, evalWin) : undefined;
    const report: TrainReport = {
      steps,
      tokens,
      trainableParams: trainableCount,
      examples: N,
      format: data.format,
      losses: state.losses,
      evals: state.evals,
      pplBefore: state.pplBefore,
      pplAfter,
      seconds: (performance.now() - t0) / 1000,
      resumedFrom,
      output: outputKind(o),
    };
    const record = { options: resolved, report: { ...report, seconds: undefined } };
    if (report.output === "adapter") {
      await saveAdapter(model, o.lora!, outDir, resolved.model);
      writeFileAtomic(path.join(outDir, "train.json"), `${JSON.stringify(record, null, 2)}\n`);
    } else if (report.output === "merged") {
      mergeLoraInto(model);
      await writeDense(model, modelDir, outDir, record);
    } else {
      // the adapter's base is the trained model in the same directory
      const extra =
        report.output === "checkpoint+adapter" ? await adapterWriter(model, o.lora!, path.resolve(outDir)) : undefined;
      await writeTrained(model, modelDir, outDir, params, record, extra);
    }
    fs.rmSync(work, { recursive: true, force: true });
    return { ...report, seconds: (performance.now() - t0) / 1000 };
  } finally {
    opt.dispose();
  }
}

function outputKind(o: TrainOptions): TrainReport["output"] {
  if (!o.sets.includes("lora")) return "checkpoint";
  if (o.merge) return "merged";
  return o.sets.length === 1 ? "adapter" : "checkpoint+adapter";
}

function mergeLoraInto(model: LlamaModel): void {
  const be = model.backend;
  // compressed bases become dense first: the merged weight is the whole stored weight (decoded codes, channel
  // scales, ReALLM's low-rank part, LLM-Codebook's salient channels) + (α/r)·B·A
  for (const layer of model.weights.layers) {
    for (const [, key] of LAYER_LINEARS) {
      const lin = layer[key];
      if (!lin.lora || (lin.kind === "dense" && !lin.lowrank && !lin.salient)) continue;
      const w = denseWeight(be, lin);
      if (lin.kind === "dense") be.dispose(lin.weight);
      layer[key] = {
        kind: "dense",
        weight: w,
        bias: lin.bias,
        inFeatures: lin.inFeatures,
        outFeatures: lin.outFeatures,
        lora: lin.lora,
      };
    }
  }
  mergeLora(be, model);
}

/** f32 values in a checkpoint dtype (the trained tensors are written as the source stored them). */
function encode(dtype: DType, values: Float32Array): ArrayBufferView {
  if (dtype === "F32") return values;
  if (dtype === "F16" || dtype === "BF16") return fromFloat32(dtype, values);
  if (dtype === "F64") return Float64Array.from(values);
  throw new ModelError("train.dtype", `cannot store a trained tensor as ${dtype}`);
}

/** The source checkpoint with the trained tensors replaced (stored dtype), config.json recording the training. */
async function writeTrained(
  model: LlamaModel,
  srcDir: string,
  outDir: string,
  params: TrainableParam[],
  record: Record<string, unknown>,
  extra?: (dir: string) => void,
): Promise<void> {
  const be = model.backend;
  const source = openCheckpoint(srcDir);
  try {
    const trained = new Map<string, Float32Array>();
    for (const p of params) trained.set(p.name, await be.read(p.tensor));
    const tensors: TensorToWrite[] = source
      .names()
      .sort()
      .map((n) => {
        const info = source.info(n)!;
        const t = trained.get(n);
        if (t) return { name: n, dtype: info.dtype, shape: info.shape, data: encode(info.dtype, t) };
        return { name: n, dtype: info.dtype, shape: info.shape, data: () => source.readRaw(n) };
      });
    const raw = readModelConfig(srcDir).raw;
    const q = parseQuantizationConfig(raw);
    const opts = record.options as Resolved;
    const train = {
      method: "end_to_end",
      train: opts.sets,
      loss: opts.loss.kind,
      steps: opts.steps,
      lr: opts.lr,
      data: path.basename(opts.data),
    };
    const config = q ? { ...raw, quantization_config: { ...(raw.quantization_config as object), train } } : raw;
    await writeDirAtomic(outDir, (dir) => {
      writeSafetensors(path.join(dir, "model.safetensors"), tensors, { format: "pt", ...(q ? { cluscomp: "1" } : {}) });
      writeFileAtomic(path.join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
      copyCompanionFiles(srcDir, dir, ["train.json", ADAPTER_CONFIG]);
      writeFileAtomic(path.join(dir, "train.json"), `${JSON.stringify(record, null, 2)}\n`);
      extra?.(dir);
    });
  } finally {
    source.close();
  }
}

/** A dense checkpoint of the in-memory model (every linear as its dense weight), in the source's float dtype. */
async function writeDense(
  model: LlamaModel,
  srcDir: string,
  outDir: string,
  record: Record<string, unknown>,
): Promise<void> {
  const be = model.backend;
  const source = openCheckpoint(srcDir);
  const embed = source.info("model.embed_tokens.weight");
  const dtype: DType = embed && ["F32", "F16", "BF16"].includes(embed.dtype) ? embed.dtype : "F32";
  source.close();
  const w = model.weights;
  const tensors: TensorToWrite[] = [];
  const put = async (name: string, t: Tensor) =>
    tensors.push({ name, dtype, shape: t.shape, data: encode(dtype, await be.read(t)) });
  await put("model.embed_tokens.weight", w.embedTokens);
  for (const [l, layer] of w.layers.entries()) {
    const p = `model.layers.${l}`;
    await put(`${p}.input_layernorm.weight`, layer.inputLayernorm);
    await put(`${p}.post_attention_layernorm.weight`, layer.postAttentionLayernorm);
    for (const [module, key] of LAYER_LINEARS) {
      const wt = denseWeight(be, layer[key]);
      await put(`${p}.${module}.weight`, wt);
      be.dispose(wt);
      const lin = layer[key];
      if (lin.bias) await put(`${p}.${module}.bias`, lin.bias);
    }
  }
  await put("model.norm.weight", w.norm);
  if (w.lmHead) {
    const wt = linearWeight(be, w.lmHead);
    await put("lm_head.weight", wt);
    if (w.lmHead.kind !== "dense") be.dispose(wt);
  }
  tensors.sort((a, b) => (a.name < b.name ? -1 : 1));
  const { quantization_config: _q, ...raw } = readModelConfig(srcDir).raw;
  const names: Record<DType, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" } as Record<DType, string>;
  await writeDirAtomic(outDir, (dir) => {
    writeSafetensors(path.join(dir, "model.safetensors"), tensors, { format: "pt" });
    writeFileAtomic(path.join(dir, "config.json"), `${JSON.stringify({ ...raw, dtype: names[dtype] }, null, 2)}\n`);
    copyCompanionFiles(srcDir, dir, ["cluscomp.json", "train.json", INDEX_FILE]);
    writeFileAtomic(path.join(dir, "train.json"), `${JSON.stringify(record, null, 2)}\n`);
  });
}
