// The CPU backend's fast tier: WebAssembly SIMD kernels (built from wasm/assembly/ by `node wasm/build.mjs`),
// instantiated once per process on one shared linear memory that grows to the largest call. Where WebAssembly
// SIMD is missing, `wasmKernels()` returns null and the backend keeps its reference loops.

import { KERNELS_WASM_BASE64 } from "./kernels_wasm.js";

interface KernelExports {
  kmeansAssign(
    x: number,
    N: number,
    cT: number,
    cn: number,
    Kp: number,
    d: number,
    codes: number,
    dist: number,
    scratch: number,
  ): void;
  matmul(a: number, b: number, c: number, Mp: number, K: number, Np: number): void;
}

export interface WasmKernels {
  /** As kmeans_assign_forward (f32 arithmetic: near-ties may resolve differently from the f64 reference). */
  kmeansAssign(
    codes: Int32Array,
    distances: Float32Array,
    x: Float32Array,
    c: Float32Array,
    N: number,
    K: number,
    d: number,
  ): void;
  /** As matmul_forward: out [M, N] = op(A) · op(B) (f32 accumulation). */
  matmul(
    out: Float32Array,
    a: Float32Array,
    b: Float32Array,
    M: number,
    K: number,
    N: number,
    tA: boolean,
    tB: boolean,
  ): void;
}

function decodeBase64(s: string): Uint8Array {
  if (typeof Buffer !== "undefined") return new Uint8Array(Buffer.from(s, "base64"));
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const PAGE = 65536;
let cached: WasmKernels | null | undefined;

/** The kernels, or null where this engine cannot run them (no WebAssembly or no SIMD). */
export function wasmKernels(): WasmKernels | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (typeof WebAssembly === "undefined") return null;
  const bytes = decodeBase64(KERNELS_WASM_BASE64);
  if (!WebAssembly.validate(bytes)) return null;
  const memory = new WebAssembly.Memory({ initial: 1 });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const k = instance.exports as unknown as KernelExports;
  // bump allocation per call: regions are laid out from byte 0, 64-byte aligned
  const reserve = (sizes: number[]): number[] => {
    const offsets: number[] = [];
    let p = 0;
    for (const s of sizes) {
      offsets.push(p);
      p += Math.ceil(s / 64) * 64;
    }
    const need = Math.ceil(p / PAGE) - memory.buffer.byteLength / PAGE;
    if (need > 0) memory.grow(need);
    return offsets;
  };
  const kernels: WasmKernels = {
    kmeansAssign(codes, distances, x, c, N, K, d) {
      const Kp = Math.ceil(K / 8) * 8;
      const [ox, oc, on, ocodes, odist, os] = reserve([N * d * 4, d * Kp * 4, Kp * 4, N * 4, N * 4, 64 * d]);
      const f32 = new Float32Array(memory.buffer);
      f32.set(x.subarray(0, N * d), ox / 4);
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
      k.kmeansAssign(ox, N, oc, on, Kp, d, ocodes, odist, os);
      codes.set(new Int32Array(memory.buffer, ocodes, N));
      distances.set(new Float32Array(memory.buffer, odist, N));
    },
    matmul(out, a, b, M, K, N, tA, tB) {
      // pack into the kernel's layout: A [Mp, K], B [K, Np] row-major, zero padding
      const Mp = Math.ceil(M / 4) * 4;
      const Np = Math.ceil(N / 8) * 8;
      const [oa, ob, oc] = reserve([Mp * K * 4, K * Np * 4, Mp * Np * 4]);
      const f32 = new Float32Array(memory.buffer);
      const A = f32.subarray(oa / 4, oa / 4 + Mp * K);
      if (tA) {
        for (let k = 0; k < K; k++) for (let i = 0; i < M; i++) A[i * K + k] = a[k * M + i];
      } else {
        A.set(a.subarray(0, M * K));
      }
      A.fill(0, M * K);
      const B = f32.subarray(ob / 4, ob / 4 + K * Np);
      if (tB) {
        for (let j = 0; j < N; j++) {
          const row = j * K;
          for (let k = 0; k < K; k++) B[k * Np + j] = b[row + k];
        }
      } else if (Np === N) {
        B.set(b.subarray(0, K * N));
      } else {
        for (let k = 0; k < K; k++) B.set(b.subarray(k * N, (k + 1) * N), k * Np);
      }
      if (Np !== N) for (let k = 0; k < K; k++) B.fill(0, k * Np + N, (k + 1) * Np);
      k.matmul(oa, ob, oc, Mp, K, Np);
      const C = f32.subarray(oc / 4, oc / 4 + Mp * Np);
      if (Np === N) out.set(C.subarray(0, M * N));
      else for (let i = 0; i < M; i++) out.set(C.subarray(i * Np, i * Np + N), i * N);
    },
  };
  cached = kernels;
  return kernels;
}
