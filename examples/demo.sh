#!/usr/bin/env bash
# The README's main job on the bundled example (stories260K, MIT): inspect it, measure its perplexity on a
# TinyStories excerpt, and generate a story. Uses only files inside this repository.
set -euo pipefail
cd "$(dirname "$0")/.."
cli="node dist/cli/main.js"
model=examples/stories260K
data=examples/data/tinystories-excerpt.txt
echo "== inspect"; $cli inspect --model "$model"
echo; echo "== perplexity (first 32 windows of 512 tokens)"
$cli eval --model "$model" --data "$data" --seqlen 512 --max-windows 32 --batch-size 4
echo; echo "== generate (greedy)"
$cli generate --model "$model" --prompt "Once upon a time" --max-new-tokens 96 --temperature 0
