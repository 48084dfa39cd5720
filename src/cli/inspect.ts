// cluscomp inspect --model DIR [--json]

import { inspectModel } from "../index.js";
import { flag, parse, str } from "./args.js";

export const INSPECT_HELP = `cluscomp inspect --model DIR [--json]
  Architecture, shapes, parameter counts, dtypes and bytes per tensor group of a model directory.
  --model DIR   Hugging Face model directory (config.json, *.safetensors)
  --json        print one JSON object on stdout`;

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return `${n}`;
}

export async function inspectCommand(argv: string[]): Promise<void> {
  const a = parse(argv, { model: { type: "string" }, json: { type: "boolean" } }, "inspect");
  const s = inspectModel(str(a, "model", "inspect"));
  if (flag(a, "json")) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  const c = s.config;
  const lines = [
    `model        ${s.dir}`,
    `architecture ${c.architecture} (${c.modelType})`,
    `layers       ${c.numHiddenLayers}, hidden ${c.hiddenSize}, MLP ${c.intermediateSize}, vocab ${c.vocabSize}`,
    `attention    ${c.numAttentionHeads} heads, ${c.numKeyValueHeads} KV heads, head_dim ${c.headDim}${c.slidingWindow ? `, sliding window ${c.slidingWindow}` : ""}`,
    `rope         theta ${c.ropeTheta}, scaling ${c.ropeScaling.type}`,
    `biases       qkv ${c.qkvBias}, o ${c.oBias}, mlp ${c.mlpBias}; tied embeddings ${c.tieWordEmbeddings}`,
    `parameters   ${human(s.params)} (${s.params}), ${human(s.bytes)}B on disk`,
    "",
    "group      tensors  params      bytes       dtypes",
  ];
  for (const [name, g] of Object.entries(s.groups)) {
    if (g.tensors === 0) continue;
    const dt = Object.entries(g.dtypes)
      .map(([d, n]) => `${d}×${n}`)
      .join(" ");
    lines.push(
      `${name.padEnd(10)} ${String(g.tensors).padStart(7)}  ${human(g.params).padEnd(10)}  ${`${human(g.bytes)}B`.padEnd(10)}  ${dt}`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
