#!/usr/bin/env bash
# The README's main job on the bundled example (stories260K, MIT): compress it with ClusComp to ~3 bits per
# weight, then compare perplexity and size before/after and generate a story with the compressed model.
# Uses only files inside this repository; writes into out/demo/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
cli="node dist/cli/main.js"
model=examples/stories260K
data=examples/data/tinystories-excerpt.txt
out=out/demo/stories260K-cluscomp-3bpw
evalopts=(--data "$data" --seqlen 512 --max-windows 32 --batch-size 4 --json)
rm -rf "$out"
mkdir -p out/demo

echo "== 1. perplexity of the original (first 32 windows of 512 tokens)"
before=$($cli eval --model "$model" "${evalopts[@]}")
echo "$before"

echo; echo "== 2. compress: every q/k/v/o and gate/up/down weight -> 8-dim vectors, one k-means codebook per block for"
echo "      attention and one for the MLP (--share block), K chosen for 3 bits per weight"
comp=$($cli compress --model "$model" --out "$out" --bits 3 --vector-dim 8 --share block --json)
echo "$comp"

echo; echo "== 3. perplexity of the compressed model"
after=$($cli eval --model "$out" "${evalopts[@]}")
echo "$after"

echo; echo "== 4. summary"
node -e '
const [b, c, a] = process.argv.slice(1).map((s) => JSON.parse(s));
const fs = require("fs"), path = require("path");
const size = (d) => fs.readdirSync(d).reduce((s, f) => s + fs.statSync(path.join(d, f)).size, 0);
console.log(`original:   ${(size(process.argv[4]) / 1024).toFixed(0)} KiB, perplexity ${b.ppl.toFixed(3)}`);
console.log(`compressed: ${(c.bytes / 1024).toFixed(0)} KiB (${c.bpw.toFixed(3)} bits/weight on the clustered matrices; embeddings and norms kept), perplexity ${a.ppl.toFixed(3)}, compressed in ${c.seconds.toFixed(1)}s`);
console.log("(stage 1 only: k-means alone loses most on a model this small; block-wise codebook tuning is the next stage)");
' "$before" "$comp" "$after" "$model"

echo; echo "== 5. generate with the compressed model (greedy)"
$cli generate --model "$out" --prompt "Once upon a time" --max-new-tokens 64 --temperature 0
