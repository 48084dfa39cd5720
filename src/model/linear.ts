// A linear layer's weights as the model sees them. Dense weights now; compressed (codebook) weights plug in as
// further variants of `Linear`, applied through the same `applyLinear`.

import type { Backend, Tensor } from "../backend/backend.js";

export interface DenseLinear {
  kind: "dense";
  /** [out, in], HF layout. */
  weight: Tensor;
  bias: Tensor | null;
  inFeatures: number;
  outFeatures: number;
}

export type Linear = DenseLinear;

/** y = x·Wᵀ + b for x [..., in] → [..., out]. */
export function applyLinear(backend: Backend, lin: Linear, x: Tensor): Tensor {
  return backend.linear(x, lin.weight, lin.bias);
}

export function disposeLinear(backend: Backend, lin: Linear): void {
  backend.dispose(lin.weight);
  if (lin.bias) backend.dispose(lin.bias);
}
