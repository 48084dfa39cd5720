// The CPU reference backend: plain TypeScript loops that read like the maths (one op per file beside this one).
// Every fast backend is tested against it. Tensors are host typed arrays.

import { BackendError } from "../../errors.js";
import { formatShape, numel, type Shape } from "../../tensor/shape.js";
import type {
  AdamWParams,
  AttentionParams,
  Backend,
  CodebookLayout,
  MatmulOptions,
  OpName,
  RopeParams,
  RtnLayout,
  Tensor,
} from "../backend.js";
import {
  checkAdamw,
  checkAttention,
  checkAttentionBackward,
  checkBroadcast,
  checkCodebookGrad,
  checkCodebookLinear,
  checkCodebookShapes,
  checkCodeRange,
  checkCrossEntropy,
  checkEmbedding,
  checkEmbeddingBackward,
  checkKlDiv,
  checkKmeansAssign,
  checkKmeansUpdate,
  checkLinear,
  checkMatmul,
  checkMse,
  checkNarrow,
  checkReshape,
  checkRmsNorm,
  checkRope,
  checkRtn,
  checkSiluMul,
  checkSiluMulBackward,
  checkTokenIds,
  checkWriteRows,
  intRange,
  last,
} from "../checks.js";
import { type WasmKernels, wasmKernels } from "../wasm/kernels.js";
import { adamw_forward } from "./adamw.js";
import { attention_forward } from "./attention.js";
import { attention_backward_forward } from "./attention_backward.js";
import { attention_matmul_backward, attention_matmul_forward } from "./attention_matmul.js";
import { add_forward, mul_forward } from "./broadcast.js";
import { codebook_decode_forward } from "./codebook_decode.js";
import { codebook_grad_forward } from "./codebook_grad.js";
import { cross_entropy_forward } from "./cross_entropy.js";
import { cross_entropy_backward_forward } from "./cross_entropy_backward.js";
import { embedding_forward } from "./embedding.js";
import { embedding_backward_forward } from "./embedding_backward.js";
import { kl_div_forward } from "./kl_div.js";
import { kmeans_assign_forward } from "./kmeans_assign.js";
import { kmeans_update_forward } from "./kmeans_update.js";
import { log_softmax_forward } from "./log_softmax.js";
import { linear_forward, matmul_forward } from "./matmul.js";
import { mse_forward } from "./mse.js";
import { rms_norm_forward } from "./rms_norm.js";
import { rms_norm_backward_forward } from "./rms_norm_backward.js";
import { rope_forward } from "./rope.js";
import { rtn_decode_forward } from "./rtn_decode.js";
import { scale_forward } from "./scale.js";
import { silu_mul_forward } from "./silu_mul.js";
import { silu_mul_backward_forward } from "./silu_mul_backward.js";
import { softmax_forward } from "./softmax.js";
import { sum_rows_forward } from "./sum_rows.js";

export class CpuTensor implements Tensor {
  readonly shape: Shape;
  readonly dtype: "f32" | "i32";
  readonly data: Float32Array | Int32Array;
  constructor(data: Float32Array | Int32Array, shape: Shape) {
    if (data.length !== numel(shape)) {
      throw new BackendError(
        "backend.shape",
        `data of ${data.length} elements does not fit shape ${formatShape(shape)}`,
      );
    }
    this.data = data;
    this.shape = [...shape];
    this.dtype = data instanceof Int32Array ? "i32" : "f32";
  }
}

function f32(t: Tensor, what: string): Float32Array {
  if (!(t instanceof CpuTensor))
    throw new BackendError("backend.foreign", `${what}: tensor is not from the cpu backend`);
  if (!(t.data instanceof Float32Array)) throw new BackendError("backend.dtype", `${what}: expected an f32 tensor`);
  return t.data;
}

function i32(t: Tensor, what: string): Int32Array {
  if (!(t instanceof CpuTensor))
    throw new BackendError("backend.foreign", `${what}: tensor is not from the cpu backend`);
  if (!(t.data instanceof Int32Array)) throw new BackendError("backend.dtype", `${what}: expected an i32 tensor`);
  return t.data;
}

/** Checks codes (and codebooks, when given) against the layout; returns the codes. */
function checkCodebook(op: string, codes: Tensor, l: CodebookLayout, codebooks?: Tensor): Int32Array {
  checkCodebookShapes(op, codes, l, codebooks);
  const c = i32(codes, `${op} codes`);
  checkCodeRange(op, intRange(c), l.K);
  return c;
}

function addBias(out: Float32Array, bias: Float32Array, M: number, N: number): void {
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) out[m * N + n] += bias[n];
}

