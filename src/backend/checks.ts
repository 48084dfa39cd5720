// Argument checks every backend runs before an op (the contract's shapes and ranges), so each backend rejects the
// same calls with the same messages. Each returns the dims the op needs.

import { BackendError } from "../errors.js";
import { formatShape, numel, type Shape, shapeEquals } from "../tensor/shape.js";
import type { AttentionParams, CodebookLayout, MatmulOptions, RopeParams, RtnLayout, Tensor } from "./backend.js";
import type { AttentionShape } from "./cpu/attention.js";

export function check(cond: boolean, op: string, msg: string): void {
  if (!cond) throw new BackendError("backend.shape", `${op}: ${msg}`);
}

export function last(s: Shape): number {
  return s[s.length - 1];
}

/** Rows of a [..., C] tensor: every dim but the last, flattened. */
export function rows(t: Tensor): number {
  const C = last(t.shape);
  return C === 0 ? 0 : numel(t.shape) / C;
}

export function checkMatmul(a: Tensor, b: Tensor, opts: MatmulOptions): { M: number; K: number; N: number } {
  check(a.shape.length === 2 && b.shape.length === 2, "matmul", "operands must be 2-D");
  const [M, K] = opts.transposeA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [Kb, N] = opts.transposeB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  check(K === Kb, "matmul", `inner dims differ: ${formatShape(a.shape)} · ${formatShape(b.shape)}`);
  return { M, K, N };
}

export function checkLinear(x: Tensor, weight: Tensor, bias: Tensor | null): { M: number; K: number; N: number } {
  const K = last(x.shape);
  const [N, Kw] = weight.shape;
  check(
    weight.shape.length === 2 && K === Kw,
    "linear",
    `x ${formatShape(x.shape)} vs weight ${formatShape(weight.shape)}`,
  );
  check(bias === null || shapeEquals(bias.shape, [N]), "linear", `bias must be [${N}]`);
  return { M: rows(x), K, N };
}

export function checkAttention(op: string, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): AttentionShape {
  const { numHeads: H, numKvHeads: Hkv, headDim: D } = p;
  check(q.shape.length === 3 && last(q.shape) === H * D, op, `q must be [B, T, ${H}·${D}]`);
  check(shapeEquals(k.shape, v.shape) && k.shape.length === 3, op, "k and v must be equal-shaped [B, S, C]");
  check(last(k.shape) === Hkv * D && k.shape[0] === q.shape[0], op, `k must be [B, S, ${Hkv}·${D}]`);
  check(H % Hkv === 0, op, "numHeads must be a multiple of numKvHeads");
  const [B, T] = q.shape;
  const S = k.shape[1];
  check(p.kvLength <= S && p.queryOffset + T <= p.kvLength, op, "kvLength out of range");
  return { B, T, S, H, Hkv, D, kvLength: p.kvLength, queryOffset: p.queryOffset, slidingWindow: p.slidingWindow };
}

/** Checks the shapes of codes (and codebooks, when given) against the layout; returns the number of parts m. */
export function checkCodebookShapes(op: string, codes: Tensor, l: CodebookLayout, codebooks?: Tensor): number {
  check(codes.dtype === "i32", op, "codes must be an i32 tensor");
  check(shapeEquals(codes.shape, [l.in, l.nb]), op, `codes must be [${l.in}, ${l.nb}]`);
  const m = Math.ceil(l.nb / l.partCols);
  if (codebooks) check(shapeEquals(codebooks.shape, [m, l.K, l.d]), op, `codebooks must be [${m}, ${l.K}, ${l.d}]`);
  return m;
}

/** The extremes of an i32 tensor's values and where they are: all the range checks need (codes, token ids). */
export interface IntRange {
  lo: number;
  loAt: number;
  hi: number;
  hiAt: number;
}

const ranges = new WeakMap<Int32Array, IntRange>();

/**
 * The range of a host array, computed once per array (no op writes an i32 tensor a caller uploaded, so it holds).
 * Empty: lo 0, hi −1 (passes every check).
 */
export function intRange(a: Int32Array): IntRange {
  let r = ranges.get(a);
  if (!r) {
    r = { lo: 0, loAt: -1, hi: -1, hiAt: -1 };
    if (a.length > 0) r = { lo: a[0], loAt: 0, hi: a[0], hiAt: 0 };
    for (let i = 1; i < a.length; i++) {
      if (a[i] < r.lo) [r.lo, r.loAt] = [a[i], i];
      else if (a[i] > r.hi) [r.hi, r.hiAt] = [a[i], i];
    }
    ranges.set(a, r);
  }
  return r;
}

/** Checks that every code lies in [0, K). */
export function checkCodeRange(op: string, r: IntRange, K: number): void {
  check(r.lo >= 0, op, `code ${r.lo} at position ${r.loAt} is negative`);
  check(r.hi < K, op, `code ${r.hi} at position ${r.hiAt} is ≥ K = ${K}`);
}

