// Which matrices are compressed, how their vectors are grouped into codebooks (--share), and how many centroids
// each codebook gets for a bit budget (--bits) or an explicit --clusters.
//
// Sharing: `none` — every matrix has its own m codebooks; `block` — within each decoder block the attention
// projections (q, k, v, o) share one codebook and the MLP projections (gate, up, down) another; `model` — one
// codebook per projection type (q_proj, …) across all blocks. Shared codebooks are counted once in bpw.

import { CompressionError } from "../errors.js";
import type { ModelConfig } from "../io/hf_config.js";
import { type BitBudget, budgetBpw, CODE_BITS, codeBits, codebookBits } from "./bits.js";
import { vectorLayout } from "./codebook.js";
import { MAX_CLUSTERS } from "./kmeans.js";

export const SHARE_MODES = ["none", "block", "model"] as const;
export type ShareMode = (typeof SHARE_MODES)[number];

export const PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type Projection = (typeof PROJECTIONS)[number];
const ATTENTION: ReadonlySet<Projection> = new Set(["q_proj", "k_proj", "v_proj", "o_proj"]);

export interface MatrixSpec {
  /** HF module name, e.g. model.layers.3.self_attn.q_proj (the weight is `${name}.weight`). */
  name: string;
  layer: number;
  projection: Projection;
  family: "attention" | "mlp";
  out: number;
  in: number;
}

export interface CodebookGroup {
  /** Tensor name of the codebook [m, K, d]. */
  codebook: string;
  members: MatrixSpec[];
  d: number;
  K: number;
  /** Codebooks per member (only `none` sharing allows m > 1). */
  m: number;
}

/** Every q/k/v/o and gate/up/down weight of the model, in layer order. */
export function listLinears(cfg: ModelConfig): MatrixSpec[] {
  const C = cfg.hiddenSize;
  const q = cfg.numAttentionHeads * cfg.headDim;
  const kv = cfg.numKeyValueHeads * cfg.headDim;
  const I = cfg.intermediateSize;
  const shapes: Record<Projection, [number, number]> = {
    q_proj: [q, C],
    k_proj: [kv, C],
    v_proj: [kv, C],
    o_proj: [C, q],
    gate_proj: [I, C],
    up_proj: [I, C],
    down_proj: [C, I],
  };
  const out: MatrixSpec[] = [];
  for (let layer = 0; layer < cfg.numHiddenLayers; layer++) {
    for (const p of PROJECTIONS) {
      const family = ATTENTION.has(p) ? "attention" : "mlp";
      const module = family === "attention" ? "self_attn" : "mlp";
      out.push({
        name: `model.layers.${layer}.${module}.${p}`,
        layer,
        projection: p,
        family,
        out: shapes[p][0],
        in: shapes[p][1],
      });
    }
  }
  return out;
}

export interface PlanOptions {
  share: ShareMode;
  d: number;
  /** Codebooks per matrix (share none only). */
  m: number;
  /** Exactly one of clusters / bits. */
  clusters?: number;
  bits?: number;
}

/** Vectors each codebook of the group is fitted on (the smallest part when m > 1). */
export function groupVectors(g: Pick<CodebookGroup, "members" | "d" | "m">): number {
  if (g.m === 1) return g.members.reduce((s, x) => s + x.in * Math.ceil(x.out / g.d), 0);
  const x = g.members[0];
  const l = vectorLayout(x.out, x.in, g.d, g.m);
  const lastCols = l.nb - (g.m - 1) * l.partCols;
  return x.in * Math.min(l.partCols, lastCols);
}

function groupKey(x: MatrixSpec, share: ShareMode): string {
  if (share === "none") return `${x.name}.codebook`;
  if (share === "block") return `model.layers.${x.layer}.${x.family === "attention" ? "self_attn" : "mlp"}.codebook`;
  return `model.shared.${x.projection}.codebook`;
}

export function planCodebooks(mats: MatrixSpec[], o: PlanOptions): CodebookGroup[] {
  if (!Number.isInteger(o.d) || o.d < 1)
    throw new CompressionError("compress.vector_dim", `--vector-dim must be an integer ≥ 1, got ${o.d}`);
  if (!Number.isInteger(o.m) || o.m < 1)
    throw new CompressionError("compress.codebooks", `--codebooks must be an integer ≥ 1, got ${o.m}`);
  if (o.m > 1 && o.share !== "none") {
    throw new CompressionError(
      "compress.codebooks",
      `--codebooks ${o.m} needs --share none (a shared codebook is one per group)`,
    );
  }
  const groups = new Map<string, MatrixSpec[]>();
  for (const x of mats) {
    const key = groupKey(x, o.share);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(x);
  }
  const plan: CodebookGroup[] = [];
  for (const [codebook, members] of groups) {
    if (o.m > Math.ceil(members[0].out / o.d)) {
      throw new CompressionError(
        "compress.codebooks",
        `${members[0].name}: ${o.m} codebooks but only ${Math.ceil(members[0].out / o.d)} vector columns`,
      );
    }
    const N = groupVectors({ members, d: o.d, m: o.m });
    let K: number;
    if (o.clusters !== undefined) {
      K = o.clusters;
      if (!Number.isInteger(K) || K < 1)
        throw new CompressionError("compress.clusters", `--clusters must be an integer ≥ 1, got ${K}`);
      if (K > MAX_CLUSTERS)
        throw new CompressionError("compress.clusters", `--clusters ${K} exceeds ${MAX_CLUSTERS} (codes are 16-bit)`);
      if (K > N) {
        throw new CompressionError(
          "compress.clusters",
          `--clusters ${K} is larger than the number of vectors of ${codebook} (${N})`,
        );
      }
    } else {
      const B = o.bits!;
      const params = members.reduce((s, x) => s + x.in * x.out, 0);
      const codes = members.reduce((s, x) => s + codeBits({ out: x.out, in: x.in, d: o.d }), 0);
      K = Math.floor((B * params - codes) / (codebookBits(1, o.d) * o.m));
      if (K < 1) {
        throw new CompressionError(
          "compress.bits_unreachable",
          `--bits ${B} is unreachable with --vector-dim ${o.d}: the codes alone cost ${(codes / params).toFixed(3)} bpw for ${codebook}; use a larger --vector-dim or more bits`,
        );
      }
      K = Math.min(K, MAX_CLUSTERS, N);
    }
    plan.push({ codebook, members, d: o.d, K, m: o.m });
  }
  return plan;
}

/** Bits and parameters of a plan (codebooks counted once). */
export function planBudget(plan: CodebookGroup[]): BitBudget {
  let params = 0;
  let bits = 0;
  for (const g of plan) {
    for (const x of g.members) {
      params += x.in * x.out;
      bits += codeBits({ out: x.out, in: x.in, d: g.d });
    }
    bits += g.m * codebookBits(g.K, g.d);
  }
  return { params, bits };
}

export function planBpw(plan: CodebookGroup[]): number {
  return budgetBpw(planBudget(plan));
}

/** The default vector length for a bit target, matching the reference presets (4.14→4, 3→6, 2.28/2.14→8, 2→9). */
export function defaultVectorDim(bits: number): number {
  return Math.max(1, Math.round(CODE_BITS / Math.max(bits - 0.15, 0.01)));
}
