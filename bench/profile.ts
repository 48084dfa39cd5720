// A Backend wrapper that times each op and counts matmul FLOPs, for benchmarks only (never in tests).

import type { Backend, Tensor } from "../src/index.js";

export interface OpStats {
  calls: number;
  ms: number;
  flops: number;
}

export function profiled(inner: Backend): { backend: Backend; stats: Map<string, OpStats>; reset: () => void } {
  const stats = new Map<string, OpStats>();
  const record = (op: string, ms: number, flops: number) => {
    const s = stats.get(op) ?? { calls: 0, ms: 0, flops: 0 };
    s.calls++;
    s.ms += ms;
    s.flops += flops;
    stats.set(op, s);
  };
  const backend = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function" || typeof prop !== "string") return v;
      return (...args: unknown[]) => {
        const t0 = performance.now();
        const out = v.apply(target, args);
        const ms = performance.now() - t0;
        let flops = 0;
        if (prop === "linear") {
          const [x, w] = args as [Tensor, Tensor];
          const K = x.shape[x.shape.length - 1];
          flops = 2 * (x.shape.reduce((a, b) => a * b, 1) / K) * K * w.shape[0];
        }
        record(prop, ms, flops);
        return out;
      };
    },
  });
  return { backend, stats, reset: () => stats.clear() };
}
