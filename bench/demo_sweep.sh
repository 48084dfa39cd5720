#!/usr/bin/env bash
# The measurements behind the demo's settings (docs/results.md, "Choosing the demo's settings"): on the bundled
# stories260K, ClusComp stage 1 over bit rates × vector lengths × sharing, then stage 2 over learning rates and
# schedules on the best stage-1 checkpoints, next to RTN at the same rates. Perplexity: the demo's protocol (the
# first 32 windows of 512 tokens of the bundled excerpt); calibration: its second half, as the demo.
#   bash bench/demo_sweep.sh stage1 [outdir]      stage-1 grid → OUT/stage1.tsv
#   bash bench/demo_sweep.sh stage2 [outdir]      stage-2 grid on the STAGE2_VARIANTS (space-separated names):
#                                                 LRS × SCHEDULES (samples x seqlen x epochs) × NORMS × LR_SCHEDULES
#   bash bench/demo_sweep.sh rtn [outdir]         RTN 2/3/4-bit g64 → OUT/rtn.tsv
# Finished rows are reused (delete the row's directory to redo it).
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:?usage: demo_sweep.sh stage1|stage2|rtn [outdir]}
out=${2:-out/demo-sweep}
cli=${CLI:-node dist/cli/main.js}
model=examples/stories260K
data=examples/data/tinystories-excerpt.txt
mkdir -p "$out/s1" "$out/s2" "$out/rtn"
calib=$out/calib.txt
tail -c +100000 "$data" > "$calib"
evalopts=(--data "$data" --seqlen 512 --max-windows ${WINDOWS:-32} --batch-size 4 --json)
ppl() { $cli eval --backend cpu --model "$1" "${evalopts[@]}" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).ppl.toFixed(3)))'; }
bpw() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1]+"/config.json","utf8")).quantization_config.bpw.toFixed(3))' "$1"; }
kib() { du -b "$1"/model.safetensors | awk '{printf "%.0f", $1/1024}'; }

case "$which" in
  stage1)
    for share in ${SHARES:-block none}; do
      for bits in ${BITS:-2.5 3 3.5 4.5}; do
        for d in ${DIMS:-3 4 5 6 7 8 10 12 16}; do
          name=b$bits-d$d-$share
          dir=$out/s1/$name
          grep -q "^$name	" "$out/stage1.tsv" 2>/dev/null && continue
          if ! $cli compress --backend cpu --model "$model" --out "$dir" --bits "$bits" --vector-dim "$d" --share "$share" --json \
            > /dev/null 2> "$out/$name.log"; then
            printf '%s\t%s\t%s\t%s\tunreachable\t-\t-\n' "$name" "$bits" "$d" "$share" >> "$out/stage1.tsv"
            continue
          fi
          printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$bits" "$d" "$share" "$(bpw "$dir")" "$(kib "$dir")" "$(ppl "$dir")" \
            | tee -a "$out/stage1.tsv"
        done
      done
    done
    ;;
  stage2)
    for v in ${STAGE2_VARIANTS:?name the stage-1 variants, e.g. STAGE2_VARIANTS="b3-d6-block"}; do
      for lr in ${LRS:-1e-3 2e-3 5e-3}; do
        for sched in ${SCHEDULES:-32x256x6}; do
          IFS=x read -r samples seqlen epochs <<< "$sched"
          for norms in ${NORMS:-no}; do
           for lrs in ${LR_SCHEDULES:-constant}; do
            name=$v-lr$lr-$sched-norms$norms${lrs/constant/}
            grep -q "^$name	" "$out/stage2.tsv" 2>/dev/null && continue
            dir=$out/s2/$name
            rm -rf "$dir" "$dir.work"
            extra=()
            [ "$norms" = yes ] && extra+=(--train-norms)
            [ "$lrs" = constant ] || extra+=(--lr-schedule "$lrs")
            t0=$(date +%s.%N)
            $cli finetune --backend cpu --model "$model" --stage1 "$out/s1/$v" --out "$dir" --calib "$calib" \
              --calib-samples "$samples" --calib-seqlen "$seqlen" --epochs "$epochs" --lr "$lr" "${extra[@]}" --json \
              > "$out/$name.json" 2> "$out/$name.log"
            t1=$(date +%s.%N)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n' "$name" "$v" "$lr" "$sched" "$norms" "$(bpw "$dir")" "$(ppl "$dir")" \
              "$(echo "$t1 - $t0" | bc)" | tee -a "$out/stage2.tsv"
           done
          done
        done
      done
    done
    ;;
  rtn)
    for bits in 2 3 4; do
      for g in ${GROUPS_RTN:-64 32}; do
        name=rtn-b$bits-g$g
        grep -q "^$name	" "$out/rtn.tsv" 2>/dev/null && continue
        dir=$out/rtn/$name
        $cli compress --backend cpu --model "$model" --out "$dir" --method rtn --bits "$bits" --group-size "$g" --json > /dev/null 2>&1
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$bits" "$(bpw "$dir")" "$(kib "$dir")" "$(ppl "$dir")" | tee -a "$out/rtn.tsv"
      done
    done
    ;;
  *) echo "unknown step $which" >&2; exit 2 ;;
esac
