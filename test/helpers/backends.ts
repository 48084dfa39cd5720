// The backends every backend suite runs on, and the helpers those suites share. A backend that does not
// support an op reports the test as skipped (it.skip with the reason), never as passed.

import { it } from "vitest";
import { type Backend, CpuBackend, type OpName, Rng } from "../../src/index.js";

/**
 * The reference loops and the CPU backend's fast tier (WebAssembly kernels where supported), on one thread and
 * on two threads with every job split across both (so small test shapes exercise the chunked, shared-memory path).
 */
export const BACKENDS: Backend[] = [
  new CpuBackend({ tier: "reference" }),
  new CpuBackend({ threads: 1 }),
  new CpuBackend({ threads: 2, parallelMinFlops: 0 }),
];
// the two-thread backend splits jobs only once its workers run: wait for them before any test
for (const be of BACKENDS)
  if (be instanceof CpuBackend && !(await be.ready())) throw new Error("worker threads did not start");

/** A backend's name for test titles: the CPU tiers with what runs them. */
export function label(be: Backend): string {
  return be instanceof CpuBackend ? `${be.name} (${be.describe()})` : be.name;
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
