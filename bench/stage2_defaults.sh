#!/usr/bin/env bash
# The measurements behind stage 2's default learning rate and schedule (docs/results.md, "Stage 2 defaults"):
# llama-en-26m stage-1 checkpoints at several rates and sharings, each tuned with every candidate setting on a
# short schedule (SAMPLES × SEQLEN × EPOCHS, default 16 × 512 × 4; C4 calibration), perplexity on the first
# 4,096 tokens of WikiText-2 (8 windows of 512) before and after, and the KL divergence from the full-precision
# model over the same tokens (eval --reference: steadier than perplexity at 3–4 bpw). Rows are appended to
# OUT/results.tsv (row, variant, lr, schedule, ppl stage 1, ppl tuned, KL stage 1, KL tuned, blocks kept, seconds)
# and reused.
#   bash bench/stage2_defaults.sh [outdir]       (SETTINGS="lr:schedule …", VARIANTS="name:flags …" override)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/stage2-defaults}
cli=${CLI:-node dist/cli/main.js}
model=../shared/models/llama-en-26m
calib=../shared/data/c4/excerpt.jsonl
data=../shared/data/wikitext2/wiki.test.raw
SAMPLES=${SAMPLES:-16}
SEQLEN=${SEQLEN:-512}
EPOCHS=${EPOCHS:-4}
VARIANTS=${VARIANTS:-"b4.1-d4-none:--bits=4.1,--vector-dim=4,--share=none b3.25-d6-block:--bits=3.25,--vector-dim=6,--share=block b2.5-d8-block:--bits=2.5,--vector-dim=8,--share=block b2.5-d8-none:--bits=2.5,--vector-dim=8,--share=none"}
SETTINGS=${SETTINGS:-"1e-3:constant 5e-3:constant 5e-3:cosine 2e-3:cosine"}
mkdir -p "$out/s1" "$out/s2"
# "ppl kl" of a model against the full-precision one on the first 8 windows of 512
pplkl() { $cli eval --backend cpu --model "$1" --reference "$model" --data "$data" --seqlen 512 --max-windows 8 --json 2>/dev/null \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);console.log(r.ppl.toFixed(2)+"\t"+r.kl.toFixed(5))})'; }
for v in $VARIANTS; do
  name=${v%%:*}
  IFS=, read -r -a flags <<< "${v#*:}"
  s1=$out/s1/$name
  if [ ! -f "$s1/config.json" ]; then
    $cli compress --backend cpu --model "$model" --out "$s1" "${flags[@]}" --json > "$out/s1-$name.json" 2> "$out/s1-$name.log"
  fi
  [ -f "$out/s1-$name.pplkl" ] || pplkl "$s1" > "$out/s1-$name.pplkl"
  read -r s1ppl s1kl < "$out/s1-$name.pplkl"
  for setting in $SETTINGS; do
    lr=${setting%%:*}
    sched=${setting#*:}
    row=$name-lr$lr-$sched-${SAMPLES}x${SEQLEN}x$EPOCHS
    grep -q "^$row	" "$out/results.tsv" 2>/dev/null && continue
    dir=$out/s2/$row
    t0=$(date +%s)
    [ -f "$dir/config.json" ] && [ -s "$out/$row.json" ] || { rm -rf "$dir" "$dir.work"; $cli finetune --backend cpu --model "$model" --stage1 "$s1" --out "$dir" --calib "$calib" \
      --calib-samples "$SAMPLES" --calib-seqlen "$SEQLEN" --epochs "$EPOCHS" --lr "$lr" --lr-schedule "$sched" \
      --json > "$out/$row.json" 2> "$out/$row.log"; }
    t1=$(date +%s)
    kept=$(node -e 'const r=require(process.argv[1]);console.log(r.blocks.map(b=>b.kept==="tuned"?"t":"s").join(""))' "$PWD/$out/$row.json")
    read -r ppl kl < <(pplkl "$dir")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$name" "$lr" "$sched" "$s1ppl" "$ppl" "$s1kl" "$kl" "$kept" "$((t1 - t0))" \
      | tee -a "$out/results.tsv"
  done
done
