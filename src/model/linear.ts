// A linear layer's weights as the model sees them: dense, codebook-compressed (ClusComp; optionally with channel
// scales, one per output row) or round-to-nearest, optionally with ReALLM's stored low-rank part
// (y = B·A·x + VQ(x)), LLM-Codebook's salient channels (the same form with A a one-hot selection) and a LoRA
// adapter over it (y = base(x) + (α/r)·B·A·x, PEFT's LoRA), both low-rank parts applied as two thin matmuls.
// Compressed weights stay compressed on the backend; `applyLinear` multiplies codebook weights through the
// backend's codebook_linear (fused on fast backends) and decodes round-to-nearest weights one layer at a time.

import type { Backend, CodebookLayout, RtnLayout, Tensor } from "../backend/backend.js";

/** A low-rank part: A [r, in] and B [out, r], applied as scale·B·A·x on top of the base linear. */
export interface LowRankPart {
  A: Tensor;
  B: Tensor;
  /** LoRA: α / r; ReALLM's stored part: 1. */
  scale: number;
}

/** A LoRA adapter (scale α/r), trained and saved apart from the checkpoint (PEFT's layout). */
export type LoraAdapter = LowRankPart;

interface LinearBase {
  bias: Tensor | null;
  inFeatures: number;
  outFeatures: number;
  /** ReALLM: the checkpoint's low-rank part of the weight (`<module>.lowrank_A` / `lowrank_B`, scale 1). */
  lowrank?: LowRankPart;
  /**
   * LLM-Codebook: the checkpoint's salient input channels S as a low-rank part: A [k, in] the one-hot selection
   * of S, B [out, k] = `<module>.salient_weight`, scale 1 (frozen: nothing trains it).
   */
  salient?: LowRankPart;
  lora?: LoraAdapter;
}

/** The low-rank parts a linear adds to its base output: ReALLM's, LLM-Codebook's salient channels, LoRA. */
export function lowRankParts(lin: Linear): LowRankPart[] {
  const parts: LowRankPart[] = [];
  if (lin.lowrank) parts.push(lin.lowrank);
  if (lin.salient) parts.push(lin.salient);
  if (lin.lora) parts.push(lin.lora);
  return parts;
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
  /**
   * Channel scales s [out] (`<module>.channel_scale`): W = diag(s)·decode(codes), the codebook quantizing each
   * output row of W divided by its scale.
   */
  channelScale?: Tensor;
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
    case "codebook": {
      const w = backend.codebook_decode(lin.codes, lin.codebooks, lin.layout);
      if (!lin.channelScale) return w;
      const scaled = backend.mul(w, backend.reshape(lin.channelScale, [lin.outFeatures, 1]));
      backend.dispose(w);
      return scaled;
    }
    case "rtn":
      return backend.rtn_decode(lin.packed, lin.scales, lin.zeros, lin.layout);
  }
}

/**
 * The whole stored weight [out, in] as one dense matrix: linearWeight plus the checkpoint's own low-rank parts
 * (ReALLM's B·A, LLM-Codebook's salient channels); a LoRA adapter is not included. Caller disposes.
 */
export function denseWeight(backend: Backend, lin: Linear): Tensor {
  const w = linearWeight(backend, lin);
  let out = lin.kind === "dense" ? backend.scale(w, 1) : w;
  for (const part of [lin.lowrank, lin.salient]) {
    if (!part) continue;
    const ba = backend.matmul(part.B, part.A);
    const term = part.scale === 1 ? ba : backend.scale(ba, part.scale);
    const sum = backend.add(out, term);
    for (const t of new Set([ba, term, out])) backend.dispose(t);
    out = sum;
  }
  return out;
}

/** y = x·Wᵀ + b (+ scale·B·A·x for each low-rank part) for x [..., in] → [..., out]. */
export function applyLinear(backend: Backend, lin: Linear, x: Tensor): Tensor {
  let y: Tensor;
  if (lin.kind === "codebook" && lin.channelScale) {
    // y = s ⊙ (x·decode(codes)ᵀ) + b
    const u = backend.codebook_linear(x, lin.codes, lin.codebooks, null, lin.layout);
    y = backend.mul(u, lin.channelScale);
    backend.dispose(u);
    if (lin.bias) {
      const yb = backend.add(y, lin.bias);
      backend.dispose(y);
      y = yb;
    }
  } else if (lin.kind === "codebook") y = backend.codebook_linear(x, lin.codes, lin.codebooks, lin.bias, lin.layout);
  else {
    const w = linearWeight(backend, lin);
    y = backend.linear(x, w, lin.bias);
    if (lin.kind !== "dense") backend.dispose(w);
  }
  for (const { A, B, scale } of lowRankParts(lin)) {
    const u = backend.linear(x, A, null);
    const z = backend.linear(u, B, null);
    const zs = scale === 1 ? z : backend.scale(z, scale);
    const out = backend.add(y, zs);
    for (const t of new Set([u, z, zs, y])) backend.dispose(t);
    y = out;
  }
  return y;
}

/** Every backend tensor a linear holds (shared codebooks included: dispose through a Set). */
export function linearTensors(lin: Linear): Tensor[] {
  const own =
    lin.kind === "dense"
      ? [lin.weight]
      : lin.kind === "codebook"
        ? [lin.codes, lin.codebooks, ...(lin.channelScale ? [lin.channelScale] : [])]
        : [lin.packed, lin.scales, lin.zeros];
  const withBias = lin.bias ? [...own, lin.bias] : own;
  return [...withBias, ...lowRankParts(lin).flatMap((p) => [p.A, p.B])];
}
