// Writes the finetuning study's arithmetic task (protocol B; src/train/arithmetic.ts): OUT/train.jsonl and
// OUT/test.jsonl of {"prompt", "completion"} for `cluscomp train --data` and `cluscomp eval --task`.
//   npx tsx bench/arithmetic_task.ts OUT [--train 4000] [--test 500] [--seed 0]
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { arithmeticTask } from "../src/train/arithmetic.js";

const { values, positionals } = parseArgs({
  options: { train: { type: "string" }, test: { type: "string" }, seed: { type: "string" } },
  allowPositionals: true,
});
const out = positionals[0];
if (out === undefined) throw new Error("usage: npx tsx bench/arithmetic_task.ts OUT [--train N] [--test N] [--seed S]");
const task = arithmeticTask({
  train: Number(values.train ?? 4000),
  test: Number(values.test ?? 500),
  seed: Number(values.seed ?? 0),
});
fs.mkdirSync(out, { recursive: true });
for (const [name, items] of [
  ["train", task.train],
  ["test", task.test],
] as const) {
  const file = path.join(out, `${name}.jsonl`);
  fs.writeFileSync(`${file}.tmp`, `${items.map((x) => JSON.stringify(x)).join("\n")}\n`);
  fs.renameSync(`${file}.tmp`, file);
  console.log(`${file}: ${items.length} items`);
}