/** Checks token ids against a vocabulary of V; `negativeOk`: ids < 0 mean "ignored" (targets). */
export function checkTokenIds(op: string, r: IntRange, V: number, negativeOk: boolean): void {
  const what = negativeOk ? "target" : "token id";
  const fail = (id: number, at: number) => {
    throw new BackendError("backend.token_id", `${op}: ${what} ${id} at position ${at} is outside [0, ${V})`);
  };
  if (r.hi >= V) fail(r.hi, r.hiAt);
  if (!negativeOk && r.lo < 0) fail(r.lo, r.loAt);
}

export function checkRope(x: Tensor, cos: Tensor, p: RopeParams): { B: number; T: number } {
  check(
    x.shape.length === 3 && last(x.shape) === p.numHeads * p.headDim,
    "rope",
    `x must be [B, T, ${p.numHeads}·${p.headDim}]`,
  );
  const [B, T] = x.shape;
  check(cos.shape[1] === p.headDim / 2 && cos.shape[0] >= p.startPos + T, "rope", "cos/sin table too short");
  return { B, T };
}

export function checkRtn(packed: Tensor, scales: Tensor, zeros: Tensor, l: RtnLayout): void {
  const ng = Math.ceil(l.in / l.group);
  const words = Math.ceil((l.out * l.in * l.bits) / 32);
  check(shapeEquals(packed.shape, [words]), "rtn_decode", `packed codes must be [${words}] i32 words`);
  check(
    shapeEquals(scales.shape, [l.out, ng]) && shapeEquals(zeros.shape, [l.out, ng]),
    "rtn_decode",
    "scales/zeros shape",
  );
}

export function checkWriteRows(dst: Tensor, src: Tensor, offset: number): { B: number; cap: number; T: number } {
  check(dst.shape.length === 3 && src.shape.length === 3, "write_rows", "dst and src must be [B, rows, C]");
  const [B, cap, C] = dst.shape;
  const T = src.shape[1];
  check(src.shape[0] === B && src.shape[2] === C && offset + T <= cap, "write_rows", "src does not fit dst");
  return { B, cap, T };
}

export function checkNarrow(x: Tensor, start: number, length: number): void {
  check(x.shape.length === 3 && start + length <= x.shape[1], "narrow", "range outside dim 1");
}

export function checkAdamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, step: number): void {
  check(
    [grad, m, v].every((t) => shapeEquals(t.shape, param.shape)),
    "adamw",
    "param, grad, m and v must have one shape",
  );
  check(Number.isInteger(step) && step >= 1, "adamw", `step must be an integer ≥ 1, got ${step}`);
}

// --- the checks of single ops (each backend calls them first) ------------------------------------------------

/** The data of an upload fits its shape. */
export function checkUpload(data: ArrayLike<number>, shape: Shape): void {
  check(data.length === numel(shape), "upload", `data of ${data.length} elements does not fit ${formatShape(shape)}`);
}

export function checkReshape(t: Tensor, shape: Shape): void {
  check(numel(shape) === numel(t.shape), "reshape", `${formatShape(t.shape)} has no view as ${formatShape(shape)}`);
}

/** codebook_linear's x and bias (the codes and codebooks: checkCodebookShapes). */
export function checkCodebookLinear(x: Tensor, bias: Tensor | null, l: CodebookLayout): void {
  check(last(x.shape) === l.in, "codebook_linear", `x must be [..., ${l.in}], got ${formatShape(x.shape)}`);
  check(bias === null || shapeEquals(bias.shape, [l.out]), "codebook_linear", `bias must be [${l.out}]`);
}

/**
 * The broadcast of add's and mul's b over a, as b's index of a's flat element i: b[⌊i / div⌋ mod modulus] (same shape: div 1, modulus n;
 * per column [C]: div 1, modulus C; per row [..., 1]: div C, modulus n / C).
 */
export function checkBroadcast(op: string, a: Tensor, b: Tensor): { n: number; div: number; modulus: number } {
  const n = numel(a.shape);
  const C = last(a.shape);
  if (shapeEquals(a.shape, b.shape)) return { n, div: 1, modulus: Math.max(n, 1) };
  if (shapeEquals(b.shape, [C])) return { n, div: 1, modulus: Math.max(C, 1) };
  if (shapeEquals(b.shape, [...a.shape.slice(0, -1), 1]))
    return { n, div: Math.max(C, 1), modulus: Math.max(n / Math.max(C, 1), 1) };
  throw new BackendError(
    "backend.shape",
    `${op}: b ${formatShape(b.shape)} must be a's shape ${formatShape(a.shape)}, [${C}] or a's rows × 1`,
  );
}

