// LoRA adapters (Hu et al.; PEFT's LoraConfig with init_lora_weights=True): y = base(x) + (α/r)·B·A·x on the chosen
// linears of every layer, over any base — dense, ClusComp codebooks, RTN (LoRA over a frozen quantized base is the
// QLoRA-style baseline). A [r, in] starts Kaiming-uniform (bound 1/√in, as kaiming_uniform_(a=√5)), B [out, r]
// at zero, so training starts from the base model. Adapters are saved in PEFT's layout — adapter_config.json and
// adapter_model.safetensors with `base_model.model.<module>.lora_A.weight` / `lora_B.weight` — so PEFT and
// transformers load them, and loaded back from it (`--adapter DIR`); `mergeLora` folds them into dense weights.

import * as fs from "node:fs";
import * as path from "node:path";
import type { Backend, Tensor } from "../backend/backend.js";
import { ModelError, UsageError } from "../errors.js";
import { writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import { JSON_LIMITS, readJsonFile } from "../io/files.js";
import {
  ADAPTER_WEIGHTS,
  SafetensorsFile,
  ShardedSource,
  type TensorToWrite,
  writeSafetensors,
} from "../io/safetensors.js";
import { LAYER_LINEARS, type LinearKey } from "../model/decoder_layer.js";
import type { Linear } from "../model/linear.js";
import type { LlamaModel } from "../model/llama.js";
import { assertFinite } from "../model/load.js";
import { Rng } from "../tensor/rng.js";
import { loraParamName } from "./trainable.js";

/** Short names of the linears an adapter can target (as --lora-targets takes them) and their modules. */
export const LORA_TARGETS = {
  q: "self_attn.q_proj",
  k: "self_attn.k_proj",
  v: "self_attn.v_proj",
  o: "self_attn.o_proj",
  gate: "mlp.gate_proj",
  up: "mlp.up_proj",
  down: "mlp.down_proj",
} as const;
export type LoraTarget = keyof typeof LORA_TARGETS;

export interface LoraSettings {
  rank: number;
  alpha: number;
  targets: LoraTarget[];
}

export const ADAPTER_CONFIG = "adapter_config.json";
export { ADAPTER_WEIGHTS };

function keyOf(module: string): LinearKey {
  return LAYER_LINEARS.find(([m]) => m === module)![1];
}

/** Checks rank, alpha and targets (names accepted: q k v o gate up down, or the module names q_proj …). */
export function parseLoraTargets(list: string): LoraTarget[] {
  const out: LoraTarget[] = [];
  for (const raw of list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const t = raw.replace(/_proj$/, "") as LoraTarget;
    if (!(t in LORA_TARGETS)) {
      throw new UsageError(
        "train.lora_target",
        `--lora-targets: "${raw}" is not a linear of the model (choose from ${Object.keys(LORA_TARGETS).join(", ")})`,
      );
    }
    if (!out.includes(t)) out.push(t);
  }
  if (out.length === 0) throw new UsageError("train.lora_target", "--lora-targets names no linear");
  return out;
}

function checkSettings(s: LoraSettings): void {
  if (!Number.isInteger(s.rank) || s.rank < 1)
    throw new UsageError("train.lora_rank", `--lora-rank must be an integer ≥ 1, got ${s.rank}`);
  if (!(s.alpha > 0)) throw new UsageError("train.lora_alpha", `--lora-alpha must be > 0, got ${s.alpha}`);
}

/** Adds fresh adapters (A Kaiming-uniform from `seed`, B = 0) to the targeted linears of every layer. */
export function attachLora(model: LlamaModel, s: LoraSettings, seed: number): void {
  checkSettings(s);
  const be = model.backend;
  const rng = new Rng(seed);
  model.weights.layers.forEach((layer, l) => {
    for (const t of s.targets) {
      const lin = layer[keyOf(LORA_TARGETS[t])];
      if (s.rank > Math.min(lin.inFeatures, lin.outFeatures)) {
        throw new UsageError(
          "train.lora_rank",
          `--lora-rank ${s.rank} exceeds model.layers.${l}.${LORA_TARGETS[t]}'s smaller side (${Math.min(lin.inFeatures, lin.outFeatures)})`,
        );
      }
      const bound = 1 / Math.sqrt(lin.inFeatures);
      const A = Float32Array.from({ length: s.rank * lin.inFeatures }, () => (2 * rng.next() - 1) * bound);
      lin.lora = {
        A: be.upload(A, [s.rank, lin.inFeatures]),
        B: be.zeros([lin.outFeatures, s.rank]),
        scale: s.alpha / s.rank,
      };
    }
  });
}

/** The linears that carry an adapter, with their module names. */
export function loraLinears(model: LlamaModel): { module: string; lin: Linear }[] {
  const out: { module: string; lin: Linear }[] = [];
  model.weights.layers.forEach((layer, l) => {
    for (const [module, key] of LAYER_LINEARS)
      if (layer[key].lora) out.push({ module: `model.layers.${l}.${module}`, lin: layer[key] });
  });
  return out;
}

/** adapter_config.json as PEFT writes it for a causal LM. */
function adapterConfig(s: LoraSettings, base: string): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: base,
    r: s.rank,
    lora_alpha: s.alpha,
    lora_dropout: 0,
    target_modules: s.targets.map((t) => LORA_TARGETS[t].split(".")[1]),
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    layers_to_transform: null,
    revision: null,
  };
}

