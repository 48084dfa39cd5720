// The CPU backend's fast tier: WebAssembly SIMD kernels (built from wasm/assembly/ by `node wasm/build.mjs`),
// instantiated on one linear memory that grows to the largest call. Each call copies its operands into the
// memory, describes the job in the control block and runs it in chunks, on worker threads sharing the memory
// where the engine allows (ChunkRunner). The module variant is picked once: relaxed SIMD (fused multiply-add)
// where the engine validates it (Node 20 only with --experimental-wasm-relaxed-simd), plain SIMD otherwise, and
// the shared-memory build when threads are used. Where WebAssembly SIMD is missing, `wasmKernels()` returns null
// and the backend keeps its reference loops. A call too large for the memory runs the reference loop.

import { codebook_decode_forward } from "../cpu/codebook_decode.js";
import { kmeans_assign_forward } from "../cpu/kmeans_assign.js";
import { linear_forward, matmul_forward } from "../cpu/matmul.js";
import { silu_mul_forward } from "../cpu/silu_mul.js";
import { KERNELS_WASM_BASE64 } from "./kernels_wasm.js";
import { ChunkRunner, CTRL, CTRL_BYTES, canBlock } from "./threads.js";

/** Op numbers of wasm/assembly/index.ts. */
const OP = { matmulNT: 2, kmeansAssign: 3, codebookMatmul: 4, transpose: 5, siluMul: 6 } as const;

/** Jobs below this many flops run on the calling thread alone (waking the workers costs tens of µs). */
export const PARALLEL_MIN_FLOPS = 1 << 18;
/** Chunk shapes: output rows × columns per chunk (columns a multiple of 4). */
const NT_ROWS = 64;
const NT_COLS = 32;
const KMEANS_VECTORS = 512;
const TRANSPOSE_ROWS = 64;
const SILU_ELEMENTS = 16384;
const CODEBOOK_ROWS = 64;
/** Up to this many rows the codebook matmul takes its vector (decoding) shape. */
const CODEBOOK_VECTOR_ROWS = 4;
/** Input columns of W decoded per panel in the codebook matmul (scratch 8d · 256 floats per thread). */
const CODEBOOK_KB = 256;

const PAGE = 65536;

export interface WasmKernels {
  /** Threads a large call runs on, the caller's included. */
  readonly threads: number;
  /** Whether the module multiplies-adds with relaxed SIMD's fused multiply-add. */
  readonly relaxed: boolean;
  /** Chunks run by worker threads so far (0 on one thread). */
  workerChunks(): number;
  /** Resolves true once the worker threads have started (jobs run on the calling thread alone until then). */
  ready(): Promise<boolean>;
  /** As kmeans_assign_forward (f32 arithmetic: near-ties may resolve differently from the f64 reference). */
  kmeansAssign: typeof kmeans_assign_forward;
  /** As matmul_forward: out [M, N] = op(A) · op(B) (f32 accumulation). */
  matmul: typeof matmul_forward;
  /** As silu_mul_forward: out = silu(gate) · up over n elements (f32 exp). */
  siluMul: typeof silu_mul_forward;
  /**
   * out [M, outF] = x [M, inF] · Wᵀ with W = codebook_decode(codes, codebooks) never formed: codes i32 [inF, nb],
   * codebooks f32 [m, K, d], part(v) = ⌊v / partCols⌋ (no bias).
   */
  codebookMatmul(
    out: Float32Array,
    x: Float32Array,
    codes: Int32Array,
    codebooks: Float32Array,
    M: number,
    inF: number,
    outF: number,
    nb: number,
    K: number,
    d: number,
    partCols: number,
  ): void;
}

