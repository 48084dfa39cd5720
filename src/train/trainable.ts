// The trainable parameters of a compressed decoder layer — its codebooks (each once, however many linears share
// it) and optionally its RMSNorm weights — and their gradients from a layer backward: each codebook collects
// codebook_grad(dW) of every linear that reads it.

import type { Backend, Tensor } from "../backend/backend.js";
import { ModelError } from "../errors.js";
import { type DecoderLayer, LAYER_LINEARS, type LayerGrads } from "../model/decoder_layer.js";

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
