// One Llama-family decoder layer, forward and backward, on the backend contract:
//   n1 = rms(x)·w1;  q = rope(n1·Wqᵀ + bq);  k = rope(n1·Wkᵀ + bk);  v = n1·Wvᵀ + bv
//   h = x + attn(q, k, v)·Woᵀ + bo;  n2 = rms(h)·w2;  y = h + (silu(n2·Wgᵀ) · n2·Wuᵀ)·Wdᵀ
// The forward optionally keeps the activations the backward needs; the backward returns d/dx and the gradient
// of every parameter (dense weight gradients [out, in], HF layout, whatever the linear's storage).

import type { Backend, Tensor } from "../backend/backend.js";
import type { ModelConfig } from "../io/hf_config.js";
import { applyLinear, type Linear, type LowRankPart, linearTensors, linearWeight } from "./linear.js";

export interface DecoderLayer {
  inputLayernorm: Tensor;
  qProj: Linear;
  kProj: Linear;
  vProj: Linear;
  oProj: Linear;
  postAttentionLayernorm: Tensor;
  gateProj: Linear;
  upProj: Linear;
  downProj: Linear;
}

/** The seven linears of a layer, by their HF module names (relative to `model.layers.<i>`). */
export const LAYER_LINEARS = [
  ["self_attn.q_proj", "qProj"],
  ["self_attn.k_proj", "kProj"],
  ["self_attn.v_proj", "vProj"],
  ["self_attn.o_proj", "oProj"],
  ["mlp.gate_proj", "gateProj"],
  ["mlp.up_proj", "upProj"],
  ["mlp.down_proj", "downProj"],
] as const;

export type LinearKey = (typeof LAYER_LINEARS)[number][1];

export interface LayerContext {
  /** RoPE tables [P, D/2] covering positions past .. past+T-1. */
  cos: Tensor;
  sin: Tensor;
  /** Absolute position of the first token. */
  past: number;
  /** Key/value cache of this layer (generation); the new keys/values are written at row `past`. */
  cache?: { keys: Tensor; values: Tensor };
}

/** Activations kept by a training forward for the backward. */
export interface LayerActivations {
  x: Tensor;
  n1: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  attn: Tensor;
  h: Tensor;
  n2: Tensor;
  gate: Tensor;
  up: Tensor;
  act: Tensor;
}

export interface LinearGrad {
  /** d loss / d W [out, in] (null when the caller did not ask for it: a frozen weight costs only its dx). */
  weight: Tensor | null;
  bias: Tensor | null;
  /** With a LoRA adapter: d loss / d A [r, in] and d B [out, r]. */
  loraA?: Tensor;
  loraB?: Tensor;
  /** With ReALLM's stored low-rank part: d loss / d A [r, in] and d B [out, r]. */
  lowrankA?: Tensor;
  lowrankB?: Tensor;
}

/** Which parameter gradients a backward computes (default: every one). */
export interface GradRequest {
  /** Dense weight (and bias) gradients of linear `key`. */
  weight?: (key: LinearKey) => boolean;
  /** The two RMSNorm weights' gradients. */
  norms?: boolean;
}

export interface LayerGrads {
  dx: Tensor;
  /** null when the request said norms: false. */
  inputLayernorm: Tensor | null;
  postAttentionLayernorm: Tensor | null;
  linears: Record<LinearKey, LinearGrad>;
}

function attentionParams(cfg: ModelConfig, T: number, past: number) {
  return {
    numHeads: cfg.numAttentionHeads,
    numKvHeads: cfg.numKeyValueHeads,
    headDim: cfg.headDim,
    kvLength: past + T,
    queryOffset: past,
    slidingWindow: cfg.slidingWindow,
  };
}

/**
 * y = layer(x) for x [B, T, C]. With `save`, returns the activations for `decoderLayerBackward` (the caller
 * disposes them with `disposeActivations`; x is kept by reference, not copied); otherwise frees them. x itself is
 * never disposed.
 */
