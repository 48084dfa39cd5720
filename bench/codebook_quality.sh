#!/usr/bin/env bash
# Codebook quality (docs/results.md, "Better codebooks"): each row of ROWS,
# "bits:d:code-bits:weighting:assignment[:method[:finetune]]" (d "plan" = the planner's choice; block sharing), is
# compressed and scored by perplexity and KL(FP ‖ Q) on the first 4,096 tokens of the eval text (8 × 512,
# eval --reference). code-bits 16 | min (⌈log₂K⌉-bit packed codes); weighting none | hessian (Hessian-weighted
# k-means); assignment nearest | gptq (GPTQ's column order with error feedback); method cluscomp (default) | reallm
# (rank share chosen by compress) | reallm-rR (--rank R) | gptq-gG, rtn-gG (the scalar baselines, --bits an integer
# width, groups of G; d, code-bits, weighting and assignment are ignored: write "-"); any method with "+seq" takes
# its statistics from the compressed blocks' inputs (--hessian-inputs compressed, GPTQ's sequential order); a
# codebook method with "+unscaled" runs without channel scales (--channel-scales off; rows measured before
# 2026-12-01, when scales became the default, are recorded so);
# finetune none (default) | blockwise (stage 2 at its defaults on the calibration text).
# MODEL=llama (default: llama-en-26m, WikiText-2, calibration CALIB_SAMPLES (default 128) C4 windows of 512
# tokens, GPTQ's set) or MODEL=stories (stories260K, the TinyStories excerpt's first 4,096 tokens, calibration
# windows of 256 tokens from the excerpt's second half, as the demo and the issue's GPTQ figures). Seed 0.
#   bash bench/codebook_quality.sh [outdir]     (ROWS="…", MODEL=llama|stories, CLI="node …", THREADS=N)
# Writes OUT/results.tsv: bits, d, code-bits, weighting, assignment, method, finetune, bpw, perplexity, KL mean,
# top-1 agreement, compress seconds; a row already there is skipped, so a run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
cli=${CLI:-node dist/cli/main.js}
threads=${THREADS:-$(nproc)}
case ${MODEL:-llama} in
  llama)
    out=${1:-out/codebook-quality}
    model=../shared/models/llama-en-26m
    data=../shared/data/wikitext2/wiki.test.raw
    calib=../shared/data/c4/excerpt.jsonl
    calib_seqlen=512 ;;
  stories)
    out=${1:-out/codebook-quality-stories}
    model=../shared/models/stories260K
    data=../shared/data/tinystories/excerpt.txt
    mkdir -p "$out"
    calib=$out/calib.txt
    tail -c +100000 "$data" > "$calib"
    calib_seqlen=256 ;;
  *) echo "MODEL must be llama or stories" >&2; exit 2 ;;
esac
mkdir -p "$out"
results=$out/results.tsv
DEFAULT_ROWS="2.5:8:16:none:nearest 2.5:plan:min:none:nearest 3.25:6:16:none:nearest 3.25:plan:min:none:nearest
  2.5:plan:min:none:gptq 3.25:plan:min:none:gptq 2.5:plan:min:hessian:nearest 2.5:8:16:none:gptq"
for row in ${ROWS:-$DEFAULT_ROWS}; do
  IFS=: read -r bits d codebits weighting assignment method finetune <<< "$row"
  method=${method:-cluscomp}
  finetune=${finetune:-none}
  key="$bits	$d	$codebits	$weighting	$assignment	$method	$finetune	"
  grep -q "^$key" "$results" 2>/dev/null && continue
  name=b$bits-d$d-c$codebits-$weighting-$assignment-$method-$finetune
  extra=()
  [ "$d" = plan ] || extra+=(--vector-dim "$d")
  [ "$weighting:$assignment:$finetune" = none:nearest:none ] ||
    extra+=(--calib "$calib" --calib-samples "${CALIB_SAMPLES:-128}" --calib-seqlen "$calib_seqlen")
  cmethod=${method%+unscaled}
  [ "$cmethod" = "$method" ] || extra+=(--channel-scales off)
  base=$cmethod
  cmethod=${cmethod%+seq}
  [ "$cmethod" = "$base" ] || extra+=(--hessian-inputs compressed)
  codeopts=(--share block --code-bits "$codebits" --weighting "$weighting" --assignment "$assignment")
  case $cmethod in
    reallm-r*) extra+=(--rank "${cmethod#reallm-r}"); cmethod=reallm ;;
    gptq-g* | rtn-g*)
      group=${cmethod#*-g}; cmethod=${cmethod%%-g*}
      extra=(--group-size "$group"); codeopts=()
      [ "${method%+seq}" = "$method" ] || extra+=(--hessian-inputs compressed)
      [ "$cmethod" = rtn ] || extra+=(--calib "$calib" --calib-samples "${CALIB_SAMPLES:-128}" --calib-seqlen "$calib_seqlen") ;;
  esac
  rm -rf "${out:?}/$name"
  $cli compress --backend cpu --threads "$threads" --model "$model" --out "$out/$name" --bits "$bits" \
    --method "$cmethod" "${codeopts[@]}" --finetune "$finetune" "${extra[@]}" --json > "$out/$name.json" 2> "$out/$name.log"
  $cli eval --backend cpu --threads "$threads" --model "$out/$name" --reference "$model" --data "$data" \
    --seqlen 512 --max-windows 8 --json > "$out/$name.eval.json" 2>> "$out/$name.log"
  node -e '
    const c = require(process.argv[1]), e = require(process.argv[2]);
    console.log([...process.argv.slice(3), c.bpw.toFixed(4), e.ppl.toFixed(2), e.kl.toFixed(4),
      e.top1.toFixed(4), c.seconds.toFixed(0)].join("\t"));
  ' "$PWD/$out/$name.json" "$PWD/$out/$name.eval.json" "$bits" "$d" "$codebits" "$weighting" "$assignment" \
    "$method" "$finetune" | tee -a "$results"
done
