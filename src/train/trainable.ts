// The trainable parameters of a compressed decoder layer — its codebooks (each once, however many linears share
// it) and optionally its RMSNorm weights — and their gradients from a layer backward: each codebook collects
// codebook_grad(dW) of every linear that reads it.

import type { AdamWParams, Backend, Tensor } from "../backend/backend.js";
import { ModelError } from "../errors.js";
import type { ModelConfig } from "../io/hf_config.js";
import {
  type DecoderLayer,
  decoderLayerBackward,
  decoderLayerForward,
  disposeActivations,
  LAYER_LINEARS,
  type LayerContext,
  type LayerGrads,
} from "../model/decoder_layer.js";

export interface TrainableParam {
  /** Its tensor name in the checkpoint (a codebook, or `<layer>.input_layernorm.weight`). */
  name: string;
  tensor: Tensor;
}

/** Codebooks of the layer's compressed linears (first-use order), then its norms when `trainNorms`. */
export function trainableParams(layer: DecoderLayer, prefix: string, trainNorms: boolean): TrainableParam[] {
  const params: TrainableParam[] = [];
  const seen = new Set<Tensor>();
  for (const [, key] of LAYER_LINEARS) {
    const lin = layer[key];
    if (lin.kind !== "codebook" || seen.has(lin.codebooks)) continue;
    seen.add(lin.codebooks);
    params.push({ name: lin.codebookName, tensor: lin.codebooks });
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
  const byTensor = new Map<Tensor, Tensor>();
  const accumulate = (param: Tensor, g: Tensor) => {
    const prev = byTensor.get(param);
    if (!prev) {
      byTensor.set(param, g);
      return;
    }
    byTensor.set(param, be.add(prev, g));
    be.dispose(prev);
    be.dispose(g);
  };
  for (const [, key] of LAYER_LINEARS) {
    const lin = layer[key];
    if (lin.kind === "codebook")
      accumulate(lin.codebooks, be.codebook_grad(grads.linears[key].weight, lin.codes, lin.layout));
  }
  byTensor.set(layer.inputLayernorm, grads.inputLayernorm);
  byTensor.set(layer.postAttentionLayernorm, grads.postAttentionLayernorm);
  return params.map((p) => {
    const g = byTensor.get(p.tensor);
    if (!g) throw new ModelError("train.param", `${p.name} is not a parameter of this layer`);
    return g;
  });
}

/** AdamW's moment buffers, one pair per parameter (zeros). */
export function adamMoments(be: Backend, params: TrainableParam[]): { m: Tensor; v: Tensor }[] {
  return params.map((p) => ({ m: be.zeros(p.tensor.shape), v: be.zeros(p.tensor.shape) }));
}

/**
 * One training step of a compressed layer: forward with saved activations, MSE against `target`, layer backward,
 * parameter gradients, an AdamW update of every parameter (step number `hp.step`). Frees everything it made and
 * returns the loss before the update.
 */
export async function trainStep(
  be: Backend,
  cfg: ModelConfig,
  layer: DecoderLayer,
  params: TrainableParam[],
  moments: { m: Tensor; v: Tensor }[],
  x: Tensor,
  target: Tensor,
  ctx: LayerContext,
  hp: AdamWParams,
): Promise<number> {
  const { y, saved } = decoderLayerForward(be, cfg, layer, x, ctx, true);
  const { loss, grad } = be.mse(y, target);
  const grads = decoderLayerBackward(be, cfg, layer, saved!, grad, ctx);
  const pg = trainableGrads(be, layer, grads, params);
  params.forEach((p, j) => {
    be.adamw(p.tensor, pg[j], moments[j].m, moments[j].v, hp);
  });
  const value = (await be.read(loss))[0];
  // the norm gradients are grads' own tensors (freed below); the codebook gradients were made for us
  for (const g of pg) if (g !== grads.inputLayernorm && g !== grads.postAttentionLayernorm) be.dispose(g);
  for (const t of [y, loss, grad, grads.dx, grads.inputLayernorm, grads.postAttentionLayernorm]) be.dispose(t);
  for (const [, key] of LAYER_LINEARS) {
    const g = grads.linears[key];
    be.dispose(g.weight);
    if (g.bias) be.dispose(g.bias);
  }
  disposeActivations(be, saved!);
  return value;
}
