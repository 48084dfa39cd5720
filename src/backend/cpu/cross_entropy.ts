// cross_entropy (reduction none): out[r] = logsumexp(logits[r, :]) − logits[r, target[r]]; target < 0 → 0
// (ignored position, like PyTorch's ignore_index). logits [rows, V].

import { logsumexp_row } from "./log_softmax.js";

export function cross_entropy_forward(
  out: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  rows: number,
  V: number,
): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    out[r] = t < 0 ? 0 : logsumexp_row(logits, r * V, V) - logits[r * V + t];
  }
}
