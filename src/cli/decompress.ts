// cluscomp decompress --model DIR --out DIR [--dtype F32|F16|BF16] [--json]

import { DENSE_DTYPES, type DenseDtype, decompressModel, resolveModelPath } from "../index.js";
import { allowUnused, checkOutputArg, flag, optStr, parse, str, usage } from "./args.js";
import { ProgressBar } from "./progress.js";

export const DECOMPRESS_HELP = `cluscomp decompress --model DIR --out DIR [options]
  Writes a dense Hugging Face checkpoint of a cluscomp model (every compressed linear decoded to its weight, the
  original tensor names and layout, config.json without quantization_config), for tools that cannot read
  codebooks, e.g. transformers' from_pretrained. Atomic; the output must not exist or be empty.
  --model DIR    a cluscomp checkpoint (or a Hugging Face hub id in the local cache)
  --out DIR      the dense checkpoint
  --dtype T      F32 | F16 | BF16 for every floating-point tensor (default: the dtype of the model's embedding)
  --allow-unused-tensors  copy tensors the config does not use instead of refusing the checkpoint
  --json         print one JSON object {dtype, tensors, shards, bytes, seconds} on stdout`;

export async function decompressCommand(argv: string[]): Promise<void> {
  const a = parse(
    argv,
    {
      model: { type: "string" },
      out: { type: "string" },
      dtype: { type: "string" },
      json: { type: "boolean" },
      "allow-unused-tensors": { type: "boolean" },
    },
    "decompress",
  );
  const dtype = optStr(a, "dtype")?.toUpperCase();
  if (dtype !== undefined && !(DENSE_DTYPES as readonly string[]).includes(dtype))
    usage("usage.dtype", `--dtype must be one of ${DENSE_DTYPES.join(", ")}, got "${optStr(a, "dtype")}"`);
  const model = resolveModelPath(str(a, "model", "decompress"), "--model");
  const out = checkOutputArg(str(a, "out", "decompress"));
  let bar: ProgressBar | null = null;
  const r = await decompressModel(model, out, {
    dtype: dtype as DenseDtype | undefined,
    allowUnusedTensors: allowUnused(a),
    onProgress: (p) => {
      bar ??= new ProgressBar({ label: "decompress", total: p.total, unit: "tensors" });
      bar.update(p.done);
    },
  });
  if (flag(a, "json")) process.stdout.write(`${JSON.stringify(r)}\n`);
  else
    process.stdout.write(
      `wrote ${r.tensors} tensors (${r.dtype}) in ${r.shards} file${r.shards > 1 ? "s" : ""}, ${(r.bytes / 2 ** 20).toFixed(2)} MiB, to ${out} in ${r.seconds.toFixed(1)}s\n`,
    );
}
