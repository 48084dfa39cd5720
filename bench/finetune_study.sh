#!/usr/bin/env bash
# ClusComp's finetuning claims, measured (docs/results.md, "Finetuning a compressed model"), on llama-en-26m with
# the same data, order and optimizer for every method (AdamW 0.9/0.999, 1e-8, weight decay 0, 10 warmup steps
# then constant, global-norm clip 1.0, float32, seed 0 for the data order and LoRA's initialisation).
# PROTOCOL=A (default), domain adaptation:
#   eval  the first 4,096 tokens of ../shared/data/tinystories/excerpt.txt (8 windows of 512, the golden protocol)
#   train the same file from byte 100,074 (the first blank line after byte 100,000) to the end, tokenized on its
#         own with BOS: 54 windows of 512; 3 epochs (162 steps), a seeded permutation per epoch, batch 1
# PROTOCOL=B, a task with an accuracy: the seeded arithmetic task (bench/arithmetic_task.ts: 4,000 training and
#   500 held-out "Q: What is 47 plus 38?\nA:" → " 85" items, no operand pair shared), loss on the answer + EOS,
#   batch 16, EPOCHS_B epochs (default 1: 250 steps); accuracy = exact match of the greedy answer
#   (`cluscomp eval --task`) on the 500 held-out items, before and after.
# PROTOCOL=C, recovery: ClusComp bases at ~2.0 and ~1.2 bits/weight (stage 1 + 2) distilled from the
#   full-precision model (`train --loss kd --teacher`), on SAMPLES_C (default 48) self-generated samples of 512
#   tokens (`cluscomp generate-data` from the FP model, seed 0) for EPOCHS_C (default 2) epochs, or on the C4
#   excerpt for the same number of steps; perplexity on the first 4,096 tokens of WikiText-2 (8 × 512).
#   Rows are "name:base:sets:lr:data[:extra flags]" with data gen | c4 (bases with 16-bit codes as the reference
#   stores them, and "-packed" ones with --code-bits min); the bases' stage-1 and stage-2
#   perplexities go to OUT/bases-C.tsv. The trained models are kept (OUT/runs/C-<name>) for samples.
# Rows are "name:base:sets:lr[:extra flags, comma-separated]"; each writes a line to OUT/results-<protocol>.tsv
# (name, base, trainable set, lr, trainable parameters, before, after, train seconds, peak RSS MiB, tokens/s;
# before/after: perplexity in A, accuracy % in B) and is skipped when its line is there, so a study resumes.
#   bash bench/finetune_study.sh [outdir]     (PROTOCOL=A|B, ROWS="…" picks rows, THREADS=N, CLI="node …")
# Bases (made once, reused): RTN with `compress --method rtn`; ClusComp with stage 1 (`compress`) and stage 2
# (`finetune`, the short schedule of bench/stage2_defaults.sh: 16 C4 windows × 512 × 4 epochs, lr 1e-3 constant).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/finetune-study}
cli=${CLI:-node dist/cli/main.js}
model=../shared/models/llama-en-26m
text=../shared/data/tinystories/excerpt.txt
calib=../shared/data/c4/excerpt.jsonl
threads=${THREADS:-$(nproc)}
mkdir -p "$out/bases" "$out/runs"

train=$out/train.txt
# bytes from offset 100,074 (0-based) to the end
[ -s "$train" ] || { tail -c +100075 "$text" > "$train.tmp" && mv "$train.tmp" "$train"; }

