// Next-token choice from one row of logits: greedy (temperature 0), or temperature → top-k → top-p (nucleus)
// sampling with a seeded Rng, in the order transformers' logits warpers apply them.

import { UsageError } from "../errors.js";
import type { Rng } from "../tensor/rng.js";

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Keep the smallest set whose probability reaches p; 1 = off. */
  topP: number;
}

export function validateSampling(o: SamplingOptions): void {
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) {
    throw new UsageError("usage.temperature", `--temperature must be ≥ 0, got ${o.temperature}`);
  }
  if (!Number.isInteger(o.topK) || o.topK < 0)
    throw new UsageError("usage.top_k", `--top-k must be an integer ≥ 0, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new UsageError("usage.top_p", `--top-p must be in (0, 1], got ${o.topP}`);
}

/** Index of the largest logit (lowest index on ties, like torch.argmax). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export function sampleToken(logits: Float32Array, o: SamplingOptions, rng: Rng): number {
  if (o.temperature === 0) return argmax(logits);
  const V = logits.length;
  let order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  if (o.topK > 0 && o.topK < V) order = order.slice(0, o.topK);
  const max = logits[order[0]];
  const probs = order.map((i) => Math.exp((logits[i] - max) / o.temperature));
  const total = probs.reduce((s, p) => s + p, 0);
  let keep = probs.length;
  if (o.topP < 1) {
    let cum = 0;
    for (let i = 0; i < probs.length; i++) {
      cum += probs[i] / total;
      if (cum >= o.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const kept = probs.slice(0, keep);
  const keptTotal = kept.reduce((s, p) => s + p, 0);
  let r = rng.next() * keptTotal;
  for (let i = 0; i < keep; i++) {
    r -= kept[i];
    if (r < 0) return order[i];
  }
  return order[keep - 1];
}