/** rms_norm (and its backward, with dy): returns the row length C. */
export function checkRmsNorm(op: string, x: Tensor, weight: Tensor, dy?: Tensor): number {
  const C = last(x.shape);
  check(shapeEquals(weight.shape, [C]), op, `weight must be [${C}]`);
  if (dy) check(shapeEquals(dy.shape, x.shape), op, "dy must have x's shape");
  return C;
}

export function checkSiluMul(gate: Tensor, up: Tensor): void {
  check(shapeEquals(gate.shape, up.shape), "silu_mul", "gate and up shapes differ");
}

export function checkSiluMulBackward(gate: Tensor, up: Tensor, dy: Tensor): void {
  check(
    shapeEquals(gate.shape, up.shape) && shapeEquals(gate.shape, dy.shape),
    "silu_mul_backward",
    "gate, up and dy shapes differ",
  );
}

/** Returns the vocabulary V and width C of the table (the ids: checkTokenIds). */
export function checkEmbedding(table: Tensor): { V: number; C: number } {
  check(table.shape.length === 2, "embedding", "table must be [V, C]");
  const [V, C] = table.shape;
  return { V, C };
}

/** Returns the vocabulary V and the rows R of the logits (the targets' values: checkTokenIds). */
export function checkCrossEntropy(logits: Tensor, targets: Tensor): { V: number; R: number } {
  const V = last(logits.shape);
  const R = rows(logits);
  check(numel(targets.shape) === R, "cross_entropy", "one target per row of logits");
  return { V, R };
}

export function checkKmeansAssign(x: Tensor, centroids: Tensor): { N: number; d: number; K: number } {
  check(x.shape.length === 2 && centroids.shape.length === 2, "kmeans_assign", "x and centroids must be 2-D");
  const [N, d] = x.shape;
  const K = centroids.shape[0];
  check(centroids.shape[1] === d && K >= 1, "kmeans_assign", `centroids must be [K ≥ 1, ${d}]`);
  return { N, d, K };
}

/** Returns N and d of x (the codes' values: checkCodeRange). */
export function checkKmeansUpdate(x: Tensor, codes: Tensor): { N: number; d: number } {
  const [N, d] = x.shape;
  check(x.shape.length === 2 && shapeEquals(codes.shape, [N]), "kmeans_update", "codes must be [N] for x [N, d]");
  return { N, d };
}

export function checkAttentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dout: Tensor,
  p: AttentionParams,
): AttentionShape {
  const s = checkAttention("attention_backward", q, k, v, p);
  check(shapeEquals(dout.shape, q.shape), "attention_backward", "dout must have q's shape");
  return s;
}

/** Returns the number of elements n (≥ 1). */
export function checkMse(pred: Tensor, target: Tensor): number {
  check(
    shapeEquals(pred.shape, target.shape),
    "mse",
    `shapes differ: ${formatShape(pred.shape)} vs ${formatShape(target.shape)}`,
  );
  const n = numel(pred.shape);
  check(n > 0, "mse", "empty tensors");
  return n;
}

/** codebook_grad's dW (the codes: checkCodebookShapes). */
export function checkCodebookGrad(dW: Tensor, l: CodebookLayout): void {
  check(shapeEquals(dW.shape, [l.out, l.in]), "codebook_grad", `dW must be [${l.out}, ${l.in}]`);
}

/** kl_div: student and teacher of one shape [..., V], τ > 0. Returns V and the rows R. */
export function checkKlDiv(
  student: Tensor,
  teacher: Tensor,
  tau: number,
  mask?: Tensor | null,
): { V: number; R: number } {
  check(
    shapeEquals(student.shape, teacher.shape),
    "kl_div",
    `student ${formatShape(student.shape)} and teacher ${formatShape(teacher.shape)} must have one shape`,
  );
  check(student.shape.length >= 1 && last(student.shape) >= 1, "kl_div", "logits must be [..., V ≥ 1]");
  check(tau > 0 && Number.isFinite(tau), "kl_div", `the temperature must be a finite number > 0, got ${tau}`);
  if (mask) check(numel(mask.shape) === rows(student), "kl_div", "the mask must have one entry per row");
  return { V: last(student.shape), R: rows(student) };
}

/** embedding_backward: dy [...ids.shape, C]; returns the positions N and the width C (the ids: checkTokenIds). */
export function checkEmbeddingBackward(ids: Tensor, dy: Tensor, V: number): { N: number; C: number } {
  const N = numel(ids.shape);
  const C = last(dy.shape);
  check(
    shapeEquals(dy.shape, [...ids.shape, C]),
    "embedding_backward",
    `dy ${formatShape(dy.shape)} must be [...ids ${formatShape(ids.shape)}, C]`,
  );
  check(Number.isInteger(V) && V >= 1, "embedding_backward", `V must be an integer ≥ 1, got ${V}`);
  return { N, C };
}
