// cluscomp compare --model DIR --data FILE --out DIR --run "SPEC" [--run "SPEC" …] [eval options]
// Compresses the model once per spec (compress flags), evaluates each and the original, and writes
// results.json, results.md (table) and bpw_vs_ppl.svg into --out. Finished variants are reused on a re-run.

import * as fs from "node:fs";
import * as path from "node:path";
import {
  bitsPerplexitySvg,
  type ComparisonRow,
  compressModel,
  dirBytes,
  loadModel,
  loadTokenizer,
  perplexity,
  resultsTable,
} from "../index.js";
import { writeFileAtomic } from "../io/atomic.js";
import { BACKEND_OPTION, backendFromArgs, intOpt, parse, str } from "./args.js";
import { compressProgress, parseCompressSpec } from "./compress.js";
import { readText } from "./eval.js";
import { ProgressBar } from "./progress.js";

export const COMPARE_HELP = `cluscomp compare --model DIR --data FILE --out DIR --run "SPEC" [--run "SPEC" …] [options]
  Compresses the model once per SPEC (options of cluscomp compress as key=value, e.g. "method=rtn bits=3
  group-size=128" or "bits=3 vector-dim=6 share=model"), evaluates every variant and the original on FILE, and writes
  results.json, results.md and bpw_vs_ppl.svg into DIR. Variants already in DIR are reused.
  --seqlen N, --max-windows N, --batch-size N   as for cluscomp eval
  --backend NAME                                cpu | reference | auto (default auto)
  --threads N                                   CPU threads (default: every core)`;

function slug(spec: string): string {
  return spec.trim().replace(/[^A-Za-z0-9.]+/g, "-");
}

export async function compareCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      data: { type: "string" },
      out: { type: "string" },
      run: { type: "string", multiple: true },
      seqlen: { type: "string" },
      "max-windows": { type: "string" },
      "batch-size": { type: "string" },
      ...BACKEND_OPTION,
    },
    "compare",
  );
  const src = str(a, "model", "compare");
  const out = str(a, "out", "compare");
  const text = readText(str(a, "data", "compare"));
  const specs = (a.values.run as unknown as string[] | undefined) ?? [];
  const parsed = specs.map((s) => ({ spec: s, options: parseCompressSpec(s) })); // validate all before any work
  const backend = await backendFromArgs(a, "compare", [src]);
  fs.mkdirSync(out, { recursive: true });
  const tokenizer = loadTokenizer(src);
  const ids = tokenizer.encode(text);
  const evalOne = async (dir: string, label: string) => {
    const { config, model } = loadModel(dir, backend);
    const seqlen = intOpt(a, "seqlen", Math.min(2048, config.maxPositionEmbeddings), 2);
    const maxWindows = a.values["max-windows"] === undefined ? undefined : intOpt(a, "max-windows", 0, 1);
    const total = Math.min(Math.floor(ids.length / seqlen), maxWindows ?? Number.POSITIVE_INFINITY);
    const bar = new ProgressBar({ label: `eval ${label}`, total, unit: "win" });
    const t0 = performance.now();
    const r = await perplexity(model, ids, {
      seqlen,
      maxWindows,
      batchSize: intOpt(a, "batch-size", 1, 1),
      onProgress: (p) => bar.update(p.windowsDone),
    });
    return { ppl: r.ppl, evalSeconds: (performance.now() - t0) / 1000, seqlen, windows: r.windows };
  };
  const rows: ComparisonRow[] = [];
  const fp = await evalOne(src, "original");
  rows.push({ label: "original", method: "none", bytes: dirBytes(src), ppl: fp.ppl, evalSeconds: fp.evalSeconds });
  for (const { spec, options } of parsed) {
    const dir = path.join(out, slug(spec));
    let compressSeconds: number;
    let bpw: number;
    const recordFile = path.join(dir, "cluscomp.json");
    if (fs.existsSync(recordFile)) {
      const rec = JSON.parse(fs.readFileSync(recordFile, "utf8")) as { bpw: number; compressSeconds: number };
      bpw = rec.bpw;
      compressSeconds = rec.compressSeconds;
      process.stderr.write(`reusing ${dir}\n`);
    } else {
      const report = await compressModel(backend, src, dir, {
        ...options,
        onProgress: compressProgress(options.method),
      });
      bpw = report.bpw;
      compressSeconds = report.seconds;
    }
    const e = await evalOne(dir, slug(spec));
    rows.push({
      label: slug(spec),
      method: options.method === "rtn" ? `rtn g${options.groupSize}` : `cluscomp share=${options.share ?? "none"}`,
      bpw,
      bytes: dirBytes(dir),
      ppl: e.ppl,
      compressSeconds,
      evalSeconds: e.evalSeconds,
      command: `cluscomp compress --model ${src} --out ${dir} ${spec.replace(/(\S+)=(\S+)/g, "--$1 $2")}`,
    });
    process.stderr.write(`${slug(spec)}: ${bpw.toFixed(3)} bpw, ppl ${e.ppl.toFixed(3)}\n`);
  }
  const title = `${path.basename(path.resolve(src))} on ${path.basename(str(a, "data", "compare"))} (seqlen ${fp.seqlen}, ${fp.windows} windows)`;
  writeFileAtomic(path.join(out, "results.json"), `${JSON.stringify({ title, rows }, null, 2)}\n`);
  writeFileAtomic(path.join(out, "results.md"), `### ${title}\n\n${resultsTable(rows)}`);
  writeFileAtomic(
    path.join(out, "bpw_vs_ppl.svg"),
    bitsPerplexitySvg(rows, title, (r) => r.method),
  );
  process.stdout.write(`### ${title}\n\n${resultsTable(rows)}`);
}