# base NAME → its directory, made on first use
base() {
  local name=$1 dir=$out/bases/$1
  case $name in
    fp) echo "$model"; return ;;
  esac
  if [ ! -f "$dir/config.json" ]; then
    case $name in
      rtn-*)
        # rtn-<bits>g<group>
        local spec=${name#rtn-}
        $cli compress --backend cpu --model "$model" --out "$dir" --method rtn --bits "${spec%g*}" \
          --group-size "${spec#*g}" > "$out/bases/$name.log" 2>&1 ;;
      cc-*)
        # cc-<bits>-d<vector dim>-<share>[-packed]: stage 1, then stage 2
        # (d "dplan": the planner's vector lengths; "-packed": --code-bits min)
        IFS=- read -r _ bits d share codes <<< "$name"
        local dim=(--vector-dim "${d#d}")
        [ "$d" = dplan ] && dim=()
        local codebits=16
        [ "${codes:-}" = packed ] && codebits=min
        [ -f "$dir.s1/config.json" ] || $cli compress --backend cpu --model "$model" --out "$dir.s1" --bits "$bits" \
          "${dim[@]}" --share "$share" --code-bits "$codebits" > "$out/bases/$name.s1.log" 2>&1
        $cli finetune --backend cpu --model "$model" --stage1 "$dir.s1" --out "$dir" --calib "$calib" \
          --calib-samples 16 --calib-seqlen 512 --epochs 4 --lr 1e-3 --lr-schedule constant \
          > "$out/bases/$name.log" 2>&1 ;;
      *) echo "unknown base $name" >&2; exit 2 ;;
    esac
  fi
  echo "$dir"
}

protocol=${PROTOCOL:-A}
results=$out/results-$protocol.tsv
if [ "$protocol" = A ]; then
  DEFAULT_ROWS="fp-full:fp:all:1e-4 fp-lora64:fp:lora:3e-4:--lora-rank=64
    rtn3g128-lora64:rtn-3g128:lora:3e-4:--lora-rank=64 rtn2g64-lora64:rtn-2g64:lora:3e-4:--lora-rank=64
    cc3.25-cb-1e-4:cc-3.25-d6-block:codebooks:1e-4 cc3.25-cb-3e-4:cc-3.25-d6-block:codebooks:3e-4
    cc3.25-cb-1e-3:cc-3.25-d6-block:codebooks:1e-3 cc2.5-cb-3e-4:cc-2.5-d8-block:codebooks:3e-4
    cc4.1-cb-3e-4:cc-4.1-d4-block:codebooks:3e-4 cc3.25-cblora8-3e-4:cc-3.25-d6-block:codebooks,lora:3e-4:--lora-rank=8
    cc3.25-cbnorms-3e-4:cc-3.25-d6-block:codebooks,norms:3e-4 fp-lora8:fp:lora:1e-3:--lora-rank=8
    rtn4g64-lora64:rtn-4g64:lora:3e-4:--lora-rank=64"
  data=(--data "$train" --seqlen 512 --epochs 3 --batch-size 1 --eval-data "$text" --eval-windows 8)
elif [ "$protocol" = C ]; then
  wiki=../shared/data/wikitext2/wiki.test.raw
  gen=$out/gen-fp-${SAMPLES_C:-48}x512.jsonl
  [ -s "$gen" ] || $cli generate-data --backend cpu --threads "$threads" --model "$model" --out "$gen" \
    --samples "${SAMPLES_C:-48}" --seqlen 512 --seed 0 > "$gen.log" 2>&1
  steps_c=$(( ${SAMPLES_C:-48} * ${EPOCHS_C:-2} ))
  DEFAULT_ROWS="cc2-gen-3e-4:cc-2-dplan-block:codebooks,norms:3e-4:gen
    cc2p-gen-3e-4:cc-2-dplan-block-packed:codebooks,norms:3e-4:gen
    cc1.2p-gen-3e-4:cc-1.2-dplan-block-packed:codebooks,norms:3e-4:gen
    cc1.2-gen-3e-4:cc-1.2-dplan-block:codebooks,norms:3e-4:gen
    cc2p-c4-3e-4:cc-2-dplan-block-packed:codebooks,norms:3e-4:c4
    cc1.2p-c4-3e-4:cc-1.2-dplan-block-packed:codebooks,norms:3e-4:c4"
  data=(--seqlen 512 --batch-size 1 --eval-data "$wiki" --eval-windows 8 --loss kd --teacher "$model")
  # perplexity (first 8 × 512 of WikiText-2) of a checkpoint
  wikippl() {
    $cli eval --backend cpu --threads "$threads" --model "$1" --data "$wiki" --seqlen 512 --max-windows 8 --json \
      2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).ppl.toFixed(2)))'
  }