export function decoderLayerForward(
  be: Backend,
  cfg: ModelConfig,
  layer: DecoderLayer,
  x: Tensor,
  ctx: LayerContext,
  save = false,
): { y: Tensor; saved: LayerActivations | null } {
  const T = x.shape[1];
  const H = cfg.numAttentionHeads;
  const Hkv = cfg.numKeyValueHeads;
  const D = cfg.headDim;
  const n1 = be.rms_norm(x, layer.inputLayernorm, cfg.rmsNormEps);
  const q0 = applyLinear(be, layer.qProj, n1);
  const k0 = applyLinear(be, layer.kProj, n1);
  const v = applyLinear(be, layer.vProj, n1);
  const q = be.rope(q0, ctx.cos, ctx.sin, { numHeads: H, headDim: D, startPos: ctx.past });
  const k = be.rope(k0, ctx.cos, ctx.sin, { numHeads: Hkv, headDim: D, startPos: ctx.past });
  be.dispose(q0);
  be.dispose(k0);
  let keys = k;
  let values = v;
  if (ctx.cache) {
    be.write_rows(ctx.cache.keys, k, ctx.past);
    be.write_rows(ctx.cache.values, v, ctx.past);
    keys = ctx.cache.keys;
    values = ctx.cache.values;
  }
  const attn = be.attention(q, keys, values, attentionParams(cfg, T, ctx.past));
  const o = applyLinear(be, layer.oProj, attn);
  const h = be.add(x, o);
  be.dispose(o);
  const n2 = be.rms_norm(h, layer.postAttentionLayernorm, cfg.rmsNormEps);
  const gate = applyLinear(be, layer.gateProj, n2);
  const up = applyLinear(be, layer.upProj, n2);
  const act = be.silu_mul(gate, up);
  const down = applyLinear(be, layer.downProj, act);
  const y = be.add(h, down);
  be.dispose(down);
  const saved = { x, n1, q, k, v, attn, h, n2, gate, up, act };
  if (save) return { y, saved };
  disposeActivations(be, saved);
  return { y, saved: null };
}

/** Frees every tensor of a layer (a codebook shared by its linears once). */
export function disposeLayer(be: Backend, layer: DecoderLayer): void {
  const all = new Set<Tensor>([layer.inputLayernorm, layer.postAttentionLayernorm]);
  for (const [, key] of LAYER_LINEARS) for (const t of linearTensors(layer[key])) all.add(t);
  for (const t of all) be.dispose(t);
}

/** Frees what a training forward kept (not x, which belongs to the caller). */
export function disposeActivations(be: Backend, s: LayerActivations): void {
  for (const t of [s.n1, s.q, s.k, s.v, s.attn, s.h, s.n2, s.gate, s.up, s.act]) be.dispose(t);
}

/**
 * The gradients of one low-rank part (s = scale, u = X·Aᵀ): dB = s·dYᵀ·u, dA = s·(dY·B)ᵀ·X; dX gains s·(dY·B)·A.
 * x2, dy2 are rows-flattened [rows, in], [rows, out].
 */
function lowRankBackward(
  be: Backend,
  part: LowRankPart,
  x2: Tensor,
  dy2: Tensor,
): { dA: Tensor; dB: Tensor; dx: Tensor } {
  const { A, B, scale } = part;
  const dyB = be.matmul(dy2, B);
  const dyBs = be.scale(dyB, scale);
  const dA = be.matmul(dyBs, x2, { transposeA: true });
  const u = be.linear(x2, A, null);
  const dyu = be.matmul(dy2, u, { transposeA: true });
  const dB = be.scale(dyu, scale);
  const dx = be.matmul(dyBs, A);
  for (const t of [dyB, dyBs, u, dyu]) be.dispose(t);
  return { dA, dB, dx };
}

/**
 * dX = dY·W, dW = dYᵀ·X (rows flattened), db = Σ_rows dY (dW and db only when `wantWeight`); the weight is decoded
 * for compressed linears. Each low-rank part (ReALLM's stored one, LLM-Codebook's salient channels, a LoRA
 * adapter) adds its share of dX and, but for the frozen salient channels, its gradients (lowRankBackward).
 */
