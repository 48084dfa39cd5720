// cluscomp inspect --model DIR [--json]

import { checkModelDir, inspectModel, resolveModelPath } from "../index.js";
import { flag, parse, str, warnUnused } from "./args.js";

export const INSPECT_HELP = `cluscomp inspect --model DIR [--json]
  Architecture, shapes, context length, parameter counts, dtypes and bytes per tensor group of a model directory;
  for a cluscomp checkpoint also its quantization (method, bits per weight, sharing, codebooks, stage 2).
  Parameters are the original model's: a compressed matrix counts as its dense weights. The checkpoint is checked
  as loading checks it (shapes, dtypes, quantization_config); tensors its config does not use are listed.
  --model DIR   Hugging Face model directory (config.json, *.safetensors), or a hub id in the local cache
  --json        print one JSON object on stdout`;

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return `${n}`;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

export async function inspectCommand(argv: string[]): Promise<void> {
  const a = parse(argv, { model: { type: "string" }, json: { type: "boolean" } }, "inspect");
  const dir = resolveModelPath(str(a, "model", "inspect"), "--model");
  // the checks loading does (shapes, dtypes, quantization_config, config values); unused tensors only warn here
  const { unused } = checkModelDir(dir, { allowUnused: true });
  warnUnused(dir, unused);
  const s = inspectModel(dir);
  if (flag(a, "json")) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  const c = s.config;
  const q = s.quantization;
  const lines = [
    `model        ${s.dir}`,
    `architecture ${c.architecture} (${c.modelType})`,
    `layers       ${c.numHiddenLayers}, hidden ${c.hiddenSize}, MLP ${c.intermediateSize}, vocab ${c.vocabSize}`,
    `attention    ${c.numAttentionHeads} heads, ${c.numKeyValueHeads} KV heads, head_dim ${c.headDim}${c.slidingWindow ? `, sliding window ${c.slidingWindow}` : ""}`,
    `context      ${s.contextLength} tokens`,
    `rope         theta ${c.ropeTheta}, scaling ${c.ropeScaling.type}`,
    `biases       qkv ${c.qkvBias}, o ${c.oBias}, mlp ${c.mlpBias}; tied embeddings ${c.tieWordEmbeddings}`,
    `parameters   ${human(s.params)} (${s.params.toLocaleString("en-US")}${q ? ", of the original model" : ""}), ${mib(s.bytes)} stored`,
  ];
  if (q) {
    const parts = [`${q.method}, ${q.bpw.toFixed(3)} bits per weight over ${q.compressedModules} matrices`];
    if (q.share) parts.push(`share ${q.share}`);
    if (q.codebooks !== undefined)
      parts.push(
        `${q.codebooks} codebooks (d ${q.vectorDims?.join("/")}, K ${q.clusters?.min === q.clusters?.max ? q.clusters?.min : `${q.clusters?.min}–${q.clusters?.max}`}${q.codeBits ? `, ${q.codeBits.join("/")}-bit codes` : ""}${q.centroidDtype ? `, ${q.centroidDtype}` : ""})`,
      );
    if (q.channelScaled) parts.push(`channel scales on ${q.channelScaled} matrices (fp16, one per output row)`);
    if (q.ranks) parts.push(`low-rank parts of rank ${q.ranks.join("/")} (fp16)`);
    if (q.salient) parts.push(`${q.salient.join("/")} salient input channels per matrix (fp16)`);
    if (q.bits) parts.push(`${q.bits.join("/")}-bit, groups of ${q.groupSizes?.join("/")}`);
    lines.push(`quantization ${parts.join("; ")}`);
    const f = q.finetune;
    lines.push(
      `finetuning   ${
        f
          ? `${String(f.method)}: ${String(f.calib_samples)} windows × ${String(f.calib_seqlen)} tokens of ${String(f.calib)}, ${String(f.epochs)} epochs, lr ${String(f.lr)}${f.train_norms ? ", norms" : ""}`
          : "none (no stage 2)"
      }`,
    );
    const t = q.train;
    if (t)
      lines.push(
        `training     end to end: ${Array.isArray(t.train) ? t.train.join("+") : String(t.train)}, loss ${String(t.loss)}, ${String(t.steps)} steps at lr ${String(t.lr)} on ${String(t.data)}`,
      );
  }
  lines.push("", "group      tensors  params      stored      dtypes");
  for (const [name, g] of Object.entries(s.groups)) {
    if (g.tensors === 0) continue;
    const dt = Object.entries(g.dtypes)
      .map(([d, n]) => `${d}×${n}`)
      .join(" ");
    lines.push(
      `${name.padEnd(10)} ${String(g.tensors).padStart(7)}  ${human(g.params).padEnd(10)}  ${mib(g.bytes).padEnd(10)}  ${dt}`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
