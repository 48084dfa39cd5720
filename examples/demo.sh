#!/usr/bin/env bash
# The README's main job on the bundled example (stories260K, MIT): compress it with ClusComp to ~3 bits per
# weight (stage 1: k-means codebooks; stage 2: block-wise codebook tuning), then compare perplexity and size
# before/after and generate a story with the compressed model.
# Uses only files inside this repository; writes into out/demo/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
cli="node dist/cli/main.js"
model=examples/stories260K
data=examples/data/tinystories-excerpt.txt
stage1=out/demo/stories260K-kmeans-3bpw
out=out/demo/stories260K-cluscomp-3bpw
calib=out/demo/calib.txt
evalopts=(--data "$data" --seqlen 512 --max-windows 32 --batch-size 4 --json)
rm -rf "$stage1" "$out" "$out.work"
mkdir -p out/demo
# calibration text: the second half of the excerpt (the perplexity windows are its first ~16k tokens)
tail -c +100000 "$data" > "$calib"

echo "== 1. perplexity of the original (first 32 windows of 512 tokens)"
before=$($cli eval --model "$model" "${evalopts[@]}")
echo "$before"

echo; echo "== 2. stage 1: every q/k/v/o and gate/up/down weight -> 8-dim vectors, one k-means codebook per block for"
echo "      attention and one for the MLP (--share block), K chosen for 3 bits per weight"
comp=$($cli compress --model "$model" --out "$stage1" --bits 3 --vector-dim 8 --share block --json)
echo "$comp"
kmeans=$($cli eval --model "$stage1" "${evalopts[@]}")
echo "$kmeans"

echo; echo "== 3. stage 2: tune the codebooks block by block to reproduce the original blocks (AdamW, 32 calibration"
echo "      windows of 256 tokens, 6 epochs; the codes stay fixed)"
tune=$($cli finetune --model "$model" --stage1 "$stage1" --out "$out" --calib "$calib" \
  --calib-samples 32 --calib-seqlen 256 --epochs 6 --json)
node -e 'for (const b of JSON.parse(process.argv[1]).blocks) console.log(`block ${b.block}: loss ${b.lossBefore.toExponential(3)} -> ${b.lossAfter.toExponential(3)}`)' "$tune"
after=$($cli eval --model "$out" "${evalopts[@]}")
echo "$after"

echo; echo "== 4. summary"
node -e '
const [b, c, k, t, a] = process.argv.slice(1, 6).map((s) => JSON.parse(s));
const fs = require("fs"), path = require("path");
const size = (d) => fs.readdirSync(d).reduce((s, f) => s + fs.statSync(path.join(d, f)).size, 0);
console.log(`original:          ${(size(process.argv[6]) / 1024).toFixed(0)} KiB, perplexity ${b.ppl.toFixed(3)}`);
console.log(`k-means (stage 1): ${(c.bytes / 1024).toFixed(0)} KiB (${c.bpw.toFixed(3)} bits/weight on the clustered matrices; embeddings and norms kept), perplexity ${k.ppl.toFixed(3)}, in ${c.seconds.toFixed(1)}s`);
console.log(`tuned (stage 2):   ${(size(process.argv[7]) / 1024).toFixed(0)} KiB, perplexity ${a.ppl.toFixed(3)}, tuning in ${t.seconds.toFixed(1)}s`);
' "$before" "$comp" "$kmeans" "$tune" "$after" "$model" "$out"

echo; echo "== 5. generate with the compressed, tuned model (greedy)"
$cli generate --model "$out" --prompt "Once upon a time" --max-new-tokens 64 --temperature 0
