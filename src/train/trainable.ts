// Trainable parameters, shared by block-wise tuning (stage 2) and end-to-end training: which tensors of a model
// train, which gradients a backward must compute for them (a frozen weight costs only its dx), and how each
// parameter's gradient is collected from a layer backward (a codebook gathers codebook_grad(dW) of every linear
// that reads it, shared codebooks across layers included; LoRA A and B come with their linear; dense weights and
// norms as they are), accumulated over layers and micro-batches.

import type { Backend, Tensor } from "../backend/backend.js";
import { ModelError, UsageError } from "../errors.js";
import { channelScaleName } from "../io/cluscomp_format.js";
import type { ModelConfig } from "../io/hf_config.js";
import {
  type DecoderLayer,
  decoderLayerBackward,
  decoderLayerForward,
  disposeActivations,
  type GradRequest,
  LAYER_LINEARS,
  type LayerContext,
  type LayerGrads,
  type LinearKey,
} from "../model/decoder_layer.js";
import type { CodebookLinear, Linear } from "../model/linear.js";
import type { LlamaModel } from "../model/llama.js";
import type { ModelGradRequest } from "../model/llama_backward.js";
import type { AdamW } from "./optimizer.js";

/**
 * What end-to-end training may train (combinable): ClusComp codebooks, RMSNorm weights, ReALLM's stored low-rank
 * factors, LoRA adapters, everything.
 */
export const TRAIN_SETS = ["codebooks", "norms", "lowrank", "lora", "all"] as const;
export type TrainSet = (typeof TRAIN_SETS)[number];

export interface TrainableParam {
  /** Its tensor name: in the checkpoint (a codebook, `<layer>.input_layernorm.weight`), or a LoRA factor's PEFT name. */
  name: string;
  tensor: Tensor;
}

/** Gradients summed per parameter tensor (over the linears that share it, layers, micro-batches). */
export class GradAccumulator {
  private readonly grads = new Map<Tensor, Tensor>();
  constructor(private readonly be: Backend) {}

  /** Adds g (taken over: the accumulator disposes it) to param's gradient. */
  add(param: Tensor, g: Tensor): void {
    const prev = this.grads.get(param);
    if (!prev) {
      this.grads.set(param, g);
      return;
    }
    this.grads.set(param, this.be.add(prev, g));
    this.be.dispose(prev);
    this.be.dispose(g);
  }

  get(param: Tensor): Tensor | undefined {
    return this.grads.get(param);
  }

  /** Multiplies every gradient by s (micro-batch averaging, clipping). */
  scaleAll(s: number): void {
    if (s === 1) return;
    for (const [p, g] of this.grads) {
      this.grads.set(p, this.be.scale(g, s));
      this.be.dispose(g);
    }
  }

  dispose(): void {
    for (const g of this.grads.values()) this.be.dispose(g);
    this.grads.clear();
  }
}

/** The parameter tensors that train, as a set, for the collectors below. */
export function paramSet(params: TrainableParam[]): Set<Tensor> {
  return new Set(params.map((p) => p.tensor));
}

/** Which gradients a layer backward must compute for the trainable tensors in `trainable`. */
export function layerGradRequest(layer: DecoderLayer, trainable: Set<Tensor>): GradRequest {
  const needsWeight = (lin: Linear) =>
    (lin.kind === "dense" && trainable.has(lin.weight)) ||
    (lin.kind === "codebook" &&
      (trainable.has(lin.codebooks) || (lin.channelScale !== undefined && trainable.has(lin.channelScale)))) ||
    (lin.bias !== null && trainable.has(lin.bias));
  return {
    weight: (key: LinearKey) => needsWeight(layer[key]),
    norms: trainable.has(layer.inputLayernorm) || trainable.has(layer.postAttentionLayernorm),
  };
}

/**
 * Moves the gradients of trainable tensors from a layer backward into `acc` and frees every other gradient of
 * it (dx excepted: it belongs to the caller).
 */
