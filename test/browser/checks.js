// In-browser checks of the CPU backend's fast tier against its reference loops, run by test/browser/browser.test.ts
// in headless Chromium (on a page's main thread and inside a Web Worker). Imports the compiled package (dist/).
import { CpuBackend } from "../../dist/backend/cpu/index.js";
import { WebGpuBackend } from "../../dist/backend/webgpu/index.js";

function rand(n, seed) {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

function nmse(y, r) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < r.length; i++) {
    num += (y[i] - r[i]) ** 2;
    den += r[i] ** 2;
  }
  return y.length === r.length ? num / Math.max(den, 1e-30) : Number.POSITIVE_INFINITY;
}

const CASES = [
  [
    "matmul x·Wᵀ 70×90 · 100×90",
    (be) => be.matmul(be.upload(rand(6300, 1), [70, 90]), be.upload(rand(9000, 2), [100, 90]), { transposeB: true }),
  ],
  [
    "matmul Aᵀ·B 33×129 · 33×65",
    (be) =>
      be.matmul(be.upload(rand(33 * 129, 3), [33, 129]), be.upload(rand(33 * 65, 4), [33, 65]), { transposeA: true }),
  ],
  [
    "kmeans_assign N=3000 K=300 d=6",
    (be) => be.kmeans_assign(be.upload(rand(18000, 5), [3000, 6]), be.upload(rand(1800, 6), [300, 6])).distances,
  ],
  ...[3, 70].map((M) => [
    `codebook_linear M=${M} out=157 in=300 d=8 K=50 m=2`,
    (be) => {
      const codes = Int32Array.from(rand(300 * 20, 7 + M), (v) => Math.floor((v + 0.5) * 50));
      return be.codebook_linear(
        be.upload(rand(M * 300, 8), [M, 300]),
        be.uploadInt(codes, [300, 20]),
        be.upload(rand(800, 9), [2, 50, 8]),
        null,
        {
          out: 157,
          in: 300,
          d: 8,
          nb: 20,
          K: 50,
          partCols: 10,
        },
      );
    },
  ]),
  [
    "mul [300, 157] by one factor per row",
    (be) => be.mul(be.upload(rand(300 * 157, 40), [300, 157]), be.upload(rand(300, 41), [300, 1])),
  ],
  [
    "attention B=2 T=20 H=4 D=8",
    (be) => {
      const [q, k, v] = [10, 11, 12].map((s) => be.upload(rand(2 * 20 * 32, s), [2, 20, 32]));
      return be.attention(q, k, v, {
        numHeads: 4,
        numKvHeads: 4,
        headDim: 8,
        kvLength: 20,
        queryOffset: 0,
        slidingWindow: null,
      });
    },
  ],
];

/** Ops beyond CASES that the WebGPU check also runs: one per shader family (reductions, training, k-means). */
const GPU_CASES = [
  ["rms_norm 7×100", (be) => be.rms_norm(be.upload(rand(700, 20), [7, 100]), be.upload(rand(100, 21), [100]), 1e-5)],
  ["softmax 9×33", (be) => be.softmax(be.upload(rand(297, 22), [9, 33]))],
  [
    "cross_entropy 6×50",
    (be) =>
      be.cross_entropy(be.upload(rand(300, 23), [6, 50]), be.uploadInt(Int32Array.from([1, 49, -100, 0, 7, 3]), [6])),
  ],
  [
    "kmeans_update N=500 K=20 d=4 (sums)",
    (be) => {
      const assign = Int32Array.from(rand(500, 24), (v) => Math.floor((v + 0.5) * 20));
      return be.kmeans_update(be.upload(rand(2000, 25), [500, 4]), be.uploadInt(assign, [500]), 20).sums;
    },
  ],
  [
    "codebook_grad out=40 in=24 d=4 K=9 m=2",
    (be) => {
      const codes = Int32Array.from(rand(24 * 10, 26), (v) => Math.floor((v + 0.5) * 9));
      return be.codebook_grad(be.upload(rand(960, 27), [40, 24]), be.uploadInt(codes, [24, 10]), {
        out: 40,
        in: 24,
        d: 4,
        nb: 10,
        K: 9,
        partCols: 5,
      });
    },
  ],
];

/**
 * Runs every case on WebGPU (the browser's navigator.gpu) and on the reference loops; `{ reason }` when the page
 * has no adapter.
 */
export async function runGpuChecks() {
  const gpu = await WebGpuBackend.tryCreate();
  if (!(gpu instanceof WebGpuBackend)) return { reason: gpu.reason };
  const ref = new CpuBackend({ tier: "reference" });
  const checks = [];
  for (const [name, f] of [...CASES, ...GPU_CASES])
    checks.push({ name, nmse: nmse(await gpu.read(f(gpu)), await ref.read(f(ref))) });
  const describe = gpu.describe();
  await gpu.destroy();
  return {
    ready: true,
    describe,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    checks,
    workerChunks: 0,
  };
}

/** Runs every case on the reference and on the fast tier with `threads` threads (every job split). */
export async function runChecks(threads) {
  const ref = new CpuBackend({ tier: "reference" });
  const fast = new CpuBackend({ threads, parallelMinFlops: 0 });
  const ready = await fast.ready();
  const checks = [];
  for (const [name, f] of CASES) checks.push({ name, nmse: nmse(await fast.read(f(fast)), await ref.read(f(ref))) });
  const big = fast.upload(rand(400 * 400, 13), [400, 400]);
  for (let i = 0; i < 50 && fast.workerChunks() === 0 && fast.describe().endsWith("threads"); i++)
    fast.matmul(big, big);
  return {
    ready,
    describe: fast.describe(),
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    checks,
    workerChunks: fast.workerChunks(),
  };
}
