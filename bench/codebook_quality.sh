#!/usr/bin/env bash
# Codebook quality of stage 1 on llama-en-26m (docs/results.md, "Better codebooks"): each row of ROWS,
# "bits:d:code-bits:weighting:assignment" (d "plan" = the planner's choice; block sharing), is compressed and
# scored by perplexity and KL(FP ‖ Q) on the first 4,096 tokens of WikiText-2 (8 × 512, eval --reference).
# code-bits 16 | min (⌈log₂K⌉-bit packed codes); weighting none | hessian (Hessian-weighted k-means);
# assignment nearest | gptq (GPTQ's column order with error feedback). The statistics of hessian and gptq come
# from CALIB_SAMPLES (default 128) C4 windows of 512 tokens, GPTQ's calibration set, seed 0.
#   bash bench/codebook_quality.sh [outdir]     (ROWS="…", CLI="node …", THREADS=N)
# Writes OUT/results.tsv: bits, d, code-bits, weighting, assignment, bpw, perplexity, KL mean, top-1 agreement,
# compress seconds; a row already there is skipped, so a run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/codebook-quality}
cli=${CLI:-node dist/cli/main.js}
model=../shared/models/llama-en-26m
wiki=../shared/data/wikitext2/wiki.test.raw
calib=../shared/data/c4/excerpt.jsonl
threads=${THREADS:-$(nproc)}
mkdir -p "$out"
results=$out/results.tsv
DEFAULT_ROWS="2.5:8:16:none:nearest 2.5:plan:min:none:nearest 3.25:6:16:none:nearest 3.25:plan:min:none:nearest
  2.5:plan:min:none:gptq 3.25:plan:min:none:gptq 2.5:plan:min:hessian:nearest 2.5:8:16:none:gptq"
for row in ${ROWS:-$DEFAULT_ROWS}; do
  IFS=: read -r bits d codebits weighting assignment <<< "$row"
  key="$bits	$d	$codebits	$weighting	$assignment	"
  grep -q "^$key" "$results" 2>/dev/null && continue
  name=b$bits-d$d-c$codebits-$weighting-$assignment
  extra=()
  [ "$d" = plan ] || extra+=(--vector-dim "$d")
  [ "$weighting:$assignment" = none:nearest ] ||
    extra+=(--calib "$calib" --calib-samples "${CALIB_SAMPLES:-128}" --calib-seqlen 512)
  rm -rf "$out/$name"
  $cli compress --backend cpu --threads "$threads" --model "$model" --out "$out/$name" --bits "$bits" \
    --share block --code-bits "$codebits" --weighting "$weighting" --assignment "$assignment" "${extra[@]}" \
    --json > "$out/$name.json" 2> "$out/$name.log"
  $cli eval --backend cpu --threads "$threads" --model "$out/$name" --reference "$model" --data "$wiki" \
    --seqlen 512 --max-windows 8 --json > "$out/$name.eval.json" 2>> "$out/$name.log"
  node -e '
    const c = require(process.argv[1]), e = require(process.argv[2]);
    console.log([...process.argv.slice(3), c.bpw.toFixed(4), e.ppl.toFixed(2), e.kl.toFixed(4),
      e.top1.toFixed(4), c.seconds.toFixed(0)].join("\t"));
  ' "$PWD/$out/$name.json" "$PWD/$out/$name.eval.json" "$bits" "$d" "$codebits" "$weighting" "$assignment" \
    | tee -a "$results"
done
