#!/usr/bin/env bash
# Training throughput and peak RSS, cluscomp's engine (bench/train.bench.ts, CPU fast tier) against PyTorch
# (bench/torch_train.py, Debian's python3-torch: apt-get install python3-torch libopenblas0-pthread — without
# OpenBLAS, Debian's torch runs on the reference BLAS at ~3.5 GFLOP/s) on llama-en-26m, seqlen 512,
# batch 1, cross-entropy + AdamW, for each trainable set, the two engines alternating run by run (the machine is
# shared), both on THREADS threads. Codebooks train on a 2.5-bpw block-shared ClusComp copy (made once).
#   bash bench/train_vs_torch.sh [rounds] [seqlen]      → OUT/results.jsonl and a table of medians and ratios
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
T=${2:-512}
out=${OUT:-out/train-bench}
threads=${THREADS:-2}
model=../shared/models/llama-en-26m
cb=$out/llama-en-26m-2.5bpw
py=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"
[ -f "$cb/config.json" ] || node dist/cli/main.js compress --backend cpu --model "$model" --out "$cb" --bits 2.5 >/dev/null
ids=$out/ids.json
[ -f "$ids" ] || npx tsx bench/tokenize.ts "$model" ../shared/data/tinystories/excerpt.txt 400000 > "$ids"
for r in $(seq 1 "$rounds"); do
  for set in ${SETS:-all lora norms codebooks}; do
    m=$model
    [ "$set" = codebooks ] && m=$cb
    npx tsx bench/train.bench.ts --model "$m" --set "$set" --seqlen "$T" --threads "$threads" >> "$out/results.jsonl"
    $py bench/torch_train.py --model "$m" --set "$set" --seqlen "$T" --threads "$threads" --ids "$ids" >> "$out/results.jsonl"
    tail -n 2 "$out/results.jsonl"
  done
done
node -e '
  const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse).filter((r) => r.seqlen === Number(process.argv[2]));
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  console.log("| set | trainable params | cluscomp tok/s | PyTorch tok/s | ratio | cluscomp peak RSS MiB | PyTorch peak RSS MiB |");
  console.log("|---|---|---|---|---|---|---|");
  for (const set of ["all", "lora", "norms", "codebooks"]) {
    const c = rows.filter((r) => r.set === set && r.engine === "cluscomp");
    const p = rows.filter((r) => r.set === set && r.engine.startsWith("pytorch"));
    if (!c.length || !p.length) continue;
    const ct = med(c.map((r) => r.tokensPerSecond)), pt = med(p.map((r) => r.tokensPerSecond));
    console.log(`| ${set} | ${c[0].trainableParams.toLocaleString("en-US")} | ${ct.toFixed(0)} | ${pt.toFixed(0)} | ${(ct / pt).toFixed(2)} | ${med(c.map((r) => r.peakRssMiB)).toFixed(0)} | ${med(p.map((r) => r.peakRssMiB)).toFixed(0)} |`);
  }' "$out/results.jsonl" "$T"
