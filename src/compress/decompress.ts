// cluscomp checkpoint → dense Hugging Face checkpoint: every compressed linear decoded to `<module>.weight`
// [out, in] (with the CPU reference kernels the model itself runs, so the dense model computes what the compressed
// one does, up to the output dtype), codes, codebooks, scales and zeros dropped, config.json without its
// quantization_config. The result has the tensor names, shapes and layout of the original model, so tools that
// cannot read codebooks (transformers, llama.cpp's converter) load it as any Llama/Mistral/Qwen2 checkpoint.
// Written atomically, one tensor decoded at a time; shards of at most `maxShardBytes` with an index past that.

import * as path from "node:path";
import { codebook_decode_forward } from "../backend/cpu/codebook_decode.js";
import { rtn_decode_forward } from "../backend/cpu/rtn_decode.js";
import { CompressionError } from "../errors.js";
import { checkOutputDir, writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import { channelScaleName, parseQuantizationConfig, sideTensorNames } from "../io/cluscomp_format.js";
import { readModelConfig } from "../io/hf_config.js";
import {
  copyCompanionFiles,
  INDEX_FILE,
  openCheckpoint,
  type TensorSource,
  type TensorToWrite,
  writeSafetensors,
} from "../io/safetensors.js";
import { assertFinite } from "../model/load.js";
import { checkCheckpoint, readCodebookCodes, readSalientIndex } from "../model/tensors.js";
import { DTYPE_BYTES, type DType, fromFloat32, toFloat32 } from "../tensor/dtype.js";
import { numel } from "../tensor/shape.js";
import { dirBytes } from "./compress.js";
import { lowRankProduct } from "./lowrank.js";

export type DenseDtype = "F32" | "F16" | "BF16";
export const DENSE_DTYPES: readonly DenseDtype[] = ["F32", "F16", "BF16"];

/** config.json's name of each dtype (transformers' "dtype" / "torch_dtype"). */
const TORCH_NAMES: Record<DenseDtype, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

export interface DecompressOptions {
  /** Dtype of every floating-point tensor written (default: the dtype of the model's embedding). */
  dtype?: DenseDtype;
  /** Accept a checkpoint with tensors its config does not use (they are copied); default: refuse. */
  allowUnusedTensors?: boolean;
  /** Largest shard (default 4 GiB); a bigger model is written as model-0000k-of-0000n.safetensors + index. */
  maxShardBytes?: number;
  onProgress?: (p: { done: number; total: number; current: string }) => void;
}

export interface DecompressReport {
  dtype: DenseDtype;
  tensors: number;
  shards: number;
  bytes: number;
  seconds: number;
}

function isFloat(d: DType): d is DenseDtype {
  return d === "F32" || d === "F16" || d === "BF16";
}

function encode(dtype: DenseDtype, w: Float32Array): ArrayBufferView {
  return dtype === "F32" ? w : fromFloat32(dtype, w);
}

export async function decompressModel(
  srcDir: string,
  out: string,
  opts: DecompressOptions = {},
): Promise<DecompressReport> {
  const t0 = performance.now();
  const cfg = readModelConfig(srcDir);
  const q = parseQuantizationConfig(cfg.raw, path.join(srcDir, "config.json"));
  if (!q) {
    throw new CompressionError(
      "decompress.not_compressed",
      `${srcDir} is not a cluscomp checkpoint (config.json has no quantization_config): it is already dense`,
    );
  }
  const outDir = checkOutputDir(out).dir;
  const source: TensorSource = openCheckpoint(srcDir);
  try {
    checkCheckpoint(cfg, source, { allowUnused: opts.allowUnusedTensors });
    const embed = source.info("model.embed_tokens.weight");
    const dtype: DenseDtype = opts.dtype ?? (embed && isFloat(embed.dtype) ? embed.dtype : "F32");
    // tensors that only exist to encode a compressed weight
    const encoding = new Set<string>();
    const decoded = new Map<string, { module: string; shape: [number, number] }>();
    const I = cfg.intermediateSize;
    const C = cfg.hiddenSize;
    const qDim = cfg.numAttentionHeads * cfg.headDim;
    const kvDim = cfg.numKeyValueHeads * cfg.headDim;
    const shapes: Record<string, [number, number]> = {
      q_proj: [qDim, C],
      k_proj: [kvDim, C],
      v_proj: [kvDim, C],
      o_proj: [C, qDim],
      gate_proj: [I, C],
      up_proj: [I, C],
      down_proj: [C, I],
      lm_head: [cfg.vocabSize, C],
    };
    for (const [module, m] of Object.entries(q.modules)) {
      const kind = module.split(".").at(-1)!;
      const shape = shapes[kind];
      if (!shape) throw new CompressionError("decompress.module", `${srcDir}: unknown compressed module ${module}`);
      if (m.method === "cluscomp") {
        encoding.add(`${module}.codes`);
        encoding.add(m.codebook);
        for (const name of sideTensorNames(module, m)) encoding.add(name);
      } else {
        for (const s of ["qweight", "scales", "zeros"]) encoding.add(`${module}.${s}`);
      }
      decoded.set(`${module}.weight`, { module, shape });
    }
    const codebooks = new Map<string, Float32Array>();
    const decode = (module: string, [o, i]: [number, number]): Float32Array => {
      const m = q.modules[module];
      const w = new Float32Array(o * i);
      if (m.method === "cluscomp") {
        let cb = codebooks.get(m.codebook);
        if (!cb) {
          cb = source.readFloat32(m.codebook);
          codebooks.set(m.codebook, cb);
        }
        const nb = Math.ceil(o / m.d);
        const codes = readCodebookCodes(source, module, m, i, nb);
        codebook_decode_forward(w, codes, cb, o, i, m.d, nb, m.K, Math.ceil(nb / m.m));
        if (m.channel_scale) {
          // row r of the decoded codes times channel_scale[r]
          const s = source.readFloat32(channelScaleName(module));
          for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) w[r * i + c] *= s[r];
        }
        if (m.rank !== undefined) {
          // ReALLM: W = B·A + the decoded residual
          const ba = lowRankProduct(
            source.readFloat32(`${module}.lowrank_A`),
            source.readFloat32(`${module}.lowrank_B`),
            o,
            i,
          );
          for (let j = 0; j < w.length; j++) w[j] += ba[j];
        }
        if (m.salient !== undefined) {
          // LLM-Codebook: W[:, S] += salient_weight
          const S = readSalientIndex(source, module, m.salient, i);
          const B = source.readFloat32(`${module}.salient_weight`);
          for (let r = 0; r < o; r++) for (let c = 0; c < S.length; c++) w[r * i + S[c]] += B[r * S.length + c];
        }
      } else {
        const raw = source.readRaw(`${module}.qweight`) as Uint8Array;
        const words = new Int32Array(Math.ceil(raw.length / 4) + 1);
        new Uint8Array(words.buffer).set(raw);
        const scales = source.readFloat32(`${module}.scales`);
        const zeros = source.readFloat32(`${module}.zeros`);
        rtn_decode_forward(w, words, scales, zeros, o, i, m.bits, m.group_size);
      }
      assertFinite(`${module}.weight (decoded)`, w);
      return w;
    };
    const names = [...source.names().filter((n) => !encoding.has(n)), ...decoded.keys()].sort();
    let done = 0;
    const tensors: TensorToWrite[] = names.map((name) => {
      const dec = decoded.get(name);
      const tick = () => opts.onProgress?.({ done: ++done, total: names.length, current: name });
      if (dec) {
        return {
          name,
          dtype,
          shape: dec.shape,
          data: () => {
            const w = encode(dtype, decode(dec.module, dec.shape));
            tick();
            return w;
          },
        };
      }
      const info = source.info(name)!;
      if (!isFloat(info.dtype) || info.dtype === dtype) {
        return {
          name,
          dtype: info.dtype,
          shape: info.shape,
          data: () => {
            tick();
            return source.readRaw(name);
          },
        };
      }
      return {
        name,
        dtype,
        shape: info.shape,
        data: () => {
          const raw = source.readRaw(name);
          tick();
          return encode(dtype, info.dtype === "F32" ? (raw as Float32Array) : toFloat32(info.dtype, raw));
        },
      };
    });
    // shards: consecutive tensors up to maxShardBytes
    const limit = opts.maxShardBytes ?? 4 * 2 ** 30;
    const shards: TensorToWrite[][] = [[]];
    let size = 0;
    for (const t of tensors) {
      const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
      if (size > 0 && size + bytes > limit) {
        shards.push([]);
        size = 0;
      }
      shards.at(-1)!.push(t);
      size += bytes;
    }
    const { quantization_config: _q, ...rest } = cfg.raw;
    const config: Record<string, unknown> = { ...rest, dtype: TORCH_NAMES[dtype] };
    if ("torch_dtype" in rest) config.torch_dtype = TORCH_NAMES[dtype];
    await writeDirAtomic(outDir, (dir) => {
      if (shards.length === 1) {
        writeSafetensors(path.join(dir, "model.safetensors"), shards[0], { format: "pt" });
      } else {
        const n = shards.length;
        const weightMap: Record<string, string> = {};
        let total = 0;
        shards.forEach((list, k) => {
          const file = `model-${String(k + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
          writeSafetensors(path.join(dir, file), list, { format: "pt" });
          for (const t of list) {
            weightMap[t.name] = file;
            total += numel(t.shape) * DTYPE_BYTES[t.dtype];
          }
        });
        writeFileAtomic(
          path.join(dir, INDEX_FILE),
          `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`,
        );
      }
      writeFileAtomic(path.join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
      copyCompanionFiles(srcDir, dir, ["cluscomp.json"]);
    });
    return {
      dtype,
      tensors: tensors.length,
      shards: shards.length,
      bytes: dirBytes(outDir),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    source.close();
  }
}
