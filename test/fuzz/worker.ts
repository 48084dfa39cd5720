// One fuzzing process: runs cases [start, end) of a seeded run and prints one JSON line per case, so the parent
// (fuzz.test.ts) can watch for hangs (no line within its watchdog), crashes and memory. Each case: a fresh copy of
// its base directory, one mutation, then what a user's command does with a model directory — check it, inspect
// it, load it with its tokenizer and run a forward pass on 8 tokens, whose logits must be finite.
//   node --import tsx test/fuzz/worker.ts BASES_JSON SEED START END WORKDIR

import * as fs from "node:fs";
import * as path from "node:path";
import { CluscompError, CpuBackend, checkModelDir, inspectModel, loadModel, loadTokenizer } from "../../src/index.js";
import { type Bases, mutation, prepareCase } from "./mutations.js";

const [basesJson, seedArg, startArg, endArg, work] = process.argv.slice(2);
const bases = JSON.parse(basesJson) as Bases;
const be = new CpuBackend({ tier: "reference" });

async function run(dir: string): Promise<{ outcome: string; code?: string; message?: string }> {
  try {
    checkModelDir(dir);
    inspectModel(dir);
    const tok = loadTokenizer(dir);
    tok.encode("Once upon a time");
    const { model, config } = loadModel(dir, be);
    try {
      const ids = Int32Array.from({ length: 8 }, (_, t) => (t * 7 + 1) % config.vocabSize);
      const { logits } = model.forward(ids, 1, 8);
      const z = await be.read(logits);
      be.dispose(logits);
      if (!z.every(Number.isFinite)) return { outcome: "non_finite" };
    } finally {
      model.dispose();
    }
    return { outcome: "ok" };
  } catch (e) {
    if (e instanceof CluscompError) return { outcome: "typed", code: e.code, message: e.message.slice(0, 300) };
    return { outcome: "generic", message: e instanceof Error ? (e.stack ?? e.message).slice(0, 2000) : String(e) };
  }
}

for (let i = Number(startArg); i < Number(endArg); i++) {
  const m = mutation(Number(seedArg), i, bases);
  const dir = path.join(work, `case-${i}`);
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify({ start: i, cls: m.cls, what: m.what, base: m.base })}\n`);
  const t0 = performance.now();
  let r: { outcome: string; code?: string; message?: string };
  try {
    prepareCase(bases[m.base], dir, m.base === "llama");
    m.apply(dir);
    r = await run(dir);
  } catch (e) {
    r = { outcome: "mutation_failed", message: e instanceof Error ? e.message : String(e) };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const rss = process.memoryUsage().rss;
  process.stdout.write(
    `${JSON.stringify({ i, cls: m.cls, what: m.what, base: m.base, ...r, ms: performance.now() - t0, rss })}\n`,
  );
}
process.exit(0);
