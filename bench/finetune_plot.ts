// The finetuning study's plot (docs/plots/finetune-protocol-a.svg): perplexity after finetuning against the bits
// per weight of the frozen base, one series per method, full finetuning of the full-precision model as the dashed
// line. Reads OUT/results-A.tsv of bench/finetune_study.sh; a method's row at the best lr of its sweep.
//   npx tsx bench/finetune_plot.ts [outdir] [svg]
import * as fs from "node:fs";
import { bitsPerplexitySvg, type ComparisonRow } from "../src/eval/report.js";

const out = process.argv[2] ?? "out/finetune-study";
const svg = process.argv[3] ?? "docs/plots/finetune-protocol-a.svg";
const rows = fs
  .readFileSync(`${out}/results-A.tsv`, "utf8")
  .trim()
  .split("\n")
  .map((l) => l.split("\t"))
  .map(([name, base, sets, lr, params, , after]) => ({
    name,
    base,
    sets,
    lr,
    params: Number(params),
    ppl: Number(after),
  }));

/** Bits per weight of a base's compressed matrices: ClusComp's nominal rate, RTN's bits + fp16 scale and zero. */
function bpw(base: string): number | undefined {
  const cc = /^cc-([\d.]+)-/.exec(base);
  if (cc) return Number(cc[1]);
  const rtn = /^rtn-(\d+)g(\d+)$/.exec(base);
  if (rtn) return Number(rtn[1]) + 32 / Number(rtn[2]);
  return undefined;
}
const series = (r: (typeof rows)[number]) =>
  r.base.startsWith("rtn") ? `LoRA over RTN (${r.sets})` : `ClusComp, ${r.sets.replace(/,/g, " + ")}`;
// per (base, trainable set): the best row of its lr sweep
const best = new Map<string, (typeof rows)[number]>();
for (const r of rows) {
  const key = `${r.base}|${r.sets}|${r.name.replace(/-[\d.e-]+$/, "")}`;
  const b = best.get(key);
  if (!b || r.ppl < b.ppl) best.set(key, r);
}
const plotted: ComparisonRow[] = [];
for (const r of best.values()) {
  const b = bpw(r.base);
  if (r.name === "fp-full")
    plotted.push({ label: "FP full finetuning", method: "", bytes: 0, ppl: r.ppl, evalSeconds: 0 });
  if (b === undefined) continue;
  plotted.push({ label: r.name, method: series(r), bpw: b, bytes: 0, ppl: r.ppl, evalSeconds: 0 });
}
fs.writeFileSync(
  svg,
  bitsPerplexitySvg(plotted, "llama-en-26m → TinyStories: perplexity after finetuning (protocol A)", (r) => r.method),
);
console.log(`${svg}: ${plotted.length} points`);
