// Backend selection by name (--backend). New backends register here and nowhere else.

import { UsageError } from "../errors.js";
import { BACKEND_NAMES, type Backend } from "./backend.js";
import { CpuBackend } from "./cpu/index.js";
import { WebGpuBackend } from "./webgpu/index.js";
import { probeHardwareAdapter } from "./webgpu/probe.js";

export interface BackendOptions {
  /** Threads for the CPU backend's fast tier (default: every core). */
  threads?: number;
}

/**
 * `cpu`: the CPU backend's fast tier; `reference`: its plain loops; `webgpu`: the GPU (an error when there is no
 * adapter); `auto`: WebGPU on a hardware adapter, else the CPU (a software adapter such as llvmpipe or SwiftShader
 * is slower than the CPU backend on the same machine, so `auto` does not pick it). `auto` looks for the adapter
 * quietly (webgpu/probe.ts) and opens the GPU in this process only when there is a hardware one, so a machine
 * without a GPU never sees driver messages.
 */
export async function createBackend(name: string, opts: BackendOptions = {}): Promise<Backend> {
  switch (name) {
    case "auto": {
      if ((await probeHardwareAdapter()) !== null) {
        const gpu = await WebGpuBackend.tryCreate();
        if (gpu instanceof WebGpuBackend) {
          if (!gpu.software) return gpu;
          await gpu.destroy();
        }
      }
      return cpu(opts);
    }
    case "cpu":
      return cpu(opts);
    case "webgpu":
      return WebGpuBackend.create();
    case "reference":
      return new CpuBackend({ tier: "reference" });
    default:
      throw new UsageError("usage.backend", `unknown backend "${name}" (choose from: ${BACKEND_NAMES.join(", ")})`);
  }
}

async function cpu(opts: BackendOptions): Promise<CpuBackend> {
  const be = new CpuBackend({ threads: opts.threads });
  await be.ready(); // workers that have not started by then join later; jobs run on this thread meanwhile
  return be;
}
