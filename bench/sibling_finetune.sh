#!/usr/bin/env bash
# Recovery finetuning of the sibling methods on stories260K at 3.5 bpw (docs/results.md, "The sibling methods and
# GPTQ, measured in one run"): each base from `MODEL=stories bash bench/codebook_quality.sh` is distilled from the
# full-precision model (train --loss kd, 1 epoch on the calibration half of the excerpt, lr 1e-3, windows of 256)
# training what its method trains — LLM-Codebook a LoRA r8 adapter, ClusComp its codebooks and norms — and scored
# before and after by perplexity and KL(FP ‖ Q) on the excerpt's first 4,096 tokens (8 × 512).
#   bash bench/sibling_finetune.sh        (CLI="node …", THREADS=N); results in out/sibling-finetune.log
set -euo pipefail
cd "$(dirname "$0")/.."
cli=${CLI:-node dist/cli/main.js}
threads=${THREADS:-1}
out=out/sibling-finetune
mkdir -p "$out"
q=out/codebook-quality-stories
data=$q/calib.txt
fp=examples/stories260K
score() {
  $cli eval --backend cpu --threads "$threads" --model "$1" "${@:2}" --reference "$fp" \
    --data ../shared/data/tinystories/excerpt.txt --seqlen 512 --max-windows 8 --json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const e=JSON.parse(s);console.log(e.ppl.toFixed(2), e.kl.toFixed(4))})'
}
for row in "llm-codebook:$q/b3.5-dplan-cmin-hessian-nearest-llm-codebook-none:lora" \
  "cluscomp:$q/b3.5-dplan-cmin-none-gptq-cluscomp-none:codebooks,norms"; do
  IFS=: read -r name base sets <<< "$row"
  extra=()
  [ "$sets" = lora ] && extra=(--lora-rank 8)
  rm -rf "${out:?}/$name" "$out/$name.work"
  $cli train --backend cpu --threads "$threads" --model "$base" --data "$data" --out "$out/$name" --train "$sets" \
    "${extra[@]}" --loss kd --teacher "$fp" --seqlen 256 --epochs 1 --lr 1e-3 --json > "$out/$name.json" 2> "$out/$name.log"
  if [ "$sets" = lora ]; then after=$(score "$base" --adapter "$out/$name"); else after=$(score "$out/$name"); fi
  echo "$name $sets before $(score "$base") after $after train $(node -e 'console.log(require(process.argv[1]).seconds.toFixed(0))' "$PWD/$out/$name.json") s" |
    tee -a out/sibling-finetune.log
done
