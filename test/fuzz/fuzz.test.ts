// A seeded, bounded fuzzer over the loaders: FUZZ_CASES mutated copies (default 4,000) of stories260K, its ClusComp
// and RTN copies, a sharded copy and llama-en-26m, each checked, inspected, loaded and run forward in worker
// processes (test/fuzz/worker.ts). Every case must end in a typed error of ours or a successful load whose forward is
// finite: never a generic error, a hang (a per-case watchdog kills the worker), a crash or memory past a bound.
// A longer run: FUZZ_CASES=100000 FUZZ_SEED=1 npx vitest run test/fuzz (docs/hardening.md has the last result).

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import { beforeAll, expect, it } from "vitest";
import {
  CpuBackend,
  compressModel,
  INDEX_FILE,
  openCheckpoint,
  type TensorToWrite,
  writeSafetensors,
} from "../../src/index.js";
import { EXAMPLE, ROOT } from "../helpers/cli.js";
import { MODELS } from "../helpers/golden.js";
import { tmpDir } from "../helpers/tmp.js";
import type { Bases } from "./mutations.js";

const CASES = Number(process.env.FUZZ_CASES ?? 4000);
const SEED = Number(process.env.FUZZ_SEED ?? 1);
const WORKERS = 2;
/** No output from a worker for this long means the current case hangs. */
const WATCHDOG_MS = 20_000;
/** Resident memory a worker may reach after any case. */
const MAX_RSS = 1.5 * 2 ** 30;

interface Result {
  i: number;
  cls: string;
  what: string;
  base: string;
  outcome: string;
  code?: string;
  message?: string;
  ms?: number;
  rss?: number;
}

const root = tmpDir("cluscomp-fuzz-");
const bases: Bases = {
  stories: EXAMPLE,
  compressed: path.join(root, "compressed"),
  rtn: path.join(root, "rtn"),
  sharded: path.join(root, "sharded"),
  llama: MODELS["llama-en-26m"],
};

beforeAll(async () => {
  const be = new CpuBackend({ tier: "reference" });
  await compressModel(be, EXAMPLE, bases.compressed, { method: "cluscomp", bits: 3, iters: 2 });
  await compressModel(be, EXAMPLE, bases.rtn, { method: "rtn", bits: 3, groupSize: 64 });
  // stories260K in two shards with an index
  const src = openCheckpoint(EXAMPLE);
  fs.mkdirSync(bases.sharded);
  const names = src.names().sort();
  const half = Math.ceil(names.length / 2);
  const map: Record<string, string> = {};
  [names.slice(0, half), names.slice(half)].forEach((part, k) => {
    const file = `model-0000${k + 1}-of-00002.safetensors`;
    const tensors: TensorToWrite[] = part.map((n) => {
      const info = src.info(n)!;
      map[n] = file;
      return { name: n, dtype: info.dtype, shape: info.shape, data: src.readRaw(n) };
    });
    writeSafetensors(path.join(bases.sharded, file), tensors, { format: "pt" });
  });
  src.close();
  fs.writeFileSync(path.join(bases.sharded, INDEX_FILE), JSON.stringify({ metadata: {}, weight_map: map }));
  for (const f of fs.readdirSync(EXAMPLE)) {
    if (!f.endsWith(".safetensors")) fs.copyFileSync(path.join(EXAMPLE, f), path.join(bases.sharded, f));
  }
});

/** Runs cases [start, end) in worker processes, restarting a worker past a hung or crashed case. */
function runRange(start: number, end: number, work: string): Promise<Result[]> {
  return new Promise((resolve) => {
    const results: Result[] = [];
    let current: Result | null = null;
    let timer: NodeJS.Timeout | null = null;
    const launch = (from: number) => {
      if (from >= end) {
        resolve(results);
        return;
      }
      const c = spawn(
        process.execPath,
        [
          "--max-old-space-size=1536",
          "--import",
          "tsx",
          path.join(ROOT, "test/fuzz/worker.ts"),
          JSON.stringify(bases),
          String(SEED),
          String(from),
          String(end),
          work,
        ],
        { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
      );
      let next = from;
      let stderr = "";
      c.stderr?.on("data", (d) => {
        stderr = (stderr + String(d)).slice(-4000);
      });
      const arm = () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          if (current) results.push({ ...current, outcome: "hang" });
          c.kill("SIGKILL");
        }, WATCHDOG_MS);
      };
      arm();
      readline.createInterface({ input: c.stdout! }).on("line", (line) => {
        arm();
        const o = JSON.parse(line) as Result & { start?: number };
        if (o.start !== undefined) {
          current = { i: o.start, cls: o.cls, what: o.what, base: o.base, outcome: "running" };
          return;
        }
        results.push(o);
        if ((o.rss ?? 0) > MAX_RSS) results.push({ ...o, outcome: "memory" });
        current = null;
        next = o.i + 1;
      });
      c.on("exit", () => {
        if (timer) clearTimeout(timer);
        if (current) {
          const hung = results.some((r) => r.i === current!.i && r.outcome === "hang");
          if (!hung) results.push({ ...current, outcome: "crash", message: stderr });
          next = current.i + 1;
          current = null;
        }
        launch(next);
      });
    };
    launch(start);
  });
}

it(
  `fuzzes the loaders: ${CASES} seeded cases (seed ${SEED}), every one a typed error or a finite forward`,
  async () => {
    const t0 = performance.now();
    const per = Math.ceil(CASES / WORKERS);
    const parts = await Promise.all(
      Array.from({ length: WORKERS }, (_, w) =>
        runRange(w * per, Math.min(CASES, (w + 1) * per), path.join(root, `w${w}`)),
      ),
    );
    const results = parts.flat();
    const byClass = new Map<string, Record<string, number>>();
    for (const r of results) {
      const row = byClass.get(r.cls) ?? {};
      row[r.outcome] = (row[r.outcome] ?? 0) + 1;
      byClass.set(r.cls, row);
    }
    const codes = new Map<string, number>();
    for (const r of results) if (r.code) codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
    const seconds = (performance.now() - t0) / 1000;
    const summary = {
      seed: SEED,
      cases: CASES,
      seconds,
      maxRssMiB: Math.max(...results.map((r) => r.rss ?? 0)) / 2 ** 20,
      byClass: Object.fromEntries([...byClass].sort()),
      codes: Object.fromEntries([...codes].sort((a, b) => b[1] - a[1])),
    };
    if (process.env.FUZZ_REPORT) fs.writeFileSync(process.env.FUZZ_REPORT, `${JSON.stringify(summary, null, 2)}\n`);
    console.log(`fuzz: ${JSON.stringify(summary)}`);
    const bad = results.filter((r) => !["ok", "typed"].includes(r.outcome));
    expect(
      bad.slice(0, 5).map((r) => `case ${r.i} (${r.cls}: ${r.what} on ${r.base}) → ${r.outcome}: ${r.message ?? ""}`),
    ).toEqual([]);
    expect(new Set(results.map((r) => r.i)).size).toBe(CASES);
  },
  30 * 60_000,
);
