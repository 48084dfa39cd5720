// The backends every backend suite runs on, and the helpers those suites share. A backend that does not
// support an op reports the test as skipped (it.skip with the reason), never as passed.

import { it } from "vitest";
import { type Backend, CpuBackend, type OpName, Rng, WebGpuBackend } from "../../src/index.js";

/**
 * The WebGPU backend on this machine's adapter (in CI: Mesa's llvmpipe), or why there is none. With
 * CLUSCOMP_REQUIRE_WEBGPU=1 (set by .ci/run) a missing adapter fails the suites instead of skipping them.
 */
export const WEBGPU: WebGpuBackend | { reason: string } = await WebGpuBackend.tryCreate();
if (!(WEBGPU instanceof WebGpuBackend) && process.env.CLUSCOMP_REQUIRE_WEBGPU === "1")
  throw new Error(`CLUSCOMP_REQUIRE_WEBGPU=1 but ${WEBGPU.reason}`);

/**
 * The reference loops and the CPU backend's fast tier (WebAssembly kernels where supported), on one thread and
 * on two threads with every job split across both (so small test shapes exercise the chunked, shared-memory path),
 * and WebGPU when there is an adapter.
 */
export const BACKENDS: Backend[] = [
  new CpuBackend({ tier: "reference" }),
  new CpuBackend({ threads: 1 }),
  new CpuBackend({ threads: 2, parallelMinFlops: 0 }),
  ...(WEBGPU instanceof WebGpuBackend ? [WEBGPU] : []),
];
// the two-thread backend splits jobs only once its workers run: wait for them before any test
for (const be of BACKENDS)
  if (be instanceof CpuBackend && !(await be.ready())) throw new Error("worker threads did not start");

/** The backends the golden (PyTorch) tests run on: the CPU backend, and WebGPU when there is an adapter. */
export function goldenBackends(): Backend[] {
  return [new CpuBackend(), ...(WEBGPU instanceof WebGpuBackend ? [WEBGPU] : [])];
}

/** A backend's name for test titles: with what runs it. */
export function label(be: Backend): string {
  return be instanceof CpuBackend || be instanceof WebGpuBackend ? `${be.name} (${be.describe()})` : be.name;
}

/** A skipped test that says why the WebGPU suites did not run here (none when they did). */
export function reportWebGpuSkip(suite: string): void {
  if (!(WEBGPU instanceof WebGpuBackend)) it.skip(`${suite} on webgpu — skipped: ${WEBGPU.reason}`, () => {});
}

/** NMSE for an f32 backend against float64 oracles. */
export const TOL = 1e-10;

export function rand(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * r.normal());
}

/** `it` for one op of one backend: skipped with the reason when the backend lacks the op. */
export function opTest(be: Backend) {
  return (name: OpName, title: string, fn: () => Promise<void>) =>
    be.supports(name) ? it(`${name} ${title}`, fn) : it.skip(`${name} ${title} — not supported by ${be.name}`, fn);
}
