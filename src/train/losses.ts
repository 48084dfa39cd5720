// The losses of end-to-end training, each with its gradient, computed a chunk of positions at a time
// (model/llama_backward.ts calls them):
//   ce     next-token cross-entropy, transformers' convention: labels [B, T] are the inputs (−100 = ignored); the
//          logits at position t predict labels[t + 1]; the mean over the non-ignored targets of the batch.
//   kd     distillation from a teacher run on the same batch (ClusComp's recovery, recover/run_clm_no_trainer.py):
//          KL(softmax(t/τ) ‖ softmax(s/τ)) · τ², PyTorch's "batchmean" reduction — the sum over the positions
//          divided by the number of sequences B — over the positions whose target is not ignored.
//   kd+ce  kd + ceWeight · ce.

import type { Backend, Tensor } from "../backend/backend.js";
import { UsageError } from "../errors.js";
import type { LlamaModel } from "../model/llama.js";
import type { ChunkLoss } from "../model/llama_backward.js";

export const LOSS_KINDS = ["ce", "kd", "kd+ce"] as const;
export type LossKind = (typeof LOSS_KINDS)[number];

export interface LossSpec {
  kind: LossKind;
  /** Distillation temperature τ (default 1, as the reference). */
  temperature?: number;
  /** Weight of the cross-entropy in kd+ce (default 1). */
  ceWeight?: number;
}

/** Targets in transformers' convention: target[b, t] = labels[b, t + 1]; the last position of a row is ignored. */
export function shiftLabels(labels: Int32Array, B: number, T: number): Int32Array {
  const t = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) for (let i = 0; i + 1 < T; i++) t[b * T + i] = labels[b * T + i + 1];
  return t;
}

/** The loss of one batch, a chunk of positions at a time, with what it needs to report. */
export interface BatchLoss {
  chunk: ChunkLoss;
  /** Targets that count (not ignored). */
  tokens: number;
  /** After the pass: the parts of the loss (for logs): mean cross-entropy and mean KL per token. */
  parts(): { ce?: number; klPerToken?: number };
  dispose(): void;
}

/**
 * The loss of ids/labels [B, T] for `spec`. With kd the teacher runs on the same ids now (its final hidden states
 * are kept; its logits are computed per chunk).
 */
export function batchLoss(
  be: Backend,
  spec: LossSpec,
  ids: Int32Array,
  labels: Int32Array,
  B: number,
  T: number,
  teacher?: LlamaModel,
): BatchLoss {
  const tau = spec.temperature ?? 1;
  const ceWeight = spec.kind === "ce" ? 1 : spec.kind === "kd+ce" ? (spec.ceWeight ?? 1) : 0;
  const useKd = spec.kind !== "ce";
  if (useKd && !teacher) throw new UsageError("train.teacher", `--loss ${spec.kind} needs --teacher`);
  if (!(tau > 0)) throw new UsageError("train.temperature", `--temperature must be > 0, got ${tau}`);
  const targets = shiftLabels(labels, B, T);
  let tokens = 0;
  for (const t of targets) if (t >= 0) tokens++;
  const teacherNormed = useKd ? teacher!.hidden(ids, B, T) : null;
  let nll = 0;
  let kl = 0;
  const chunk: ChunkLoss = async (logits, t0) => {
    const c = logits.shape[1];
    const tc = new Int32Array(B * c);
    for (let b = 0; b < B; b++) tc.set(targets.subarray(b * T + t0, b * T + t0 + c), b * c);
    const tgt = be.uploadInt(tc, [B, c]);
    let value = 0;
    let grad: Tensor | null = null;
    if (ceWeight > 0 && tokens > 0) {
      const n = be.cross_entropy(logits, tgt);
      let s = 0;
      for (const v of await be.read(n)) s += v;
      be.dispose(n);
      nll += s;
      value += (ceWeight * s) / tokens;
      grad = be.cross_entropy_backward(logits, tgt, ceWeight / tokens);
    }
    if (useKd) {
      const part = be.narrow(teacherNormed!, t0, c);
      const tl = teacher!.head(part);
      be.dispose(part);
      // d/ds of (τ²/B)·Σ KL = (τ/B)·(q − p): the op's scale times (q − p)
      const r = be.kl_div(logits, tl, tau, tau / B, tgt);
      be.dispose(tl);
      let s = 0;
      for (const v of await be.read(r.loss)) s += v;
      be.dispose(r.loss);
      kl += s;
      value += (tau * tau * s) / B;
      if (grad) {
        const sum = be.add(grad, r.grad);
        be.dispose(grad);
        be.dispose(r.grad);
        grad = sum;
      } else grad = r.grad;
    }
    be.dispose(tgt);
    return { value, grad: grad ?? be.zeros(logits.shape) };
  };
  return {
    chunk,
    tokens,
    parts: () => ({
      ...(ceWeight > 0 ? { ce: tokens > 0 ? nll / tokens : 0 } : {}),
      ...(useKd ? { klPerToken: tokens > 0 ? kl / tokens : 0 } : {}),
    }),
    dispose: () => {
      if (teacherNormed) be.dispose(teacherNormed);
    },
  };
}
