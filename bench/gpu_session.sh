#!/usr/bin/env bash
# What issue 5 measures on the NVIDIA GPU machine, in one call of at most 10 minutes. Here (with a GPU lent):
#   npm ci && npm run build && GPU_EXCLUDE="node_modules/@biomejs node_modules/assemblyscript node_modules/playwright-core node_modules/typescript" \
#     bash ../shared/gpu/prepare.sh   (54 MiB; with dist/ and the working tree about 58 MiB)
# then the device tool's run with carry [".gpu", "dist"] and the command
#   source .gpu/setup.sh && bash bench/gpu_session.sh
# Writes under $OUT: the WebGPU backend suite's log (every backend op, stage 1 + stage 2 against the CPU), the
# kernel benchmark (bench/webgpu.bench.ts at full scale) and the end-to-end run on stories260K on both backends.
# llama-en-26m (50 MiB) does not fit one transfer beside .gpu/: copy it (and the C4 and WikiText-2 texts) into a
# git-excluded folder, e.g. .fixtures/, and carry only that in a second call while the machine is still warm (it
# keeps .gpu/ and the unpacked node_modules): source .gpu/setup.sh && npx tsx bench/webgpu_e2e.ts --model
# .fixtures/llama-en-26m --calib .fixtures/excerpt.jsonl --data .fixtures/wiki.test.raw --json $OUT/e2e-llama.json
set -uo pipefail
out=${OUT:-out/gpu}
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
export CLUSCOMP_REQUIRE_WEBGPU=1
npx vitest run test/backend test/unit/finetune.test.ts > "$out/suite.log" 2>&1
echo "suite rc=$?" >> "$out/suite.log"
tail -6 "$out/suite.log"
npx tsx bench/webgpu.bench.ts --json "$out/bench.json" > "$out/bench.md" 2> "$out/bench.log"
echo "bench rc=$?"
cat "$out/bench.md"
# the demo's settings: calibration on the excerpt's second half, perplexity on its first 32 windows
tail -c +100000 examples/data/tinystories-excerpt.txt > "$out/calib.txt"
npx tsx bench/webgpu_e2e.ts --model examples/stories260K --calib "$out/calib.txt" \
  --data examples/data/tinystories-excerpt.txt --bits 3 --vector-dim 8 --samples 32 --seqlen 256 --epochs 6 \
  --max-windows 32 --json "$out/e2e-stories260K.json" > "$out/e2e.md" 2> "$out/e2e.log"
echo "e2e rc=$?"
cat "$out/e2e.md"
