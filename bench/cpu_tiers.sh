#!/usr/bin/env bash
# The CPU tiers end to end on llama-en-26m, in one run: compress (ClusComp k-means 2.2 bpw, d = 8, 20 Lloyd
# iterations), perplexity (WikiText-2, first 4,096 tokens: 8 windows of 512) of the full-precision and of the
# compressed model, and greedy generation (64 new tokens) from the compressed model — with the reference loops,
# the fast tier on 1 and on 2 threads, and the fast tier with relaxed-SIMD FMA (Node flag). Prints a markdown
# table; the JSON of every step stays in the output directory. Usage (after `npm run build`):
#   bash bench/cpu_tiers.sh [outdir]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/cpu-tiers}
rm -rf "$out"
mkdir -p "$out"
model=../shared/models/llama-en-26m
data=../shared/data/wikitext2/wiki.test.raw
prompt="The history of the city"
tiers=("reference" "cpu --threads 1" "cpu --threads 2" "relaxed cpu --threads 2")
for t in "${tiers[@]}"; do
  name=${t// /_}
  name=${name//--/}
  node=(node)
  args=$t
  if [[ $t == relaxed* ]]; then
    node=(node --experimental-wasm-relaxed-simd)
    args=${t#relaxed }
  fi
  cli=("${node[@]}" dist/cli/main.js)
  # shellcheck disable=SC2086
  {
    /usr/bin/time -f "%e" -o "$out/$name.compress.time" "${cli[@]}" compress --model $model --out "$out/$name" \
      --bits 2.2 --vector-dim 8 --json --backend $args > "$out/$name.compress.json"
    "${cli[@]}" eval --model $model --data $data --seqlen 512 --max-windows 8 --batch-size 1 --json --backend $args \
      > "$out/$name.eval-fp.json"
    "${cli[@]}" eval --model "$out/$name" --data $data --seqlen 512 --max-windows 8 --batch-size 1 --json \
      --backend $args > "$out/$name.eval-compressed.json"
    "${cli[@]}" generate --model "$out/$name" --prompt "$prompt" --max-new-tokens 64 --json --backend $args \
      > "$out/$name.generate.json"
  } 2> "$out/$name.log"
  echo "done: $t" >&2
done
node - "$out" "${tiers[@]}" <<'JS'
const fs = require("node:fs");
const [out, ...tiers] = process.argv.slice(2);
const read = (f) => JSON.parse(fs.readFileSync(`${out}/${f}`, "utf8"));
console.log("| tier | compress s | bpw | ppl FP | eval FP tok/s | ppl 2.2 bpw | eval 2.2 bpw tok/s | generate tok/s (2.2 bpw) |");
console.log("|---|---|---|---|---|---|---|---|");
for (const t of tiers) {
  const n = t.replaceAll(" ", "_").replaceAll("--", "");
  const c = read(`${n}.compress.json`);
  const secs = Number(fs.readFileSync(`${out}/${n}.compress.time`, "utf8").trim().split("\n").pop());
  const fp = read(`${n}.eval-fp.json`);
  const q = read(`${n}.eval-compressed.json`);
  const g = read(`${n}.generate.json`);
  const bpw = c.bitsPerWeight ?? c.bpw ?? "?";
  console.log(
    `| ${t} | ${secs.toFixed(1)} | ${typeof bpw === "number" ? bpw.toFixed(4) : bpw} | ${fp.ppl.toFixed(2)} | ${(fp.windows * fp.seqlen / fp.seconds).toFixed(0)} | ${q.ppl.toFixed(2)} | ${(q.windows * q.seqlen / q.seconds).toFixed(0)} | ${g.tokensPerSecond.toFixed(1)} |`,
  );
}
JS