export function collectLayerGrads(
  be: Backend,
  layer: DecoderLayer,
  grads: LayerGrads,
  trainable: Set<Tensor>,
  acc: GradAccumulator,
): void {
  const keep = (param: Tensor, g: Tensor | null | undefined) => {
    if (!g) return;
    if (trainable.has(param)) acc.add(param, g);
    else be.dispose(g);
  };
  for (const [, key] of LAYER_LINEARS) {
    const lin = layer[key];
    const g = grads.linears[key];
    if (g.weight) {
      if (lin.kind === "codebook") {
        const s = lin.channelScale;
        if (trainable.has(lin.codebooks)) {
          // W = diag(s)·decode(codes): the codebook's gradient gathers diag(s)·dW
          const dW = s ? be.mul(g.weight, be.reshape(s, [lin.outFeatures, 1])) : g.weight;
          acc.add(lin.codebooks, be.codebook_grad(dW, lin.codes, lin.layout));
          if (dW !== g.weight) be.dispose(dW);
        }
        if (s && trainable.has(s)) acc.add(s, channelScaleGrad(be, lin, g.weight));
        be.dispose(g.weight);
      } else if (lin.kind === "dense") keep(lin.weight, g.weight);
      else be.dispose(g.weight);
    }
    if (g.bias) keep(lin.bias!, g.bias);
    if (lin.lora) {
      keep(lin.lora.A, g.loraA);
      keep(lin.lora.B, g.loraB);
    }
    if (lin.lowrank) {
      keep(lin.lowrank.A, g.lowrankA);
      keep(lin.lowrank.B, g.lowrankB);
    }
  }
  keep(layer.inputLayernorm, grads.inputLayernorm);
  keep(layer.postAttentionLayernorm, grads.postAttentionLayernorm);
}

/** d loss / d s [out] of W = diag(s)·decode(codes), given dW [out, in]: Σᵢ dW[o, i]·decode(codes)[o, i]. */
function channelScaleGrad(be: Backend, lin: CodebookLinear, dW: Tensor): Tensor {
  const w = be.codebook_decode(lin.codes, lin.codebooks, lin.layout);
  const p = be.mul(dW, w);
  const ones = be.upload(new Float32Array(lin.inFeatures).fill(1), [lin.inFeatures, 1]);
  const ds = be.matmul(p, ones);
  for (const t of [w, p, ones]) be.dispose(t);
  return be.reshape(ds, [lin.outFeatures]);
}

/** The checkpoint name of a factor of ReALLM's stored low-rank part of `module`. */
export function lowRankParamName(module: string, factor: "A" | "B"): string {
  return `${module}.lowrank_${factor}`;
}

/**
 * Stage 2's parameters of a layer: the codebooks of its compressed linears (first-use order) — or, for a ReALLM
 * layer (low-rank parts stored), only the low-rank factors A and B, as ReALLM tunes them — then its norms when
 * `trainNorms`.
 */
export function trainableParams(layer: DecoderLayer, prefix: string, trainNorms: boolean): TrainableParam[] {
  const params: TrainableParam[] = [];
  const seen = new Set<Tensor>();
  const lowrank = LAYER_LINEARS.some(([, key]) => layer[key].lowrank);
  for (const [module, key] of LAYER_LINEARS) {
    const lin = layer[key];
    if (lowrank) {
      if (!lin.lowrank) continue;
      params.push({ name: lowRankParamName(`${prefix}.${module}`, "A"), tensor: lin.lowrank.A });
      params.push({ name: lowRankParamName(`${prefix}.${module}`, "B"), tensor: lin.lowrank.B });
      continue;
    }
    if (lin.kind !== "codebook") continue;
    if (!seen.has(lin.codebooks)) {
      seen.add(lin.codebooks);
      params.push({ name: lin.codebookName, tensor: lin.codebooks });
    }
    if (lin.channelScale) params.push({ name: channelScaleName(`${prefix}.${module}`), tensor: lin.channelScale });
  }
  if (trainNorms) {
    params.push({ name: `${prefix}.input_layernorm.weight`, tensor: layer.inputLayernorm });
    params.push({ name: `${prefix}.post_attention_layernorm.weight`, tensor: layer.postAttentionLayernorm });
  }
  return params;
}

/** d loss / d param for each of `params`, in the same order (caller disposes). */
export function trainableGrads(
  be: Backend,
  layer: DecoderLayer,
  grads: LayerGrads,
  params: TrainableParam[],
): Tensor[] {
  const acc = new GradAccumulator(be);
  collectLayerGrads(be, layer, grads, paramSet(params), acc);
  return params.map((p) => {
    const g = acc.get(p.tensor);
    if (!g) throw new ModelError("train.param", `${p.name} is not a parameter of this layer`);
    return g;
  });
}

/**
 * One training step of a compressed layer: forward with saved activations, MSE against `target`, layer backward
 * (only the gradients the parameters need), an update of every parameter by `opt` (learning rate `lr`, step number
 * `step`, 1-based). Frees everything it made and returns the loss before the update.
 */
export async function trainStep(
  be: Backend,
  cfg: ModelConfig,
  layer: DecoderLayer,
  opt: AdamW,
  x: Tensor,
  target: Tensor,
  ctx: LayerContext,
  lr: number,
  step: number,
): Promise<number> {
  const params = opt.params;
  const trainable = paramSet(params);
  const { y, saved } = decoderLayerForward(be, cfg, layer, x, ctx, true);
  const { loss, grad } = be.mse(y, target);
  const grads = decoderLayerBackward(be, cfg, layer, saved!, grad, ctx, layerGradRequest(layer, trainable));
  const acc = new GradAccumulator(be);
  collectLayerGrads(be, layer, grads, trainable, acc);
  opt.step(acc, lr, step);
  const value = (await be.read(loss))[0];
  acc.dispose();
  for (const t of [y, loss, grad, grads.dx]) be.dispose(t);
  disposeActivations(be, saved!);
  return value;
}

