// The backend contract: every op the model, compression and training code needs, on opaque device tensors.
// Model code never names a backend; it calls these methods. Ops are enqueued synchronously and results come
// back through `read` (async, so a GPU backend can map buffers). Shapes are row-major; leading dims of
// "[..., C]" operands are flattened into rows.
//
// Shape legend: B batch, T query tokens, S key/value rows, C channels, H query heads, Hkv key/value heads,
// D head dim, V vocab, M/N/K matmul dims.

import type { Shape } from "../tensor/shape.js";

export type DeviceDType = "f32" | "i32";

/** A tensor living on some backend; only that backend can read or use it. */
export interface Tensor {
  readonly shape: Shape;
  readonly dtype: DeviceDType;
}

export interface RopeParams {
  /** Number of heads packed in the last dim (x is [B, T, heads·D]). */
  numHeads: number;
  headDim: number;
  /** Absolute position of token t = 0 (the KV-cache length during generation). */
  startPos: number;
  /** Rotate by −angle: the inverse (= transpose) of the rotation, which is rope's backward. */
  inverse?: boolean;
}

/** One torch.optim.AdamW step (amsgrad off); `step` counts from 1. */
export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}

export interface AttentionParams {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Key/value rows in use; k and v may have more rows (a KV cache's capacity). */
  kvLength: number;
  /** Absolute position of query row 0; query t attends to keys 0..queryOffset+t. */
  queryOffset: number;
  /** Keys more than this many positions back are masked (Mistral); null = full causal. */
  slidingWindow: number | null;
}

export interface MatmulOptions {
  /** Use Aᵀ: a is stored [K, M]. */
  transposeA?: boolean;
  /** Use Bᵀ: b is stored [N, K]. */
  transposeB?: boolean;
}

/** Op names as they appear in file names, shaders, tests and benchmarks. */
export type OpName =
  | "matmul"
  | "linear"
  | "add"
  | "mul"
  | "rms_norm"
  | "rope"
  | "attention"
  | "silu_mul"
  | "embedding"
  | "softmax"
  | "log_softmax"
  | "cross_entropy"
  | "write_rows"
  | "narrow"
  | "kmeans_assign"
  | "kmeans_update"
  | "codebook_decode"
  | "codebook_linear"
  | "rtn_decode"
  | "rms_norm_backward"
  | "attention_backward"
  | "silu_mul_backward"
  | "sum_rows"
  | "mse"
  | "adamw"
  | "codebook_grad"
  | "scale"
  | "cross_entropy_backward"
  | "kl_div"
  | "embedding_backward";

/** Every op of the contract, for suites and `supports` checks. */
export const OP_NAMES: readonly OpName[] = [
  "matmul",
  "linear",
  "add",
  "mul",
  "rms_norm",
  "rope",
  "attention",
  "silu_mul",
  "embedding",
  "softmax",
  "log_softmax",
  "cross_entropy",
  "write_rows",
  "narrow",
  "kmeans_assign",
  "kmeans_update",
  "codebook_decode",
  "codebook_linear",
  "rtn_decode",
  "rms_norm_backward",
  "attention_backward",
  "silu_mul_backward",
  "sum_rows",
  "mse",
  "adamw",
  "codebook_grad",
  "scale",
  "cross_entropy_backward",
  "kl_div",
  "embedding_backward",
];

/** Geometry of a codebook-compressed weight (see compress/codebook.ts for the vector layout). */
export interface CodebookLayout {
  out: number;
  in: number;
  /** Vector length. */
  d: number;
  /** Vectors per row of Wᵀ: ⌈out/d⌉. */
  nb: number;
  /** Centroids per codebook. */
  K: number;
  /** Vector columns per codebook part: ⌈nb/m⌉. */
  partCols: number;
}

/** Geometry of a round-to-nearest weight: integer codes per weight, fp16 scale and zero per group of inputs. */
export interface RtnLayout {
  out: number;
  in: number;
  bits: number;
  group: number;
}

export interface Backend {
  readonly name: string;
  /** What runs the ops, for logs and reports: e.g. "WebAssembly SIMD, 8 threads" or "WebGPU on NVIDIA H100 …". */
  describe(): string;
  /** Whether this backend implements `op`; callers skip (and report) what it does not. */
  supports(op: OpName): boolean;

