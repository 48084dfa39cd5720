#!/usr/bin/env bash
# Stage-2 (block-wise codebook tuning) results for docs/results.md: tunes stage-1 checkpoints made by
# bench/stage1_results.sh and reports per-block losses and perplexity before/after (first 4,096 eval tokens,
# 8 windows of 512, as stage 1). One JSON report per run in OUT/<name>.json, the log beside it.
#   bash bench/stage2_results.sh llama|stories [outdir]     (SAMPLES, SEQLEN, EPOCHS override 16, 512, 3)
#   bash bench/stage2_results.sh table [dir]                  (markdown rows of finished reports)
# Calibration: llama-en-26m on the C4 excerpt (eval: WikiText-2 test); stories260K on the second half of the
# TinyStories excerpt (eval: its first 4,096 tokens, so the two never overlap).
set -euo pipefail
which=${1:?usage: stage2_results.sh llama|stories [outdir]}
cli=${CLI:-node dist/cli/main.js}
SAMPLES=${SAMPLES:-16}
SEQLEN=${SEQLEN:-512}
EPOCHS=${EPOCHS:-3}
run() { # name model stage1 calib data
  local name=$1 model=$2 stage1=$3 calib=$4 data=$5
  [ -f "$out/$name.json" ] && { echo "reusing $out/$name.json" >&2; return; }
  rm -rf "$out/$name"
  $cli finetune --model "$model" --stage1 "$stage1" --out "$out/$name" --calib "$calib" \
    --calib-samples "$SAMPLES" --calib-seqlen "$SEQLEN" --epochs "$EPOCHS" \
    --eval-data "$data" --seqlen 512 --max-windows 8 --json > "$out/$name.json.tmp" 2> "$out/$name.log"
  mv "$out/$name.json.tmp" "$out/$name.json"
  node -e 'const r=require(process.argv[1]);console.log(process.argv[2], "ppl", r.pplBefore.toFixed(2), "->", r.pplAfter.toFixed(2), "in", r.seconds.toFixed(0)+"s")' "$PWD/$out/$name.json" "$name"
}
case "$which" in
  llama)
    out=${2:-out/stage2/llama-en-26m}; mkdir -p "$out"
    m=../shared/models/llama-en-26m; s1=out/stage1/llama-en-26m
    calib=../shared/data/c4/excerpt.jsonl; data=../shared/data/wikitext2/wiki.test.raw
    run bits-3.25-vector-dim-6 $m $s1/bits-3.25-vector-dim-6 $calib $data
    run bits-2.5-vector-dim-8 $m $s1/bits-2.5-vector-dim-8 $calib $data
    run bits-2.2-vector-dim-8-share-block $m $s1-shared/bits-2.2-vector-dim-8-share-block $calib $data
    ;;
  stories)
    out=${2:-out/stage2/stories260K}; mkdir -p "$out"
    m=examples/stories260K; s1=out/stage1/stories260K
    calib=$out/calib.txt; data=examples/data/tinystories-excerpt.txt
    tail -c +100000 "$data" > "$calib"
    run bits-3.25-vector-dim-8-share-none $m $s1/bits-3.25-vector-dim-8-share-none $calib $data
    run bits-3.25-vector-dim-8-share-block $m $s1/bits-3.25-vector-dim-8-share-block $calib $data
    run bits-2.5-vector-dim-10-share-block $m $s1/bits-2.5-vector-dim-10-share-block $calib $data
    run bits-2.2-vector-dim-12-share-block $m $s1/bits-2.2-vector-dim-12-share-block $calib $data
    ;;
  table) # markdown rows from the reports in OUT (default: both sets)
    for dir in ${2:-out/stage2/llama-en-26m out/stage2/stories260K}; do
      node -e '
        const fs = require("fs"), path = require("path");
        const dir = process.argv[1];
        for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
          const r = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
          const q = JSON.parse(fs.readFileSync(path.join(dir, f.replace(/\.json$/, ""), "config.json"), "utf8")).quantization_config;
          const drop = r.blocks.map((b) => (100 * (1 - b.lossAfter / b.lossBefore)).toFixed(0)).join(" / ");
          console.log(`| ${path.basename(dir)} | ${f.replace(/\.json$/, "")} | ${q.bpw.toFixed(3)} | ${r.pplBefore.toFixed(2)} | **${r.pplAfter.toFixed(2)}** | ${drop} | ${r.samples}×${r.seqlen}, ${r.epochs} ep | ${(r.seconds / 60).toFixed(1)} | ${r.peakRssMiB ? r.peakRssMiB.toFixed(0) : "–"} |`);
        }' "$dir"
    done
    ;;
  *) echo "unknown set $which" >&2; exit 2 ;;
esac