/** Below this many query rows (token-by-token decoding) attention keeps the reference loop (per-head products
 * too small to pay for copying K and V into the kernels' memory). */
const FAST_MIN_ROWS = 8;

export interface CpuBackendOptions {
  /**
   * "fast" (default): the hot ops (matmul, linear, codebook_linear, attention and its backward, kmeans_assign,
   * silu_mul) run WebAssembly SIMD kernels where the engine supports them; "reference": the plain TypeScript loops
   * everywhere, the oracle every fast kernel is tested against.
   */
  tier?: "fast" | "reference";
  /** Threads for the fast tier's kernels (default: every core this process may use; 1 = no workers). */
  threads?: number;
  /** Jobs below this many flops stay on the calling thread (default 2¹⁸; tests pass 0 to split every job). */
  parallelMinFlops?: number;
}

export class CpuBackend implements Backend {
  readonly name: string;
  private readonly kernels: WasmKernels | null;

  constructor(opts: CpuBackendOptions = {}) {
    const tier = opts.tier ?? "fast";
    if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1)) {
      throw new BackendError("backend.threads", `threads must be an integer ≥ 1, got ${opts.threads}`);
    }
    this.kernels = tier === "fast" ? wasmKernels(opts.threads, opts.parallelMinFlops) : null;
    this.name = this.kernels ? "cpu" : "reference";
  }

  /**
   * Resolves once the fast tier's worker threads have started (true), or false if they did not within 10 s.
   * Until then every job runs on the calling thread; browsers start workers only when their creator yields to
   * its event loop, so await this after creating the backend there (createBackend does).
   */
  async ready(): Promise<boolean> {
    return this.kernels ? this.kernels.ready() : true;
  }

  /** Chunks of kernel jobs the fast tier's worker threads have run (0 without workers). */
  workerChunks(): number {
    return this.kernels?.workerChunks() ?? 0;
  }

  /** What runs the ops: "reference (TypeScript)" or e.g. "WebAssembly SIMD, 2 threads". */
  describe(): string {
    const k = this.kernels;
    if (!k) return "reference (TypeScript loops)";
    return `WebAssembly ${k.relaxed ? "relaxed SIMD (FMA)" : "SIMD"}, ${k.threads} thread${k.threads > 1 ? "s" : ""}`;
  }

  supports(_op: OpName): boolean {
    return true;
  }

  upload(data: Float32Array, shape: Shape): Tensor {
    return new CpuTensor(data, shape);
  }

  uploadInt(data: Int32Array, shape: Shape): Tensor {
    return new CpuTensor(data, shape);
  }

  assign(t: Tensor, data: Float32Array): void {
    const d = f32(t, "assign target");
    if (d.length !== data.length)
      throw new BackendError("backend.shape", `assign: ${data.length} values for a tensor of ${d.length}`);
    d.set(data);
  }

  zeros(shape: Shape): Tensor {
    return new CpuTensor(new Float32Array(numel(shape)), shape);
  }

  async read(t: Tensor): Promise<Float32Array> {
    return f32(t, "read");
  }

  async readInt(t: Tensor): Promise<Int32Array> {
    return i32(t, "readInt");
  }

  dispose(_t: Tensor): void {
    // host memory: the garbage collector frees it
  }

  reshape(t: Tensor, shape: Shape): Tensor {
    checkReshape(t, shape);
    if (!(t instanceof CpuTensor))
      throw new BackendError("backend.foreign", "reshape: tensor is not from the cpu backend");
    return new CpuTensor(t.data, shape);
  }

  matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
    const { M, K, N } = checkMatmul(a, b, opts);
    const tA = opts.transposeA ?? false;
    const tB = opts.transposeB ?? false;
    const out = new Float32Array(M * N);
    const run = this.kernels ? this.kernels.matmul : matmul_forward;
    run(out, f32(a, "matmul a"), f32(b, "matmul b"), M, K, N, tA, tB);
    return new CpuTensor(out, [M, N]);
  }

  linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    const { M, K, N } = checkLinear(x, weight, bias);
    const out = new Float32Array(M * N);
    const xs = f32(x, "linear x");
    const ws = f32(weight, "linear weight");
    if (this.kernels) {
      this.kernels.matmul(out, xs, ws, M, K, N, false, true);
      if (bias) addBias(out, f32(bias, "linear bias"), M, N);
    } else {
      linear_forward(out, xs, ws, bias && f32(bias, "linear bias"), M, K, N);
    }
    return new CpuTensor(out, [...x.shape.slice(0, -1), N]);
  }

  codebook_linear(x: Tensor, codes: Tensor, codebooks: Tensor, bias: Tensor | null, l: CodebookLayout): Tensor {
    checkCodebookLinear(x, bias, l);
    if (!this.kernels) {
      // the maths: decode W, then y = x·Wᵀ + b
      const w = this.codebook_decode(codes, codebooks, l);
      return this.linear(x, w, bias);
    }
    const c = checkCodebook("codebook_linear", codes, l, codebooks);
    const M = numel(x.shape) / l.in;
    const out = new Float32Array(M * l.out);
    const cb = f32(codebooks, "codebook_linear codebooks");
    this.kernels.codebookMatmul(out, f32(x, "codebook_linear x"), c, cb, M, l.in, l.out, l.nb, l.K, l.d, l.partCols);
    if (bias) addBias(out, f32(bias, "codebook_linear bias"), M, l.out);
    return new CpuTensor(out, [...x.shape.slice(0, -1), l.out]);
  }

  add(a: Tensor, b: Tensor): Tensor {
    const { n, div, modulus } = checkBroadcast("add", a, b);
    const out = new Float32Array(n);
    add_forward(out, f32(a, "add a"), f32(b, "add b"), n, div, modulus);
    return new CpuTensor(out, a.shape);
  }

  mul(a: Tensor, b: Tensor): Tensor {
    const { n, div, modulus } = checkBroadcast("mul", a, b);
    const out = new Float32Array(n);
    mul_forward(out, f32(a, "mul a"), f32(b, "mul b"), n, div, modulus);
    return new CpuTensor(out, a.shape);
  }

  rms_norm(x: Tensor, weight: Tensor, eps: number): Tensor {
    const C = checkRmsNorm("rms_norm", x, weight);
    const out = new Float32Array(numel(x.shape));
    rms_norm_forward(out, f32(x, "rms_norm x"), f32(weight, "rms_norm weight"), numel(x.shape) / C, C, eps);
    return new CpuTensor(out, x.shape);
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor, p: RopeParams): Tensor {
    const { B, T } = checkRope(x, cos, p);
    const out = new Float32Array(numel(x.shape));
    rope_forward(
      out,
      f32(x, "rope x"),
      f32(cos, "rope cos"),
      f32(sin, "rope sin"),
      B,
      T,
      p.numHeads,
      p.headDim,
      p.startPos,
      p.inverse ?? false,
    );
    return new CpuTensor(out, x.shape);
  }

  attention(q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): Tensor {
    const shape = checkAttention("attention", q, k, v, p);
    const out = new Float32Array(numel(q.shape));
    const args = [out, f32(q, "attention q"), f32(k, "attention k"), f32(v, "attention v"), shape] as const;
    if (this.kernels && shape.T >= FAST_MIN_ROWS) attention_matmul_forward(...args, this.kernels.matmul);
    else attention_forward(...args);
    return new CpuTensor(out, q.shape);
  }

  silu_mul(gate: Tensor, up: Tensor): Tensor {
    checkSiluMul(gate, up);
    const n = numel(gate.shape);
    const out = new Float32Array(n);
    (this.kernels ? this.kernels.siluMul : silu_mul_forward)(
      out,
      f32(gate, "silu_mul gate"),
      f32(up, "silu_mul up"),
      n,
    );
    return new CpuTensor(out, gate.shape);
  }

  embedding(ids: Tensor, table: Tensor): Tensor {
    const { V, C } = checkEmbedding(table);
    const idv = i32(ids, "embedding ids");
    checkTokenIds("embedding", intRange(idv), V, false);
    const out = new Float32Array(idv.length * C);
    embedding_forward(out, idv, f32(table, "embedding table"), C);
    return new CpuTensor(out, [...ids.shape, C]);
  }

  softmax(x: Tensor): Tensor {
    const C = last(x.shape);
    const out = new Float32Array(numel(x.shape));
    softmax_forward(out, f32(x, "softmax x"), numel(x.shape) / C, C);
    return new CpuTensor(out, x.shape);
  }

  log_softmax(x: Tensor): Tensor {
    const C = last(x.shape);
    const out = new Float32Array(numel(x.shape));
    log_softmax_forward(out, f32(x, "log_softmax x"), numel(x.shape) / C, C);
    return new CpuTensor(out, x.shape);
  }

  cross_entropy(logits: Tensor, targets: Tensor): Tensor {
    const { V, R: rows } = checkCrossEntropy(logits, targets);
    const t = i32(targets, "cross_entropy targets");
    checkTokenIds("cross_entropy", intRange(t), V, true);
    const out = new Float32Array(rows);
    cross_entropy_forward(out, f32(logits, "cross_entropy logits"), t, rows, V);
    return new CpuTensor(out, targets.shape);
  }

  write_rows(dst: Tensor, src: Tensor, offset: number): void {
    const { B, cap, T } = checkWriteRows(dst, src, offset);
    const C = last(dst.shape);
    const d = f32(dst, "write_rows dst");
    const s = f32(src, "write_rows src");
    for (let b = 0; b < B; b++) d.set(s.subarray(b * T * C, (b + 1) * T * C), (b * cap + offset) * C);
  }

  narrow(x: Tensor, start: number, length: number): Tensor {
    checkNarrow(x, start, length);
    const [B, T, C] = x.shape;
    const s = f32(x, "narrow x");
    const out = new Float32Array(B * length * C);
    for (let b = 0; b < B; b++) out.set(s.subarray((b * T + start) * C, (b * T + start + length) * C), b * length * C);
    return new CpuTensor(out, [B, length, C]);
  }

  kmeans_assign(x: Tensor, centroids: Tensor): { codes: Tensor; distances: Tensor } {
    const { N, d, K } = checkKmeansAssign(x, centroids);
    const codes = new Int32Array(N);
    const distances = new Float32Array(N);
    const run = this.kernels ? this.kernels.kmeansAssign : kmeans_assign_forward;
    run(codes, distances, f32(x, "kmeans_assign x"), f32(centroids, "kmeans_assign c"), N, K, d);
    return { codes: new CpuTensor(codes, [N]), distances: new CpuTensor(distances, [N]) };
  }

  kmeans_update(x: Tensor, codes: Tensor, K: number): { sums: Tensor; counts: Tensor } {
    const { N, d } = checkKmeansUpdate(x, codes);
    const c = i32(codes, "kmeans_update codes");
    checkCodeRange("kmeans_update", intRange(c), K);
    const sums = new Float32Array(K * d);
    const counts = new Float32Array(K);
    kmeans_update_forward(sums, counts, f32(x, "kmeans_update x"), c, N, K, d);
    return { sums: new CpuTensor(sums, [K, d]), counts: new CpuTensor(counts, [K]) };
  }

  codebook_decode(codes: Tensor, codebooks: Tensor, l: CodebookLayout): Tensor {
    const c = checkCodebook("codebook_decode", codes, l, codebooks);
    const w = new Float32Array(l.out * l.in);
    codebook_decode_forward(w, c, f32(codebooks, "codebook_decode codebooks"), l.out, l.in, l.d, l.nb, l.K, l.partCols);
    return new CpuTensor(w, [l.out, l.in]);
  }

  rtn_decode(packed: Tensor, scales: Tensor, zeros: Tensor, l: RtnLayout): Tensor {
    checkRtn(packed, scales, zeros, l);
    const w = new Float32Array(l.out * l.in);
    rtn_decode_forward(
      w,
      i32(packed, "rtn_decode packed"),
      f32(scales, "rtn_decode scales"),
      f32(zeros, "rtn_decode zeros"),
      l.out,
      l.in,
      l.bits,
      l.group,
    );
    return new CpuTensor(w, [l.out, l.in]);
  }

  rms_norm_backward(x: Tensor, weight: Tensor, dy: Tensor, eps: number): { dx: Tensor; dweight: Tensor } {
    const C = checkRmsNorm("rms_norm_backward", x, weight, dy);
    const dx = new Float32Array(numel(x.shape));
    const dweight = new Float32Array(C);
    rms_norm_backward_forward(
      dx,
      dweight,
      f32(x, "rms_norm_backward x"),
      f32(weight, "rms_norm_backward weight"),
      f32(dy, "rms_norm_backward dy"),
      numel(x.shape) / C,
      C,
      eps,
    );
    return { dx: new CpuTensor(dx, x.shape), dweight: new CpuTensor(dweight, [C]) };
  }

  attention_backward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dout: Tensor,
    p: AttentionParams,
  ): { dq: Tensor; dk: Tensor; dv: Tensor } {
    const shape = checkAttentionBackward(q, k, v, dout, p);
    const dq = new Float32Array(numel(q.shape));
    const dk = new Float32Array(numel(k.shape));
    const dv = new Float32Array(numel(k.shape));
    const args = [
      dq,
      dk,
      dv,
      f32(q, "attention_backward q"),
      f32(k, "attention_backward k"),
      f32(v, "attention_backward v"),
      f32(dout, "attention_backward dout"),
      shape,
    ] as const;
    if (this.kernels && shape.T >= FAST_MIN_ROWS) attention_matmul_backward(...args, this.kernels.matmul);
    else attention_backward_forward(...args);
    return { dq: new CpuTensor(dq, q.shape), dk: new CpuTensor(dk, k.shape), dv: new CpuTensor(dv, k.shape) };
  }

  silu_mul_backward(gate: Tensor, up: Tensor, dy: Tensor): { dgate: Tensor; dup: Tensor } {
    checkSiluMulBackward(gate, up, dy);
    const n = numel(gate.shape);
    const dgate = new Float32Array(n);
    const dup = new Float32Array(n);
    silu_mul_backward_forward(
      dgate,
      dup,
      f32(gate, "silu_mul_backward gate"),
      f32(up, "silu_mul_backward up"),
      f32(dy, "silu_mul_backward dy"),
      n,
    );
    return { dgate: new CpuTensor(dgate, gate.shape), dup: new CpuTensor(dup, gate.shape) };
  }

  sum_rows(x: Tensor): Tensor {
    const C = last(x.shape);
    const out = new Float32Array(C);
    sum_rows_forward(out, f32(x, "sum_rows x"), numel(x.shape) / C, C);
    return new CpuTensor(out, [C]);
  }

  mse(pred: Tensor, target: Tensor): { loss: Tensor; grad: Tensor } {
    const n = checkMse(pred, target);
    const grad = new Float32Array(n);
    const loss = mse_forward(grad, f32(pred, "mse pred"), f32(target, "mse target"), n);
    return { loss: new CpuTensor(Float32Array.of(loss), [1]), grad: new CpuTensor(grad, pred.shape) };
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): void {
    checkAdamw(param, grad, m, v, p.step);
    adamw_forward(
      f32(param, "adamw param"),
      f32(grad, "adamw grad"),
      f32(m, "adamw m"),
      f32(v, "adamw v"),
      numel(param.shape),
      p.lr,
      p.beta1,
      p.beta2,
      p.eps,
      p.weightDecay,
      p.step,
    );
  }

  codebook_grad(dW: Tensor, codes: Tensor, l: CodebookLayout): Tensor {
    checkCodebookGrad(dW, l);
    const c = checkCodebook("codebook_grad", codes, l);
    const m = Math.ceil(l.nb / l.partCols);
    const grad = new Float32Array(m * l.K * l.d);
    codebook_grad_forward(grad, f32(dW, "codebook_grad dW"), c, l.out, l.in, l.d, l.nb, l.K, l.partCols);
    return new CpuTensor(grad, [m, l.K, l.d]);
  }

  scale(x: Tensor, s: number): Tensor {
    const n = numel(x.shape);
    const out = new Float32Array(n);
    scale_forward(out, f32(x, "scale x"), s, n);
    return new CpuTensor(out, x.shape);
  }

  cross_entropy_backward(logits: Tensor, targets: Tensor, scale: number): Tensor {
    const { V, R } = checkCrossEntropy(logits, targets);
    const t = i32(targets, "cross_entropy_backward targets");
    checkTokenIds("cross_entropy_backward", intRange(t), V, true);
    const out = new Float32Array(R * V);
    cross_entropy_backward_forward(out, f32(logits, "cross_entropy_backward logits"), t, R, V, scale);
    return new CpuTensor(out, logits.shape);
  }

  kl_div(
    student: Tensor,
    teacher: Tensor,
    tau: number,
    scale: number,
    mask: Tensor | null = null,
  ): { loss: Tensor; grad: Tensor } {
    const { V, R } = checkKlDiv(student, teacher, tau, mask);
    const loss = new Float32Array(R);
    const grad = new Float32Array(R * V);
    const m = mask ? i32(mask, "kl_div mask") : null;
    kl_div_forward(loss, grad, f32(student, "kl_div student"), f32(teacher, "kl_div teacher"), R, V, tau, scale, m);
    return { loss: new CpuTensor(loss, student.shape.slice(0, -1)), grad: new CpuTensor(grad, student.shape) };
  }

  embedding_backward(ids: Tensor, dy: Tensor, V: number): Tensor {
    const { N, C } = checkEmbeddingBackward(ids, dy, V);
    const idv = i32(ids, "embedding_backward ids");
    checkTokenIds("embedding_backward", intRange(idv), V, false);
    const grad = new Float32Array(V * C);
    embedding_backward_forward(grad, idv, f32(dy, "embedding_backward dy"), N, V, C);
    return new CpuTensor(grad, [V, C]);
  }
}
