// Backend selection by name (--backend). New backends register here and nowhere else.

import { UsageError } from "../errors.js";
import { BACKEND_NAMES, type Backend } from "./backend.js";
import { CpuBackend } from "./cpu/index.js";

export interface BackendOptions {
  /** Threads for the CPU backend's fast tier (default: every core). */
  threads?: number;
}

export async function createBackend(name: string, opts: BackendOptions = {}): Promise<Backend> {
  switch (name) {
    case "cpu":
    case "auto": {
      const be = new CpuBackend({ threads: opts.threads });
      await be.ready(); // workers that have not started by then join later; jobs run on this thread meanwhile
      return be;
    }
    case "reference":
      return new CpuBackend({ tier: "reference" });
    default:
      throw new UsageError("usage.backend", `unknown backend "${name}" (choose from: ${BACKEND_NAMES.join(", ")})`);
  }
}