  /** A tensor holding `data`. The CPU backend keeps the array itself (no copy): do not modify it afterwards. */
  upload(data: Float32Array, shape: Shape): Tensor;
  uploadInt(data: Int32Array, shape: Shape): Tensor;
  /** A zero-filled f32 tensor (e.g. a KV cache). */
  zeros(shape: Shape): Tensor;
  /** Overwrites every element of the f32 tensor t with `data` (same element count), in place: t stays t. */
  assign(t: Tensor, data: Float32Array): void;
  read(t: Tensor): Promise<Float32Array>;
  readInt(t: Tensor): Promise<Int32Array>;
  /** Releases device memory; the tensor must not be used again. */
  dispose(t: Tensor): void;
  /** The same elements under another shape (equal element count), sharing storage: dispose only one of them. */
  reshape(t: Tensor, shape: Shape): Tensor;

  /** [M, K] · [K, N] → [M, N] (see MatmulOptions for transposed storage). */
  matmul(a: Tensor, b: Tensor, opts?: MatmulOptions): Tensor;
  /** y = x·Wᵀ + bias, PyTorch's F.linear: x [..., K], weight [N, K], bias [N] → [..., N]. */
  linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor;
  /**
   * Elementwise a + b with b broadcast: b has a's shape, [C] (a [..., C]: one term per column, the same for every
   * row, as a bias) or [...a's leading dims, 1] (one per row).
   */
  add(a: Tensor, b: Tensor): Tensor;
  /** Elementwise a ⊙ b with b broadcast as add's (ClusComp's channel scales, and their gradients). */
  mul(a: Tensor, b: Tensor): Tensor;
  /** x / sqrt(mean(x²) + eps) · weight over the last dim. x [..., C], weight [C]. */
  rms_norm(x: Tensor, weight: Tensor, eps: number): Tensor;
  /** Rotary embedding, rotate-half layout (HF). x [B, T, heads·D]; cos, sin [P, D/2] with P ≥ startPos + T. */
  rope(x: Tensor, cos: Tensor, sin: Tensor, p: RopeParams): Tensor;
  /** Causal grouped-query attention softmax(q·kᵀ/√D)·v. q [B, T, H·D]; k, v [B, S, Hkv·D] → [B, T, H·D]. */
  attention(q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): Tensor;
  /** silu(gate) · up, elementwise. */
  silu_mul(gate: Tensor, up: Tensor): Tensor;
  /** Rows of table [V, C] picked by ids (i32, any shape) → [...ids.shape, C]. */
  embedding(ids: Tensor, table: Tensor): Tensor;
  softmax(x: Tensor): Tensor;
  log_softmax(x: Tensor): Tensor;
  /** Per-row negative log-likelihood: logits [..., V], targets i32 [...] → f32 [...]; target < 0 gives 0. */
  cross_entropy(logits: Tensor, targets: Tensor): Tensor;
  /** dst [B, cap, C] rows offset..offset+T ← src [B, T, C] (in place). */
  write_rows(dst: Tensor, src: Tensor, offset: number): void;
  /** x [B, T, C] → rows start..start+length along dim 1: [B, length, C]. */
  narrow(x: Tensor, start: number, length: number): Tensor;

