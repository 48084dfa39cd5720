#!/usr/bin/env bash
# Recovery finetuning of the sibling methods on stories260K at 3.5 bpw (docs/results.md, "The sibling methods and
# GPTQ, measured in one run"): each base from `MODEL=stories bash bench/codebook_quality.sh` is distilled from the
# full-precision model (train --loss kd, 1 epoch on the calibration half of the excerpt, lr 1e-3, windows of 256)
# training what its method trains — LLM-Codebook a LoRA r8 adapter, ClusComp its codebooks and norms — and scored
# before and after by perplexity and KL(FP ‖ Q) on the excerpt's first 4,096 tokens (8 × 512).
# MODEL=llama: the same on llama-en-26m at 3.25 bpw (bases from `bash bench/codebook_quality.sh`, without channel
# scales: LLM-Codebook with GPTQ-style codes + LoRA r8, ReALLM rank 8 + its low-rank factors, ClusComp + codebooks
# and norms), distilled on the C4 excerpt (windows of 512, STEPS steps, default 32), scored on WikiText-2's first
# 4,096 tokens. LR overrides the learning rate (default 1e-3).
#   bash bench/sibling_finetune.sh        (MODEL=stories|llama, CLI="node …", THREADS=N); results in
#                                         out/sibling-finetune.log
set -euo pipefail
cd "$(dirname "$0")/.."
cli=${CLI:-node dist/cli/main.js}
threads=${THREADS:-1}
out=out/sibling-finetune
mkdir -p "$out"
if [ "${MODEL:-stories}" = llama ]; then
  q=out/codebook-quality
  data=../shared/data/c4/excerpt.jsonl
  fp=../shared/models/llama-en-26m
  evaldata=../shared/data/wikitext2/wiki.test.raw
  seqlen=512
  length=(--max-steps "${STEPS:-32}")
  # the bases measured before channel scales (without them; directory names from that run)
  rows=("llm-codebook:$q/b3.25-dplan-cmin-hessian-gptq-llm-codebook-none:lora"
    "reallm-r8:$q/b3.25-dplan-cmin-none-gptq-reallm-r8-none:lowrank"
    "cluscomp:$q/b3.25-dplan-cmin-none-gptq:codebooks,norms")
  out=$out/llama
  mkdir -p "$out"
else
  q=out/codebook-quality-stories
  data=$q/calib.txt
  fp=examples/stories260K
  evaldata=../shared/data/tinystories/excerpt.txt
  seqlen=256
  length=(--epochs 1)
  rows=("llm-codebook:$q/b3.5-dplan-cmin-hessian-nearest-llm-codebook-none:lora"
    "cluscomp:$q/b3.5-dplan-cmin-none-gptq-cluscomp-none:codebooks,norms")
fi
score() {
  $cli eval --backend cpu --threads "$threads" --model "$1" "${@:2}" --reference "$fp" \
    --data "$evaldata" --seqlen 512 --max-windows 8 --json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const e=JSON.parse(s);console.log(e.ppl.toFixed(2), e.kl.toFixed(4))})'
}
for row in "${rows[@]}"; do
  IFS=: read -r name base sets <<< "$row"
  extra=()
  [ "$sets" = lora ] && extra=(--lora-rank 8)
  rm -rf "${out:?}/$name" "$out/$name.work"
  $cli train --backend cpu --threads "$threads" --model "$base" --data "$data" --out "$out/$name" --train "$sets" \
    "${extra[@]}" --loss kd --teacher "$fp" --seqlen "$seqlen" "${length[@]}" --lr "${LR:-1e-3}" --json > "$out/$name.json" 2> "$out/$name.log"
  if [ "$sets" = lora ]; then after=$(score "$base" --adapter "$out/$name"); else after=$(score "$out/$name"); fi
  echo "$name $sets before $(score "$base") after $after train $(node -e 'console.log(require(process.argv[1]).seconds.toFixed(0))' "$PWD/$out/$name.json") s" |
    tee -a out/sibling-finetune.log
done
