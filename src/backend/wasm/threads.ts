// Runs the kernels' chunked jobs on several threads that share one WebAssembly memory: Node worker_threads or
// browser Web Workers, each with its own instance of the module on that memory. The calling thread fills the
// control block at address 0 (see wasm/assembly/index.ts), bumps the job sequence and takes chunk numbers from
// the shared counter like every worker; chunks write disjoint outputs with the same arithmetic whoever runs
// them, so results do not depend on the thread count. The caller blocks (Atomics.wait) until every worker has
// finished the job, so one job is in flight at a time and a late worker never sees the next job's arguments.
// Jobs go parallel only once every worker has started (browsers start a worker only when its creator returns to
// its event loop: `ready()` waits for that); until then the calling thread runs them alone.

import { BackendError } from "../../errors.js";

/** Control block words (i32 index). */
export const CTRL = {
  seq: 0,
  next: 1,
  count: 2,
  done: 3,
  op: 4,
  failed: 5,
  workerChunks: 6,
  ready: 7,
  args: 8,
} as const;
/** Bytes reserved at address 0 for the control block. */
export const CTRL_BYTES = 256;

/** A worker that has made no progress for this long is taken as gone. */
const STALL_MS = 120_000;

// The worker's loop, as plain JavaScript (it runs in a fresh worker context, outside the bundle): wait for the
// next job, take chunks until none is left, report done. A kernel that throws marks the job failed.
const WORKER_LOOP = `
function serve(module, memory, tid) {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const runChunk = instance.exports.runChunk;
  const ctrl = new Int32Array(memory.buffer, 0, 16);
  let seen = Atomics.load(ctrl, ${CTRL.seq});
  Atomics.add(ctrl, ${CTRL.ready}, 1);
  for (;;) {
    Atomics.wait(ctrl, ${CTRL.seq}, seen);
    seen = Atomics.load(ctrl, ${CTRL.seq});
    const n = Atomics.load(ctrl, ${CTRL.count});
    try {
      for (let c = Atomics.add(ctrl, ${CTRL.next}, 1); c < n; c = Atomics.add(ctrl, ${CTRL.next}, 1)) {
        runChunk(c, tid);
        Atomics.add(ctrl, ${CTRL.workerChunks}, 1);
      }
    } catch (e) {
      Atomics.store(ctrl, ${CTRL.failed}, 1);
    }
    Atomics.add(ctrl, ${CTRL.done}, 1);
    Atomics.notify(ctrl, ${CTRL.done});
  }
}`;
const NODE_WORKER = `${WORKER_LOOP}
const { workerData } = require("node:worker_threads");
serve(workerData.module, workerData.memory, workerData.tid);`;
const BROWSER_WORKER = `${WORKER_LOOP}
self.onmessage = (e) => serve(e.data.module, e.data.memory, e.data.tid);`;

interface BrowserWorkerApi {
  Worker: new (url: string) => { postMessage(m: unknown): void };
  Blob: new (parts: string[], opts: { type: string }) => object;
  URL: { createObjectURL(b: object): string };
  crossOriginIsolated?: boolean;
}

/** Whether this thread may block in Atomics.wait (not a browser's main thread) and memory can be shared. */
export function canBlock(): boolean {
  if (typeof SharedArrayBuffer === "undefined" || typeof Atomics === "undefined") return false;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts `count` workers serving `module` on `memory`; false where this engine offers no worker threads. */
function startWorkers(module: WebAssembly.Module, memory: WebAssembly.Memory, count: number): boolean {
  const node = typeof process !== "undefined" ? process.getBuiltinModule?.("node:worker_threads") : undefined;
  if (node) {
    for (let tid = 1; tid <= count; tid++) {
      const w = new node.Worker(NODE_WORKER, { eval: true, workerData: { module, memory, tid } });
      w.unref(); // idle workers must not keep the process alive
    }
    return true;
  }
  const web = globalThis as unknown as Partial<BrowserWorkerApi>;
  if (!web.Worker || !web.Blob || !web.URL || web.crossOriginIsolated === false) return false;
  const url = web.URL.createObjectURL(new web.Blob([BROWSER_WORKER], { type: "text/javascript" }));
  for (let tid = 1; tid <= count; tid++) new web.Worker(url).postMessage({ module, memory, tid });
  return true;
}

export class ChunkRunner {
  /** Threads taking part in a parallel job, the caller's included. */
  readonly threads: number;
  private readonly ctrl: Int32Array;

  /**
   * `threads` − 1 workers are started on `memory` (which must be shared when threads > 1); where workers cannot
   * be started the runner runs everything on the calling thread.
   */
  constructor(
    private readonly runChunk: (c: number, tid: number) => void,
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    threads: number,
  ) {
    this.ctrl = new Int32Array(memory.buffer, 0, 16); // used with workers only: then the memory is shared
    this.threads = threads > 1 && startWorkers(module, memory, threads - 1) ? threads : 1;
  }

  /**
   * Runs chunks 0..n−1 of the job in the control block; on all threads when `parallel` (worth the wake-up,
   * ~tens of µs), else on this one.
   */
  run(n: number, parallel: boolean): void {
    const workers = this.threads - 1;
    if (!parallel || workers === 0 || n === 1 || Atomics.load(this.ctrl, CTRL.ready) < workers) {
      for (let c = 0; c < n; c++) this.runChunk(c, 0);
      return;
    }
    const ctrl = this.ctrl;
    Atomics.store(ctrl, CTRL.count, n);
    Atomics.store(ctrl, CTRL.next, 0);
    Atomics.store(ctrl, CTRL.done, 0);
    Atomics.store(ctrl, CTRL.failed, 0);
    Atomics.add(ctrl, CTRL.seq, 1);
    Atomics.notify(ctrl, CTRL.seq);
    try {
      for (let c = Atomics.add(ctrl, CTRL.next, 1); c < n; c = Atomics.add(ctrl, CTRL.next, 1)) this.runChunk(c, 0);
    } finally {
      // even when this thread's chunk threw: the workers must finish before the memory is reused
      this.awaitWorkers(workers);
    }
    if (Atomics.load(ctrl, CTRL.failed) !== 0) {
      throw new BackendError(
        "backend.threads",
        "a WebAssembly kernel failed on a worker thread; rerun with --threads 1",
      );
    }
  }

  /** Resolves true once every worker has started (false after `timeoutMs`), yielding to the event loop. */
  async ready(timeoutMs = 10_000): Promise<boolean> {
    const t0 = Date.now();
    while (this.threads > 1 && Atomics.load(this.ctrl, CTRL.ready) < this.threads - 1) {
      if (Date.now() - t0 > timeoutMs) return false;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return true;
  }

  /** Chunks the workers have run so far (a count for tests and benchmarks; wraps at 2³¹). */
  workerChunks(): number {
    // one thread: the memory may be unshared, and growing it detaches the control block's view
    return this.threads === 1 ? 0 : Atomics.load(this.ctrl, CTRL.workerChunks);
  }

  private awaitWorkers(workers: number): void {
    const ctrl = this.ctrl;
    let last = -1;
    let since = Date.now();
    for (let done = Atomics.load(ctrl, CTRL.done); done < workers; done = Atomics.load(ctrl, CTRL.done)) {
      if (done !== last) {
        last = done;
        since = Date.now();
      } else if (Date.now() - since > STALL_MS) {
        throw new BackendError(
          "backend.threads",
          `worker threads stopped responding (${done} of ${workers} finished after ${STALL_MS / 1000} s); rerun with --threads 1`,
        );
      }
      Atomics.wait(ctrl, CTRL.done, done, 1000);
    }
  }
}
