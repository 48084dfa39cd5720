// A linear layer's weights as the model sees them: dense, codebook-compressed (ClusComp) or round-to-nearest,
// optionally with a LoRA adapter over it (y = base(x) + (α/r)·B·A·x, PEFT's LoRA). Compressed weights stay
// compressed on the backend; `applyLinear` multiplies codebook weights through the backend's codebook_linear
// (fused on fast backends) and decodes round-to-nearest weights one layer at a time.

import type { Backend, CodebookLayout, RtnLayout, Tensor } from "../backend/backend.js";

/** A LoRA adapter: A [r, in] and B [out, r], applied as (α/r)·B·A·x on top of the base linear. */
export interface LoraAdapter {
  A: Tensor;
  B: Tensor;
  /** α / r. */
  scale: number;
}

interface LinearBase {
  bias: Tensor | null;
  inFeatures: number;
  outFeatures: number;
  lora?: LoraAdapter;
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

/** y = x·Wᵀ + b (+ (α/r)·B·A·x with a LoRA adapter) for x [..., in] → [..., out]. */
export function applyLinear(backend: Backend, lin: Linear, x: Tensor): Tensor {
  let y: Tensor;
  if (lin.kind === "codebook") y = backend.codebook_linear(x, lin.codes, lin.codebooks, lin.bias, lin.layout);
  else {
    const w = linearWeight(backend, lin);
    y = backend.linear(x, w, lin.bias);
    if (lin.kind !== "dense") backend.dispose(w);
  }
  if (!lin.lora) return y;
  const { A, B, scale } = lin.lora;
  const u = backend.linear(x, A, null);
  const z = backend.linear(u, B, null);
  const zs = backend.scale(z, scale);
  const out = backend.add(y, zs);
  for (const t of [u, z, zs, y]) backend.dispose(t);
  return out;
}

/** Every backend tensor a linear holds (shared codebooks included: dispose through a Set). */
export function linearTensors(lin: Linear): Tensor[] {
  const own =
    lin.kind === "dense"
      ? [lin.weight]
      : lin.kind === "codebook"
        ? [lin.codes, lin.codebooks]
        : [lin.packed, lin.scales, lin.zeros];
  const withBias = lin.bias ? [...own, lin.bias] : own;
  return lin.lora ? [...withBias, lin.lora.A, lin.lora.B] : withBias;
}
