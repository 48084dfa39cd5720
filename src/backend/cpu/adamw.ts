// adamw: one decoupled-weight-decay Adam step in place, exactly torch.optim.AdamW (amsgrad off):
//   p ← p·(1 − lr·λ);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)

export function adamw_forward(
  param: Float32Array,
  grad: Float32Array,
  m: Float32Array,
  v: Float32Array,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  step: number,
): void {
  const bc1 = 1 - beta1 ** step;
  const bc2 = Math.sqrt(1 - beta2 ** step);
  const stepSize = lr / bc1;
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    const mi = beta1 * m[i] + (1 - beta1) * g;
    const vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2 + eps);
  }
}