  /**
   * Nearest centroid of each vector by ‖x‖² − 2x·c + ‖c‖², ties to the lowest index, never materializing N×K:
   * x [N, d], centroids [K, d] → codes i32 [N] and squared distances f32 [N].
   */
  kmeans_assign(x: Tensor, centroids: Tensor): { codes: Tensor; distances: Tensor };
  /** Per-cluster sums [K, d] and member counts [K] (f32) of x [N, d] grouped by codes [N]. */
  kmeans_update(x: Tensor, codes: Tensor, K: number): { sums: Tensor; counts: Tensor };
  /** Dense W [out, in] from codes i32 [in, nb] and codebooks [m, K, d]. */
  codebook_decode(codes: Tensor, codebooks: Tensor, l: CodebookLayout): Tensor;
  /**
   * y = x · Wᵀ + b with W = codebook_decode(codes, codebooks): x [..., in] → [..., out]. Fast backends multiply
   * straight from codes and centroids (the decoded weight is never stored).
   */
  codebook_linear(x: Tensor, codes: Tensor, codebooks: Tensor, bias: Tensor | null, l: CodebookLayout): Tensor;
  /**
   * Dense W [out, in] from b-bit codes packed LSB-first into i32 words [⌈out·in·b/32⌉] (row-major bit stream)
   * and scales, zeros [out, ⌈in/group⌉]: w = q·scale + zero.
   */
  rtn_decode(packed: Tensor, scales: Tensor, zeros: Tensor, l: RtnLayout): Tensor;

  // --- training: backward ops, loss, optimizer -----------------------------------------------------------
  /** Gradients of rms_norm w.r.t. x ([..., C]) and weight ([C], summed over rows), given dy. */
  rms_norm_backward(x: Tensor, weight: Tensor, dy: Tensor, eps: number): { dx: Tensor; dweight: Tensor };
  /** Gradients of attention (same params) w.r.t. q, k, v given dout [B, T, H·D]; dk, dv have k's shape. */
  attention_backward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dout: Tensor,
    p: AttentionParams,
  ): { dq: Tensor; dk: Tensor; dv: Tensor };
  /** Gradients of silu_mul w.r.t. gate and up, given dy. */
  silu_mul_backward(gate: Tensor, up: Tensor, dy: Tensor): { dgate: Tensor; dup: Tensor };
  /** Column sums of x [..., C] → [C] (bias gradients). */
  sum_rows(x: Tensor): Tensor;
  /** Mean squared error over all elements → loss [1] and d loss / d pred (pred's shape). */
  mse(pred: Tensor, target: Tensor): { loss: Tensor; grad: Tensor };
  /** One AdamW step, in place on param and the moment buffers m, v (all the same shape). */
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): void;
  /** The adjoint of codebook_decode: dW [out, in] summed into the centroids its codes [in, nb] name → [m, K, d]. */
  codebook_grad(dW: Tensor, codes: Tensor, l: CodebookLayout): Tensor;
  /** s · x, elementwise (loss scaling, LoRA's α/r). */
  scale(x: Tensor, s: number): Tensor;
  /**
   * d/d logits of `scale` · Σ cross_entropy: scale · (softmax(logits) − onehot(target)) per row, logits [..., V],
   * targets i32 [...]; a row with target < 0 (ignored) gets 0.
   */
  cross_entropy_backward(logits: Tensor, targets: Tensor, scale: number): Tensor;
  /**
   * Knowledge distillation at temperature τ, per row of student and teacher logits [..., V]:
   * loss [...] = KL(softmax(teacher/τ) ‖ softmax(student/τ)) in nats, and grad = scale · (softmax(student/τ) −
   * softmax(teacher/τ)), which is d/d student of (scale·τ) · Σ loss. With `mask` (i32, one per row), a row whose
   * mask is < 0 (an ignored position, as cross_entropy's targets) has loss 0 and gradient 0.
   */
  kl_div(
    student: Tensor,
    teacher: Tensor,
    tau: number,
    scale: number,
    mask?: Tensor | null,
  ): { loss: Tensor; grad: Tensor };
  /** The adjoint of embedding: dy [...ids.shape, C] summed into the rows its ids name → [V, C]. */
  embedding_backward(ids: Tensor, dy: Tensor, V: number): Tensor;
}

/**
 * Names accepted by --backend. `auto` picks WebGPU on a hardware adapter, else `cpu`: the CPU backend with its fast
 * tier (WebAssembly kernels where the engine has SIMD); `webgpu` insists on the GPU; `reference` forces the plain
 * TypeScript loops.
 */
export const BACKEND_NAMES = ["auto", "cpu", "webgpu", "reference"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
