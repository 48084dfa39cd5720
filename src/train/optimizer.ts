// AdamW over trainable parameters (the backend's adamw op on fp32 master copies: the tensors train in f32 and are
// rounded to their checkpoint dtype only when written), global-norm gradient clipping, and the learning-rate
// schedules: linear warmup, then constant, linear decay or cosine decay to 0 (transformers' get_*_schedule_with
// _warmup). Shared by block-wise tuning and end-to-end training.

import type { Backend, Tensor } from "../backend/backend.js";
import { UsageError } from "../errors.js";
import type { GradAccumulator, TrainableParam } from "./trainable.js";

export const SCHEDULES = ["constant", "linear", "cosine"] as const;
export type Schedule = (typeof SCHEDULES)[number];

/** The learning rate of step `step` (1-based) of `total`: warmup over `warmup` steps, then the schedule's decay. */
export function lrAt(lr: number, schedule: Schedule, warmup: number, step: number, total: number): number {
  if (warmup > 0 && step <= warmup) return (lr * step) / warmup;
  if (schedule === "constant") return lr;
  const t = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return schedule === "linear" ? lr * (1 - t) : 0.5 * lr * (1 + Math.cos(Math.PI * t));
}

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWSettings = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export class AdamW {
  readonly moments: { m: Tensor; v: Tensor }[];
  constructor(
    private readonly be: Backend,
    readonly params: TrainableParam[],
    readonly settings: AdamWSettings,
  ) {
    this.moments = params.map((p) => ({ m: be.zeros(p.tensor.shape), v: be.zeros(p.tensor.shape) }));
  }

  /** One update of every parameter that has a gradient in `acc` (step number `step`, 1-based). */
  step(acc: GradAccumulator, lr: number, step: number): void {
    const s = this.settings;
    this.params.forEach((p, j) => {
      const g = acc.get(p.tensor);
      if (!g) return;
      this.be.adamw(p.tensor, g, this.moments[j].m, this.moments[j].v, {
        lr,
        beta1: s.beta1,
        beta2: s.beta2,
        eps: s.eps,
        weightDecay: s.weightDecay,
        step,
      });
    });
  }

  dispose(): void {
    for (const { m, v } of this.moments) {
      this.be.dispose(m);
      this.be.dispose(v);
    }
  }
}

/** ‖g‖₂ over every parameter's gradient (float64 sum of squares, read on the host). */
export async function gradNorm(be: Backend, params: TrainableParam[], acc: GradAccumulator): Promise<number> {
  let s = 0;
  for (const p of params) {
    const g = acc.get(p.tensor);
    if (!g) continue;
    for (const v of await be.read(g)) s += v * v;
  }
  return Math.sqrt(s);
}

/**
 * Global-norm clipping (torch.nn.utils.clip_grad_norm_): when ‖g‖ > maxNorm, every gradient is scaled by
 * maxNorm / (‖g‖ + 1e-6). Returns the norm before clipping; maxNorm 0 turns clipping off (the norm is still
 * measured, for the log).
 */
export async function clipGradients(
  be: Backend,
  params: TrainableParam[],
  acc: GradAccumulator,
  maxNorm: number,
): Promise<number> {
  if (!(maxNorm >= 0)) throw new UsageError("train.clip", `--clip must be ≥ 0, got ${maxNorm}`);
  const norm = await gradNorm(be, params, acc);
  if (maxNorm > 0 && norm > maxNorm) acc.scaleAll(maxNorm / (norm + 1e-6));
  return norm;
}