function decodeBase64(s: string): Uint8Array {
  if (typeof Buffer !== "undefined") return new Uint8Array(Buffer.from(s, "base64"));
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The default thread count: the cores this process may use. */
export function defaultThreads(): number {
  const os = typeof process !== "undefined" ? process.getBuiltinModule?.("node:os") : undefined;
  if (os) return os.availableParallelism();
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

/** A shared memory with the largest maximum this engine will reserve, or null. */
function sharedMemory(): WebAssembly.Memory | null {
  for (const maximum of [65536, 16384, 4096]) {
    try {
      return new WebAssembly.Memory({ initial: 1, maximum, shared: true });
    } catch {
      // try a smaller reservation
    }
  }
  return null;
}

const cache = new Map<string, WasmKernels | null>();

/**
 * The kernels on `threads` threads (default: every core), or null where this engine cannot run them (no
 * WebAssembly or no SIMD). Jobs of fewer than `parallelMinFlops` flops stay on the calling thread (tests pass
 * 0 to split every job). One instance (and one set of workers) per setting per process.
 */
export function wasmKernels(threads = defaultThreads(), parallelMinFlops = PARALLEL_MIN_FLOPS): WasmKernels | null {
  const want = Math.max(1, Math.floor(threads));
  const key = `${want}/${parallelMinFlops}`;
  let k = cache.get(key);
  if (k === undefined) {
    k = createKernels(want, parallelMinFlops);
    cache.set(key, k);
  }
  return k;
}

function createKernels(threads: number, parallelMinFlops: number): WasmKernels | null {
  if (typeof WebAssembly === "undefined") return null;
  const memory = threads > 1 && canBlock() ? sharedMemory() : null;
  const shared = memory !== null;
  const pick = (relaxed: boolean): Uint8Array => {
    const B = KERNELS_WASM_BASE64;
    return decodeBase64(relaxed ? (shared ? B.relaxedShared : B.relaxed) : shared ? B.simdShared : B.simd);
  };
  let bytes = pick(true);
  const relaxed = WebAssembly.validate(bytes);
  if (!relaxed) bytes = pick(false);
  if (!WebAssembly.validate(bytes)) return null;
  const mem = memory ?? new WebAssembly.Memory({ initial: 1 });
  const module = new WebAssembly.Module(bytes);
  const runChunk = new WebAssembly.Instance(module, { env: { memory: mem } }).exports.runChunk as (
    c: number,
    tid: number,
  ) => void;
  const runner = new ChunkRunner(runChunk, module, mem, shared ? threads : 1);
  const T = runner.threads;

  /** Byte offsets of regions of the given sizes (64-byte aligned, after the control block), or null if the
   * memory cannot grow that far. */
  const reserve = (sizes: number[]): number[] | null => {
    const offsets: number[] = [];
    let p = CTRL_BYTES;
    for (const s of sizes) {
      offsets.push(p);
      p += Math.ceil(s / 64) * 64;
    }
    const need = Math.ceil(p / PAGE) - mem.buffer.byteLength / PAGE;
    if (need > 0) {
      try {
        mem.grow(need);
      } catch {
        return null;
      }
    }
    return offsets;
  };
  const job = (op: number, args: number[], chunks: number, flops: number): void => {
    const ctrl = new Int32Array(mem.buffer, 0, CTRL_BYTES / 4);
    ctrl[CTRL.op] = op;
    ctrl.set(args, CTRL.args);
    runner.run(chunks, flops >= parallelMinFlops);
  };

  /** dst [C, R] = src [R, C]ᵀ (byte offsets into the memory). */
  const transpose = (src: number, dst: number, R: number, C: number): void => {
    const chunks = Math.ceil(R / TRANSPOSE_ROWS);
    job(OP.transpose, [src, dst, R, C, TRANSPOSE_ROWS], chunks, 64 * R * C);
  };

  const kernels: WasmKernels = {
    threads: T,
    relaxed,
    workerChunks: () => runner.workerChunks(),
    ready: () => runner.ready(),
    kmeansAssign(codes, distances, x, c, N, K, d) {
      const Kp = Math.ceil(K / 8) * 8;
      const at = reserve([N * d * 4, d * Kp * 4, Kp * 4, N * 4, N * 4, T * 64 * d]);
      if (!at) return kmeans_assign_forward(codes, distances, x, c, N, K, d);
      const [ox, oc, on, ocodes, odist, os] = at;
      const f32 = new Float32Array(mem.buffer);
      f32.set(x.subarray(0, N * d), ox / 4);
      // centroids transposed [d, Kp], padding columns zero with norm +∞ (never chosen)
      const cT = f32.subarray(oc / 4, oc / 4 + d * Kp);
      const cn = f32.subarray(on / 4, on / 4 + Kp);
      cT.fill(0);
      for (let kk = 0; kk < Kp; kk++) {
        if (kk >= K) {
          cn[kk] = Number.POSITIVE_INFINITY;
          continue;
        }
        let s = 0;
        for (let j = 0; j < d; j++) {
          const v = c[kk * d + j];
          cT[j * Kp + kk] = v;
          s += v * v;
        }
        cn[kk] = s;
      }
      const chunks = Math.ceil(N / KMEANS_VECTORS);
      job(OP.kmeansAssign, [ox, N, oc, on, Kp, d, ocodes, odist, os, KMEANS_VECTORS], chunks, 2 * N * K * d);
      codes.set(new Int32Array(mem.buffer, ocodes, N));
      distances.set(new Float32Array(mem.buffer, odist, N));
    },

    matmul(out, a, b, M, K, N, tA, tB) {
      // the NT kernel: A [M, K], B [N, K]; an operand stored the other way round is copied in as stored and
      // transposed by a kernel job into a second region
      const at = reserve([M * K * 4, N * K * 4, M * N * 4, (tA ? M * K : 0) * 4, (tB ? 0 : N * K) * 4]);
      if (!at) return matmul_forward(out, a, b, M, K, N, tA, tB);
      const [oa, ob, oc, oaRaw, obRaw] = at;
      const f32 = new Float32Array(mem.buffer);
      if (tA) {
        f32.set(a.subarray(0, M * K), oaRaw / 4);
        transpose(oaRaw, oa, K, M);
      } else f32.set(a.subarray(0, M * K), oa / 4);
      if (tB) f32.set(b.subarray(0, N * K), ob / 4);
      else {
        f32.set(b.subarray(0, N * K), obRaw / 4);
        transpose(obRaw, ob, K, N);
      }
      const cc = Math.ceil(N / NT_COLS);
      job(OP.matmulNT, [oa, ob, oc, M, K, N, NT_ROWS, NT_COLS, cc], Math.ceil(M / NT_ROWS) * cc, 2 * M * N * K);
      out.set(new Float32Array(mem.buffer, oc, M * N));
    },

    siluMul(out, gate, up, n) {
      const at = reserve([n * 4, n * 4, n * 4]);
      if (!at) return silu_mul_forward(out, gate, up, n);
      const [og, ou, oo] = at;
      const f32 = new Float32Array(mem.buffer);
      f32.set(gate.subarray(0, n), og / 4);
      f32.set(up.subarray(0, n), ou / 4);
      // ~20 flop-equivalents per element (exp, divide): parallel from about 13,000 elements
      job(OP.siluMul, [og, ou, oo, n, SILU_ELEMENTS], Math.ceil(n / SILU_ELEMENTS), 20 * n);
      out.set(new Float32Array(mem.buffer, oo, n));
    },

    codebookMatmul(out, x, codes, codebooks, M, inF, outF, nb, K, d, partCols) {
      const panels = Math.ceil(nb / 8);
      const vector = M <= CODEBOOK_VECTOR_ROWS;
      const scratch = 8 * d * (CODEBOOK_KB + 4) * 4;
      const at = reserve([M * inF * 4, inF * nb * 4, codebooks.length * 4, M * outF * 4, T * scratch]);
      if (!at) {
        const w = new Float32Array(outF * inF);
        codebook_decode_forward(w, codes, codebooks, outF, inF, d, nb, K, partCols);
        return linear_forward(out, x, w, null, M, inF, outF);
      }
      const [ox, ocodes, ocb, oy, os] = at;
      new Float32Array(mem.buffer).set(x.subarray(0, M * inF), ox / 4);
      new Int32Array(mem.buffer).set(codes.subarray(0, inF * nb), ocodes / 4);
      new Float32Array(mem.buffer).set(codebooks, ocb / 4);
      const R = Math.min(M, CODEBOOK_ROWS);
      const args = [
        ox,
        M,
        inF,
        ocodes,
        nb,
        ocb,
        K,
        d,
        partCols,
        oy,
        outF,
        R,
        panels,
        os,
        scratch,
        CODEBOOK_KB,
        +vector,
      ];
      job(OP.codebookMatmul, args, Math.ceil(M / R) * panels, 2 * M * inF * outF);
      out.set(new Float32Array(mem.buffer, oy, M * outF));
    },
  };
  return kernels;
}
