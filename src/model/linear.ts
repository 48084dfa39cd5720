// A linear layer's weights as the model sees them: dense, codebook-compressed (ClusComp) or round-to-nearest.
// Compressed weights stay compressed on the backend; `applyLinear` multiplies codebook weights through the
// backend's codebook_linear (fused on fast backends) and decodes round-to-nearest weights one layer at a time.

import type { Backend, CodebookLayout, RtnLayout, Tensor } from "../backend/backend.js";

interface LinearBase {
  bias: Tensor | null;
  inFeatures: number;
  outFeatures: number;
}

export interface DenseLinear extends LinearBase {
  kind: "dense";
  /** [out, in], HF layout. */
  weight: Tensor;
}

export interface CodebookLinear extends LinearBase {
  kind: "codebook";
  /** i32 [in, ⌈out/d⌉]. */
  codes: Tensor;
  /** f32 [m, K, d]; may be shared with other layers. */
  codebooks: Tensor;
  /** The codebook's tensor name in the checkpoint (shared codebooks share it). */
  codebookName: string;
  layout: CodebookLayout;
}

export interface RtnLinear extends LinearBase {
  kind: "rtn";
  /** b-bit codes packed into i32 words (see Backend.rtn_decode). */
  packed: Tensor;
  scales: Tensor;
  zeros: Tensor;
  layout: RtnLayout;
}

export type Linear = DenseLinear | CodebookLinear | RtnLinear;

/** The dense weight [out, in] of a linear (decoded for compressed kinds; caller disposes unless dense). */
export function linearWeight(backend: Backend, lin: Linear): Tensor {
  switch (lin.kind) {
    case "dense":
      return lin.weight;
    case "codebook":
      return backend.codebook_decode(lin.codes, lin.codebooks, lin.layout);
    case "rtn":
      return backend.rtn_decode(lin.packed, lin.scales, lin.zeros, lin.layout);
  }
}

/** y = x·Wᵀ + b for x [..., in] → [..., out]. */
export function applyLinear(backend: Backend, lin: Linear, x: Tensor): Tensor {
  if (lin.kind === "codebook") return backend.codebook_linear(x, lin.codes, lin.codebooks, lin.bias, lin.layout);
  const w = linearWeight(backend, lin);
  const y = backend.linear(x, w, lin.bias);
  if (lin.kind !== "dense") backend.dispose(w);
  return y;
}

/** Every backend tensor a linear holds (shared codebooks included: dispose through a Set). */
export function linearTensors(lin: Linear): Tensor[] {
  const own =
    lin.kind === "dense"
      ? [lin.weight]
      : lin.kind === "codebook"
        ? [lin.codes, lin.codebooks]
        : [lin.packed, lin.scales, lin.zeros];
  return lin.bias ? [...own, lin.bias] : own;
}
