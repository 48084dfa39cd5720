// kl_div: distillation from a teacher at temperature τ, per row of [rows, V] logits (PyTorch's
// F.kl_div(log_softmax(s/τ), softmax(t/τ)) before its reduction):
//   p = softmax(t/τ), q = softmax(s/τ);  loss[r] = Σ_v p_v (log p_v − log q_v);  grad[r, v] = scale · (q_v − p_v)
// (d loss / d s = (q − p)/τ, so grad is d/ds of scale·τ·Σ loss); a row whose mask is < 0 is 0. Log-sum-exps and
// the sum in float64.

function lseScaled(x: Float32Array, o: number, V: number, tau: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) max = Math.max(max, x[o + v] / tau);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(x[o + v] / tau - max);
  return max + Math.log(s);
}

export function kl_div_forward(
  loss: Float32Array,
  grad: Float32Array,
  student: Float32Array,
  teacher: Float32Array,
  rows: number,
  V: number,
  tau: number,
  scale: number,
  mask: Int32Array | null,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    if (mask && mask[r] < 0) {
      loss[r] = 0;
      grad.fill(0, o, o + V);
      continue;
    }
    const ls = lseScaled(student, o, V, tau);
    const lt = lseScaled(teacher, o, V, tau);
    let kl = 0;
    for (let v = 0; v < V; v++) {
      const logq = student[o + v] / tau - ls;
      const logp = teacher[o + v] / tau - lt;
      const p = Math.exp(logp);
      if (p > 0) kl += p * (logp - logq);
      grad[o + v] = scale * (Math.exp(logq) - p);
    }
    loss[r] = kl;
  }
}
