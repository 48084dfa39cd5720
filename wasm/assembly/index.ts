// The WebAssembly kernels of the CPU backend's fast tier (one file per op beside this one), behind one entry
// point: `runChunk(c, tid)` runs chunk c of the job described in the control block at address 0, so the main
// thread and the worker threads (sharing this memory) split a job by taking chunk numbers from a counter.
//
// Control block, i32 words: 0 job sequence · 1 next chunk · 2 chunk count · 3 workers done · 4 op ·
// 8.. the op's arguments (byte offsets and sizes, as listed per op below). The host fills it (src/backend/wasm).

import { codebookBlock } from "./codebook_matmul";
import { kmeansAssign } from "./kmeans_assign";
import { siluMul } from "./silu_mul";
import { ntBlock } from "./matmul";
import { transposeRows } from "./transpose";

const OP_MATMUL_NT = 2;
const OP_KMEANS_ASSIGN = 3;
const OP_CODEBOOK_MATMUL = 4;
const OP_TRANSPOSE = 5;
const OP_SILU_MUL = 6;

@inline function arg(i: i32): i32 {
  return load<i32>(<usize>(8 + i) << 2);
}

/** An argument that is a byte offset (unsigned: memory may reach 4 GiB). */
@inline function ptr(i: i32): usize {
  return <usize>load<u32>(<usize>(8 + i) << 2);
}

export function runChunk(c: i32, tid: i32): void {
  const op = load<i32>(16);
  if (op == OP_MATMUL_NT) {
    // C [M, N] = A [M, K] · B [N, K]ᵀ: a, b, c, M, K, N, rows per chunk, columns per chunk, column chunks
    const M = arg(3);
    const N = arg(5);
    const R = arg(6);
    const P = arg(7);
    const cc = arg(8);
    const i0 = (c / cc) * R;
    const j0 = (c % cc) * P;
    const i1 = min(M, i0 + R);
    const j1 = min(N, j0 + P);
    const K = arg(4);
    ntBlock(ptr(0), K, ptr(1), K, ptr(2), N, K, i0, i1, j0, j1, false);
  } else if (op == OP_TRANSPOSE) {
    // dst [C, R] = src [R, C]ᵀ: src, dst, R, C, source rows per chunk
    const r0 = c * arg(4);
    transposeRows(ptr(0), ptr(1), arg(2), arg(3), r0, min(arg(2), r0 + arg(4)));
  } else if (op == OP_SILU_MUL) {
    // gate, up, out, n, elements per chunk
    const i0 = c * arg(4);
    siluMul(ptr(0), ptr(1), ptr(2), i0, min(arg(3), i0 + arg(4)));
  } else if (op == OP_KMEANS_ASSIGN) {
    // x, N, cT, cn, Kp, d, codes, dist, scratch (64·d bytes per thread), vectors per chunk
    const d = arg(5);
    const per = arg(9);
    const n0 = c * per;
    const n = min(per, arg(1) - n0);
    kmeansAssign(
      ptr(0) + (<usize>(n0 * d) << 2),
      n,
      ptr(2),
      ptr(3),
      arg(4),
      d,
      ptr(6) + (<usize>n0 << 2),
      ptr(7) + (<usize>n0 << 2),
      ptr(8) + <usize>(tid * 64 * d),
    );
  } else if (op == OP_CODEBOOK_MATMUL) {
    // x, M, in, codes, nb, cb, K, d, partCols, y, out, rows per chunk, panel chunks, scratch, scratch bytes per
    // thread, input columns per panel, vector shape (0/1)
    const pc = arg(12);
    const R = arg(11);
    const i0 = (c / pc) * R;
    const v0 = (c % pc) * 8;
    codebookBlock(
      ptr(0),
      arg(2),
      ptr(3),
      arg(4),
      ptr(5),
      arg(6),
      arg(7),
      arg(8),
      ptr(9),
      arg(10),
      i0,
      min(arg(1), i0 + R),
      v0,
      min(arg(4), v0 + 8),
      ptr(13) + <usize>tid * ptr(14),
      arg(15),
      arg(16) != 0,
    );
  }
}