/** The model's adapters as PEFT's tensors (f32, as stored), sorted by name. */
async function adapterTensors(model: LlamaModel): Promise<TensorToWrite[]> {
  const be = model.backend;
  const tensors: TensorToWrite[] = [];
  for (const { module, lin } of loraLinears(model)) {
    for (const which of ["A", "B"] as const) {
      const t = lin.lora![which];
      tensors.push({ name: loraParamName(module, which), dtype: "F32", shape: t.shape, data: await be.read(t) });
    }
  }
  return tensors.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * Reads the model's adapters now and returns a writer of PEFT's two files into a directory (inside an atomic
 * directory write of the caller: the trained model and its adapter in one output).
 */
export async function adapterWriter(model: LlamaModel, s: LoraSettings, base: string): Promise<(dir: string) => void> {
  const tensors = await adapterTensors(model);
  return (dir) => {
    writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), tensors, { format: "pt" });
    writeFileAtomic(path.join(dir, ADAPTER_CONFIG), `${JSON.stringify(adapterConfig(s, base), null, 2)}\n`);
  };
}

/** Writes the model's adapters to `out` in PEFT's layout (atomically); values as stored, f32. */
export async function saveAdapter(model: LlamaModel, s: LoraSettings, out: string, base: string): Promise<void> {
  const write = await adapterWriter(model, s, base);
  await writeDirAtomic(out, write);
}

/** Reads a PEFT LoRA adapter directory onto the model's linears; returns its settings. */
export function loadAdapter(model: LlamaModel, dir: string): LoraSettings {
  const cfgFile = path.join(dir, ADAPTER_CONFIG);
  const raw = readJsonFile(cfgFile, JSON_LIMITS.config, (code, msg) => {
    throw new ModelError(
      `adapter.${code}`,
      code === "missing" ? `${cfgFile}: not found; an adapter directory needs ${ADAPTER_CONFIG} (PEFT layout)` : msg,
    );
  });
  const c = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  if (c.peft_type !== "LORA")
    throw new ModelError(
      "adapter.type",
      `${cfgFile}: peft_type ${JSON.stringify(c.peft_type)} is not supported (only LORA)`,
    );
  for (const [k, v] of [
    ["use_dora", false],
    ["use_rslora", false],
    ["fan_in_fan_out", false],
  ] as const) {
    if (c[k] !== undefined && c[k] !== v)
      throw new ModelError("adapter.unsupported", `${cfgFile}: ${k} = ${JSON.stringify(c[k])} is not supported`);
  }
  const rank = c.r;
  const alpha = c.lora_alpha;
  if (typeof rank !== "number" || !Number.isInteger(rank) || rank < 1 || typeof alpha !== "number" || !(alpha > 0)) {
    throw new ModelError("adapter.config", `${cfgFile}: needs an integer r ≥ 1 and lora_alpha > 0`);
  }
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS);
  if (!fs.existsSync(weightsFile))
    throw new ModelError("adapter.missing", `${weightsFile}: not found; an adapter directory needs ${ADAPTER_WEIGHTS}`);
  const src = new ShardedSource([SafetensorsFile.open(weightsFile)]);
  const be = model.backend;
  const targets = new Set<LoraTarget>();
  let attached = 0;
  try {
    model.weights.layers.forEach((layer, l) => {
      for (const [short, module] of Object.entries(LORA_TARGETS) as [LoraTarget, string][]) {
        const name = `model.layers.${l}.${module}`;
        const a = src.info(loraParamName(name, "A"));
        const b = src.info(loraParamName(name, "B"));
        if (!a && !b) continue;
        const lin = layer[keyOf(module)];
        const shapeA = [rank, lin.inFeatures];
        const shapeB = [lin.outFeatures, rank];
        if (!a || !b || a.shape.join() !== shapeA.join() || b.shape.join() !== shapeB.join()) {
          throw new ModelError(
            "adapter.shape",
            `${dir}: ${name} needs lora_A [${shapeA}] and lora_B [${shapeB}] (r = ${rank}), found ${a ? `[${a.shape}]` : "none"} and ${b ? `[${b.shape}]` : "none"}`,
          );
        }
        const A = src.readFloat32(a.name);
        const B = src.readFloat32(b.name);
        assertFinite(a.name, A);
        assertFinite(b.name, B);
        lin.lora = { A: be.upload(A, shapeA), B: be.upload(B, shapeB), scale: alpha / rank };
        targets.add(short);
        attached += 2;
      }
    });
    const unused = src
      .names()
      .filter((n) => !/^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight$/.test(n));
    if (unused.length > 0 || attached !== src.names().length) {
      throw new ModelError(
        "adapter.tensors",
        `${dir}: tensors this model has no place for: ${(unused.length > 0 ? unused : src.names()).slice(0, 5).join(", ")}`,
      );
    }
  } finally {
    src.close();
  }
  return { rank, alpha, targets: [...targets] };
}

/** Folds every adapter into its linear (W + (α/r)·B·A): dense linears only; the adapters are removed. */
export function mergeLora(be: Backend, model: LlamaModel): void {
  for (const { module, lin } of loraLinears(model)) {
    if (lin.kind !== "dense") {
      throw new UsageError(
        "train.merge",
        `${module}: only adapters over dense weights can be merged (decompress the model first)`,
      );
    }
    const { A, B, scale } = lin.lora!;
    const ba: Tensor = be.matmul(B, A);
    const s = be.scale(ba, scale);
    const w = be.add(lin.weight, s);
    for (const t of [ba, s, lin.weight, A, B]) be.dispose(t);
    lin.weight = w;
    lin.lora = undefined;
  }
}
