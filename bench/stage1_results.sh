#!/usr/bin/env bash
# Stage-1 quality table (docs/results.md): k-means alone at several bit rates and sharing modes next to RTN and the
# full-precision model, via `cluscomp compare`. Perplexity on the first 4,096 tokens (8 windows of 512), the
# goldens' CI protocol. Usage: bash bench/stage1_results.sh <llama|stories|llama-shared|llama-shared-heavy> [outdir]
# Each variant is reused if already present in the output directory, so an interrupted run can be resumed.
# llama-shared-heavy holds the shared-codebook settings whose k-means costs 20–80 min each on the plain
# TypeScript reference (up to 62 G distance pairs per Lloyd iteration): run them with a fast backend.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:?usage: stage1_results.sh llama|stories|llama-shared|llama-shared-heavy [outdir]}
cli="node dist/cli/main.js"
case "$which" in
  llama)
    out=${2:-out/stage1/llama-en-26m}
    $cli compare --model ../shared/models/llama-en-26m --data ../shared/data/wikitext2/wiki.test.raw --out "$out" \
      --seqlen 512 --max-windows 8 --batch-size 4 \
      --run "method=rtn bits=4 group-size=128" --run "method=rtn bits=4 group-size=64" \
      --run "method=rtn bits=3 group-size=128" --run "method=rtn bits=3 group-size=64" \
      --run "method=rtn bits=2 group-size=128" --run "method=rtn bits=2 group-size=64" \
      --run "bits=4.1 vector-dim=4" --run "bits=3.25 vector-dim=6" --run "bits=3 vector-dim=6" \
      --run "bits=2.5 vector-dim=8" --run "bits=2.2 vector-dim=8"
    ;;
  llama-shared)
    out=${2:-out/stage1/llama-en-26m-shared}
    $cli compare --model ../shared/models/llama-en-26m --data ../shared/data/wikitext2/wiki.test.raw --out "$out" \
      --seqlen 512 --max-windows 8 --batch-size 4 \
      --run "bits=2.2 vector-dim=8 share=block" --run "bits=2.2 vector-dim=8 share=model" \
      --run "bits=4.1 vector-dim=4 share=block"
    ;;
  llama-shared-heavy)
    out=${2:-out/stage1/llama-en-26m-shared}
    $cli compare --model ../shared/models/llama-en-26m --data ../shared/data/wikitext2/wiki.test.raw --out "$out" \
      --seqlen 512 --max-windows 8 --batch-size 4 \
      --run "bits=3 vector-dim=6 share=model" --run "bits=3.25 vector-dim=6 share=block" \
      --run "bits=2.5 vector-dim=8 share=block" --run "bits=2.5 vector-dim=8 share=model" \
      --run "bits=3.25 vector-dim=6 share=model" --run "bits=4.1 vector-dim=4 share=model"
    ;;
  stories)
    out=${2:-out/stage1/stories260K}
    $cli compare --model examples/stories260K --data examples/data/tinystories-excerpt.txt --out "$out" \
      --seqlen 512 --max-windows 8 --batch-size 4 \
      --run "method=rtn bits=4 group-size=64" --run "method=rtn bits=3 group-size=64" --run "method=rtn bits=2 group-size=64" \
      --run "method=rtn bits=4 group-size=128" --run "method=rtn bits=3 group-size=128" --run "method=rtn bits=2 group-size=128" \
      --run "bits=4.1 vector-dim=8 share=none" --run "bits=4.1 vector-dim=8 share=block" --run "bits=4.1 vector-dim=8 share=model" \
      --run "bits=3.25 vector-dim=8 share=none" --run "bits=3.25 vector-dim=8 share=block" --run "bits=3.25 vector-dim=8 share=model" \
      --run "bits=2.5 vector-dim=10 share=none" --run "bits=2.5 vector-dim=10 share=block" --run "bits=2.5 vector-dim=10 share=model" \
      --run "bits=2.2 vector-dim=12 share=none" --run "bits=2.2 vector-dim=12 share=block" --run "bits=2.2 vector-dim=12 share=model"
    ;;
  *) echo "unknown set $which" >&2; exit 2 ;;
esac