function linearBackward(
  be: Backend,
  lin: Linear,
  x: Tensor,
  dy: Tensor,
  wantWeight: boolean,
): { dx: Tensor; grad: LinearGrad } {
  const rows = dy.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const x2 = be.reshape(x, [rows, lin.inFeatures]);
  const dy2 = be.reshape(dy, [rows, lin.outFeatures]);
  const w = linearWeight(be, lin);
  let dx2 = be.matmul(dy2, w);
  if (lin.kind !== "dense") be.dispose(w);
  const weight = wantWeight ? be.matmul(dy2, x2, { transposeA: true }) : null;
  const bias = wantWeight && lin.bias ? be.sum_rows(dy) : null;
  const grad: LinearGrad = { weight, bias };
  for (const [part, which] of [
    [lin.lowrank, "lowrank"],
    [lin.salient, "salient"],
    [lin.lora, "lora"],
  ] as const) {
    if (!part) continue;
    const g = lowRankBackward(be, part, x2, dy2);
    if (which === "lora") {
      grad.loraA = g.dA;
      grad.loraB = g.dB;
    } else if (which === "lowrank") {
      grad.lowrankA = g.dA;
      grad.lowrankB = g.dB;
    } else {
      // salient channels are frozen: only their share of dX is kept
      be.dispose(g.dA);
      be.dispose(g.dB);
    }
    const sum = be.add(dx2, g.dx);
    be.dispose(g.dx);
    be.dispose(dx2);
    dx2 = sum;
  }
  const dx = be.reshape(dx2, [...x.shape.slice(0, -1), lin.inFeatures]);
  return { dx, grad };
}

/**
 * Gradients of a layer given dy = d loss / d y and the activations of `decoderLayerForward(…, save = true)`
 * (no KV cache: training runs whole sequences from position ctx.past).
 */
export function decoderLayerBackward(
  be: Backend,
  cfg: ModelConfig,
  layer: DecoderLayer,
  s: LayerActivations,
  dy: Tensor,
  ctx: LayerContext,
  want: GradRequest = {},
): LayerGrads {
  const T = s.x.shape[1];
  const w = (key: LinearKey) => want.weight?.(key) ?? true;
  const H = cfg.numAttentionHeads;
  const Hkv = cfg.numKeyValueHeads;
  const D = cfg.headDim;
  const free = (...ts: Tensor[]) => {
    for (const t of ts) be.dispose(t);
  };
  // MLP: y = h + down(silu(gate)·up)
  const down = linearBackward(be, layer.downProj, s.act, dy, w("downProj"));
  const { dgate, dup } = be.silu_mul_backward(s.gate, s.up, down.dx);
  free(down.dx);
  const gate = linearBackward(be, layer.gateProj, s.n2, dgate, w("gateProj"));
  const up = linearBackward(be, layer.upProj, s.n2, dup, w("upProj"));
  free(dgate, dup);
  const dn2 = be.add(gate.dx, up.dx);
  free(gate.dx, up.dx);
  const norm2 = be.rms_norm_backward(s.h, layer.postAttentionLayernorm, dn2, cfg.rmsNormEps);
  free(dn2);
  const dh = be.add(dy, norm2.dx);
  free(norm2.dx);
  // attention: h = x + o(attn(q, k, v))
  const o = linearBackward(be, layer.oProj, s.attn, dh, w("oProj"));
  const { dq, dk, dv } = be.attention_backward(s.q, s.k, s.v, o.dx, attentionParams(cfg, T, ctx.past));
  free(o.dx);
  const dq0 = be.rope(dq, ctx.cos, ctx.sin, { numHeads: H, headDim: D, startPos: ctx.past, inverse: true });
  const dk0 = be.rope(dk, ctx.cos, ctx.sin, { numHeads: Hkv, headDim: D, startPos: ctx.past, inverse: true });
  free(dq, dk);
  const q = linearBackward(be, layer.qProj, s.n1, dq0, w("qProj"));
  const k = linearBackward(be, layer.kProj, s.n1, dk0, w("kProj"));
  const v = linearBackward(be, layer.vProj, s.n1, dv, w("vProj"));
  free(dq0, dk0, dv);
  const dqk = be.add(q.dx, k.dx);
  const dn1 = be.add(dqk, v.dx);
  free(q.dx, k.dx, v.dx, dqk);
  const norm1 = be.rms_norm_backward(s.x, layer.inputLayernorm, dn1, cfg.rmsNormEps);
  free(dn1);
  const dx = be.add(dh, norm1.dx);
  free(dh, norm1.dx);
  if (want.norms === false) {
    be.dispose(norm1.dweight);
    be.dispose(norm2.dweight);
  }
  return {
    dx,
    inputLayernorm: want.norms === false ? null : norm1.dweight,
    postAttentionLayernorm: want.norms === false ? null : norm2.dweight,
    linears: {
      qProj: q.grad,
      kProj: k.grad,
      vProj: v.grad,
      oProj: o.grad,
      gateProj: gate.grad,
      upProj: up.grad,
      downProj: down.grad,
    },
  };
}
