// The model-level training pass that reverses llama.ts's forward (as llm.c keeps gpt2_backward next to
// gpt2_forward): embedding → L decoder layers → final RMSNorm → head (lm_head, or the embedding when tied) → a loss
// of the logits, then the gradients back through all of it.
//
// Memory: the forward keeps each layer's *input* only (activation checkpointing); the backward recomputes one
// layer's activations at a time from it (`keepActivations` keeps them all instead, for tests: the same gradients).
// Logits, the loss and its gradient are computed a chunk of positions at a time, so a [T, V] logits tensor for a
// 128k vocabulary is never held whole: resident are L·B·T·C floats of layer inputs, one layer's activations, and
// B·chunk·V floats of logits.
//
// Shapes: B batch, T tokens, C hidden, V vocab, L layers.

import type { Tensor } from "../backend/backend.js";
import {
  decoderLayerBackward,
  decoderLayerForward,
  disposeActivations,
  type GradRequest,
  type LayerActivations,
  type LayerGrads,
} from "./decoder_layer.js";
import { linearWeight } from "./linear.js";
import type { LlamaModel } from "./llama.js";

/**
 * The loss of one chunk of positions: logits [B, c, V] of positions t0 .. t0+c−1 → its contribution to the loss
 * and d loss / d logits (same shape; the caller disposes both the logits and the gradient).
 */
export type ChunkLoss = (logits: Tensor, t0: number) => Promise<{ value: number; grad: Tensor }>;

/** Which model-level gradients to compute besides the layers' (a frozen part costs only its dx). */
export interface ModelGradRequest {
  /** d embed_tokens (the input side, and the head side when tied). */
  embedding: boolean;
  /** d lm_head.weight (untied dense head). */
  head: boolean;
  /** d model.norm.weight. */
  finalNorm: boolean;
  /** What each layer's backward computes. */
  layer: (l: number) => GradRequest;
}

export interface TrainingPassOptions {
  /** Positions whose logits are computed at a time (default 64). */
  chunk?: number;
  /** Keep every layer's activations from the forward instead of recomputing them in the backward. */
  keepActivations?: boolean;
  /** Receives layer l's gradients (in order L−1 … 0); it takes them over (dx excepted). */
  onLayerGrads: (l: number, grads: LayerGrads) => void;
}

export interface TrainingPassResult {
  /** The summed ChunkLoss values. */
  loss: number;
  embedding?: Tensor;
  head?: Tensor;
  finalNorm?: Tensor;
}

/**
 * One forward and backward pass of `model` over ids [B, T] with the loss given per chunk. Returns the loss and the
 * model-level gradients asked for; layer gradients go to `onLayerGrads`.
 */
export async function lmTrainingPass(
  model: LlamaModel,
  ids: Int32Array,
  B: number,
  T: number,
  loss: ChunkLoss,
  want: ModelGradRequest,
  opts: TrainingPassOptions,
): Promise<TrainingPassResult> {
  const be = model.backend;
  const cfg = model.config;
  const w = model.weights;
  const L = w.layers.length;
  const C = cfg.hiddenSize;
  const chunk = Math.max(1, opts.chunk ?? 64);
  const { cos, sin } = model.ropeFor(T);
  const ctx = { cos, sin, past: 0 };
  const idsT = be.uploadInt(ids, [B, T]);
  const free = (...ts: (Tensor | null | undefined)[]) => {
    for (const t of ts) if (t) be.dispose(t);
  };

  // forward: keep each layer's input (and, with keepActivations, everything the backward needs)
  const inputs: Tensor[] = [be.embedding(idsT, w.embedTokens)];
  const kept: (LayerActivations | null)[] = [];
  for (let l = 0; l < L; l++) {
    const { y, saved } = decoderLayerForward(be, cfg, w.layers[l], inputs[l], ctx, opts.keepActivations === true);
    kept.push(saved);
    inputs.push(y);
  }
  const normed = be.rms_norm(inputs[L], w.norm, cfg.rmsNormEps);

  // the head and the loss, a chunk of positions at a time
  const tied = w.lmHead === null;
  const headWeight = tied ? w.embedTokens : linearWeight(be, w.lmHead!);
  let headGrad: Tensor | undefined;
  const wantHeadGrad = tied ? want.embedding : want.head;
  const dnormed = be.zeros([B, T, C]);
  let total = 0;
  try {
    for (let t0 = 0; t0 < T; t0 += chunk) {
      const c = Math.min(chunk, T - t0);
      const part = be.narrow(normed, t0, c);
      const logits = model.head(part);
      const { value, grad } = await loss(logits, t0);
      total += value;
      be.dispose(logits);
      const V = grad.shape[grad.shape.length - 1];
      const g2 = be.reshape(grad, [B * c, V]);
      const dpart2 = be.matmul(g2, headWeight);
      const dpart = be.reshape(dpart2, [B, c, C]);
      be.write_rows(dnormed, dpart, t0);
      if (wantHeadGrad) {
        const x2 = be.reshape(part, [B * c, C]);
        const dW = be.matmul(g2, x2, { transposeA: true });
        if (headGrad) {
          const sum = be.add(headGrad, dW);
          free(headGrad, dW);
          headGrad = sum;
        } else headGrad = dW;
      }
      free(grad, dpart, part);
    }
  } finally {
    if (!tied && w.lmHead!.kind !== "dense") be.dispose(headWeight);
  }

  // back through the final norm and the layers
  const norm = be.rms_norm_backward(inputs[L], w.norm, dnormed, cfg.rmsNormEps);
  free(dnormed, normed);
  const finalNorm = want.finalNorm ? norm.dweight : undefined;
  if (!want.finalNorm) free(norm.dweight);
  let dy = norm.dx;
  for (let l = L - 1; l >= 0; l--) {
    let saved = kept[l];
    if (!saved) {
      // recompute the layer's activations from its input (its output is inputs[l + 1] again: not needed)
      const r = decoderLayerForward(be, cfg, w.layers[l], inputs[l], ctx, true);
      be.dispose(r.y);
      saved = r.saved!;
    }
    const grads = decoderLayerBackward(be, cfg, w.layers[l], saved, dy, ctx, want.layer(l));
    disposeActivations(be, saved);
    free(dy, inputs[l + 1]);
    dy = grads.dx;
    opts.onLayerGrads(l, grads);
  }

  // the embedding: d input side (+ the head side when tied)
  let embedding: Tensor | undefined;
  if (want.embedding) {
    const dIn = be.embedding_backward(idsT, dy, cfg.vocabSize);
    if (tied && headGrad) {
      embedding = be.add(dIn, headGrad);
      free(dIn, headGrad);
    } else embedding = dIn;
  }
  free(dy, inputs[0], idsT);
  return {
    loss: total,
    embedding,
    head: !tied && want.head ? headGrad : undefined,
    finalNorm,
  };
}