else
  [ -s "$out/arith/test.jsonl" ] || npx tsx bench/arithmetic_task.ts "$out/arith" > /dev/null
  DEFAULT_ROWS="fp-full:fp:all:1e-4 cc3.25-cb:cc-3.25-d6-block:codebooks:1e-3
    rtn3g128-lora64:rtn-3g128:lora:3e-4:--lora-rank=64 fp-lora64:fp:lora:3e-4:--lora-rank=64"
  data=(--data "$out/arith/train.jsonl" --seqlen 64 --epochs "${EPOCHS_B:-1}" --batch-size 16)
fi
ROWS=${ROWS:-$DEFAULT_ROWS}

# accuracy in % of a model (and adapter) on the held-out arithmetic items
accuracy() {
  $cli eval --backend cpu --threads "$threads" --task "$out/arith/test.jsonl" "$@" --json 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log((100*JSON.parse(s).accuracy).toFixed(1)))'
}

for row in $ROWS; do
  if [ "$protocol" = C ]; then
    IFS=: read -r name basename sets lr source extra <<< "$row"
  else
    IFS=: read -r name basename sets lr extra <<< "$row"
  fi
  grep -q "^$name	" "$results" 2>/dev/null && continue
  dir=$(base "$basename")
  IFS=, read -r -a flags <<< "${extra:-}"
  if [ "$protocol" = C ]; then
    if ! grep -q "^$basename	" "$out/bases-C.tsv" 2>/dev/null; then
      printf '%s\t%s\t%s\n' "$basename" "$(wikippl "$dir.s1")" "$(wikippl "$dir")" >> "$out/bases-C.tsv"
    fi
    case $source in
      gen) flags+=(--data "$gen" --epochs "${EPOCHS_C:-2}") ;;
      c4) flags+=(--data "$calib" --max-steps "$steps_c") ;;
      *) echo "row $name: data must be gen or c4, got $source" >&2; exit 2 ;;
    esac
  fi
  run=$out/runs/$protocol-$name
  rm -rf "$run" "$run.work"
  $cli train --backend cpu --threads "$threads" --model "$dir" --out "$run" "${data[@]}" \
    --train "$sets" --lr "$lr" --warmup 10 --schedule constant --clip 1 --weight-decay 0 --seed 0 \
    --keep-activations --checkpoint-every 1000 "${flags[@]}" --json > "$run.json" 2> "$run.log"
  before= after=
  if [ "$protocol" = B ]; then
    [ -s "$out/B-before-$basename" ] || accuracy --model "$dir" > "$out/B-before-$basename"
    before=$(cat "$out/B-before-$basename")
    if [ -f "$run/config.json" ]; then model_args=(--model "$run"); else model_args=(--model "$dir"); fi
    [ -f "$run/adapter_config.json" ] && model_args+=(--adapter "$run")
    after=$(accuracy "${model_args[@]}")
  fi
  node -e '
    const r = require(process.argv[1]);
    const [name, base, sets, lr, before, after] = process.argv.slice(2);
    console.log([name, base, sets, lr, r.trainableParams, before || r.pplBefore.toFixed(2),
      after || r.pplAfter.toFixed(2), r.seconds.toFixed(0), r.peakRssMiB.toFixed(0),
      (r.tokens / r.seconds).toFixed(1)].join("\t"));
  ' "$PWD/$run.json" "$name" "$basename" "$sets" "$lr" "$before" "$after" | tee -a "$results"
  # the trained model is not needed after its row (but in C, for samples): keep the report and log
  [ "$protocol" = C ] || rm -rf "$run"
  rm -rf "$run.work"
done
