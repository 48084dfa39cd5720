// Gradients of a batch for a set of trainable parameters: the loss (train/losses.ts) through the model-level
// training pass (model/llama_backward.ts), every trainable tensor's gradient summed into an accumulator — the one
// place end-to-end training computes gradients (the training loop, the tests against the PyTorch goldens).

import type { Tensor } from "../backend/backend.js";
import type { LlamaModel } from "../model/llama.js";
import { lmTrainingPass } from "../model/llama_backward.js";
import { batchLoss, type LossSpec } from "./losses.js";
import { collectLayerGrads, type GradAccumulator, modelGradRequest } from "./trainable.js";

export interface Batch {
  /** Token ids [B, T]. */
  ids: Int32Array;
  /** Labels [B, T] in transformers' convention (the inputs, −100 where no loss). */
  labels: Int32Array;
  B: number;
  T: number;
}

export interface GradientOptions {
  teacher?: LlamaModel;
  /** Positions of logits computed at a time. */
  chunk?: number;
  /** Keep activations instead of recomputing them (same gradients, more memory). */
  keepActivations?: boolean;
}

export interface BatchResult {
  loss: number;
  /** Targets that counted. */
  tokens: number;
  ce?: number;
  klPerToken?: number;
}

/** Adds d loss / d p of the batch to `acc` for every p in `trainable`; returns the loss. */
export async function batchGradients(
  model: LlamaModel,
  batch: Batch,
  loss: LossSpec,
  trainable: Set<Tensor>,
  acc: GradAccumulator,
  opts: GradientOptions = {},
): Promise<BatchResult> {
  const be = model.backend;
  const bl = batchLoss(be, loss, batch.ids, batch.labels, batch.B, batch.T, opts.teacher);
  try {
    const w = model.weights;
    const r = await lmTrainingPass(model, batch.ids, batch.B, batch.T, bl.chunk, modelGradRequest(model, trainable), {
      chunk: opts.chunk,
      keepActivations: opts.keepActivations,
      onLayerGrads: (l, grads) => collectLayerGrads(be, w.layers[l], grads, trainable, acc),
    });
    if (r.embedding) acc.add(w.embedTokens, r.embedding);
    if (r.head && w.lmHead?.kind === "dense") acc.add(w.lmHead.weight, r.head);
    if (r.finalNorm) acc.add(w.norm, r.finalNorm);
    return { loss: r.loss, tokens: bl.tokens, ...bl.parts() };
  } finally {
    bl.dispose();
  }
}