/** The PEFT name of a LoRA factor of `module` (what adapter_model.safetensors holds). */
export function loraParamName(module: string, factor: "A" | "B"): string {
  return `base_model.model.${module}.lora_${factor}.weight`;
}

/**
 * The trainable parameters of a whole model for the chosen sets, each tensor once, in model order:
 * `codebooks` every codebook (a shared one once), `norms` every RMSNorm weight (final norm included), `lora` the
 * A and B of every linear that has an adapter, `all` every parameter of a dense model (embeddings and head
 * included; refused on a compressed model, whose codes cannot train).
 */
export function modelTrainableParams(model: LlamaModel, sets: readonly TrainSet[]): TrainableParam[] {
  const w = model.weights;
  const out: TrainableParam[] = [];
  const seen = new Set<Tensor>();
  const add = (name: string, t: Tensor) => {
    if (seen.has(t)) return;
    seen.add(t);
    out.push({ name, tensor: t });
  };
  const all = sets.includes("all");
  if (all) {
    const compressed = w.layers.some((layer) => LAYER_LINEARS.some(([, key]) => layer[key].kind !== "dense"));
    if (compressed || (w.lmHead && w.lmHead.kind !== "dense")) {
      throw new UsageError(
        "train.all_compressed",
        "--train all trains every weight of a dense model; this model is compressed (its codes cannot train): use --train codebooks, norms or lora",
      );
    }
    add("model.embed_tokens.weight", w.embedTokens);
  }
  w.layers.forEach((layer, l) => {
    const p = `model.layers.${l}`;
    if (all || sets.includes("norms")) add(`${p}.input_layernorm.weight`, layer.inputLayernorm);
    for (const [module, key] of LAYER_LINEARS) {
      const lin = layer[key];
      if (all && lin.kind === "dense") {
        add(`${p}.${module}.weight`, lin.weight);
        if (lin.bias) add(`${p}.${module}.bias`, lin.bias);
      }
      if (sets.includes("codebooks") && lin.kind === "codebook") {
        add(lin.codebookName, lin.codebooks);
        if (lin.channelScale) add(channelScaleName(`${p}.${module}`), lin.channelScale);
      }
      if (sets.includes("lowrank") && lin.lowrank) {
        add(lowRankParamName(`${p}.${module}`, "A"), lin.lowrank.A);
        add(lowRankParamName(`${p}.${module}`, "B"), lin.lowrank.B);
      }
      if (sets.includes("lora") && lin.lora) {
        add(loraParamName(`${p}.${module}`, "A"), lin.lora.A);
        add(loraParamName(`${p}.${module}`, "B"), lin.lora.B);
      }
    }
    if (all || sets.includes("norms")) add(`${p}.post_attention_layernorm.weight`, layer.postAttentionLayernorm);
  });
  if (all || sets.includes("norms")) add("model.norm.weight", w.norm);
  if (all && w.lmHead?.kind === "dense") add("lm_head.weight", w.lmHead.weight);
  const hasCodebooks = w.layers.some((layer) => LAYER_LINEARS.some(([, k]) => layer[k].kind === "codebook"));
  if (sets.includes("codebooks") && !hasCodebooks) {
    throw new UsageError(
      "train.no_codebooks",
      "--train codebooks needs a ClusComp (codebook) model; this one has no codebooks",
    );
  }
  if (sets.includes("lowrank") && !w.layers.some((layer) => LAYER_LINEARS.some(([, k]) => layer[k].lowrank))) {
    throw new UsageError(
      "train.no_lowrank",
      "--train lowrank needs a ReALLM model (compress --method reallm): this one has no low-rank parts",
    );
  }
  if (sets.includes("lora") && !w.layers.some((layer) => LAYER_LINEARS.some(([, k]) => layer[k].lora))) {
    throw new UsageError("train.no_lora", "--train lora needs LoRA adapters on the model (--lora-targets)");
  }
  return out;
}

/** The gradients a training pass must compute for a trainable set. */
export function modelGradRequest(model: LlamaModel, trainable: Set<Tensor>): ModelGradRequest {
  const w = model.weights;
  return {
    embedding: trainable.has(w.embedTokens),
    head: w.lmHead?.kind === "dense" && trainable.has(w.lmHead.weight),
    finalNorm: trainable.has(w.norm),
    layer: (l) => layerGradRequest(w.layers[l], trainable),
  };
}
