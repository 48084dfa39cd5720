// cross_entropy_backward: the gradient of scale · Σ_r cross_entropy(logits[r], target[r]) w.r.t. the logits,
// out[r, v] = scale · (softmax(logits[r])_v − [v = target[r]]); a row with target < 0 (ignored) is 0.
// logits [rows, V]; the log-sum-exp in float64.

import { logsumexp_row } from "./log_softmax.js";

export function cross_entropy_backward_forward(
  out: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  rows: number,
  V: number,
  scale: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    const t = targets[r];
    if (t < 0) {
      out.fill(0, o, o + V);
      continue;
    }
    const lse = logsumexp_row(logits, o, V);
    for (let v = 0; v < V; v++) out[o + v] = scale * (Math.exp(logits[o + v] - lse) - (v === t ? 1 : 0));
  }
}
