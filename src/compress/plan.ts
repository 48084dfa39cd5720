// Which matrices are compressed, how their vectors are grouped into codebooks (--share), and how many centroids
// each codebook gets for a bit budget (--bits) or an explicit --clusters.
//
// Sharing: `none` — every matrix has its own m codebooks; `block` — within each decoder block the attention
// projections (q, k, v, o) share one codebook and the MLP projections (gate, up, down) another; `model` — one
// codebook per projection type (q_proj, …) across all blocks. Shared codebooks are counted once in bpw.

import { CompressionError } from "../errors.js";
import type { ModelConfig } from "../io/hf_config.js";
import { type BitBudget, budgetBpw, CODE_BITS, codeBits, codebookBits, codeWidth } from "./bits.js";
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
  /** Bits per stored code: 16, or ⌈log₂K⌉ with packed codes. */
  codeBits: number;
  /**
   * With --bits: the bits per weight this group was planned for. Usually --bits itself; a group whose matrices
   * cannot go that low (outputs too narrow for the codes' 16 bits) is planned at its minimum, and the other
   * groups' target is lowered so the model still averages --bits.
   */
  targetBits?: number;
  /** Packed codes: this group was given bits the others left unspent (targetBits is then above --bits). */
  tookLeftover?: boolean;
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
  /** Vector length; undefined (with `bits`) lets the planner choose one per codebook group. */
  d?: number;
  /** Codebooks per matrix (share none only). */
  m: number;
  /** Exactly one of clusters / bits. */
  clusters?: number;
  bits?: number;
  /** Codes in ⌈log₂K⌉ bits instead of 16 (--code-bits min): the budget counts, and the planner spends, that. */
  packed?: boolean;
  /** How messages name the budget `bits` (default "--bits B"): the user's --bits when other parts took a share. */
  bitsLabel?: string;
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

/** Matrices grouped by the codebook they will share, in first-use order. */
export function groupMatrices(mats: MatrixSpec[], share: ShareMode): Map<string, MatrixSpec[]> {
  const groups = new Map<string, MatrixSpec[]>();
  for (const x of mats) {
    const key = groupKey(x, share);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(x);
  }
  return groups;
}

/** Bits of the codes of a group's members at vector length d and `width`-bit codes. */
function groupCodeBits(members: MatrixSpec[], d: number, width: number): number {
  return members.reduce((s, x) => s + codeBits({ out: x.out, in: x.in, d }, width), 0);
}

/**
 * The most centroids a budget of `bits` per weight leaves a group at vector length d (before the caps). With
 * packed codes the width depends on K: the largest K over widths w = 1 … 16 with K ≤ 2^w that fits with w-bit codes.
 */
function budgetClusters(members: MatrixSpec[], d: number, m: number, bits: number, packed = false): number {
  const params = members.reduce((s, x) => s + x.in * x.out, 0);
  const centroidsAt = (width: number) =>
    Math.floor((bits * params - groupCodeBits(members, d, width)) / (codebookBits(1, d) * m));
  if (!packed) return centroidsAt(CODE_BITS);
  let best = 0;
  for (let width = 1; width <= CODE_BITS; width++) best = Math.max(best, Math.min(2 ** width, centroidsAt(width)));
  return best;
}

/**
 * Normalized second moment G(d) of the best known d-dimensional quantizer cell (Conway & Sloane; Agrell &
 * Eriksson): the mean squared error per dimension of a quantizer with unit cell volume. 1/12 for d = 1, falling
 * towards 1/(2πe) as d grows: at the same bits per dimension, longer vectors quantize better.
 */
const SECOND_MOMENT = [
  0.083333, 0.080188, 0.078543, 0.076603, 0.075625, 0.074244, 0.073116, 0.071682, 0.071626, 0.070814, 0.070213, 0.0701,
  0.06998, 0.06959, 0.06916, 0.068299,
];
const SPHERE_LIMIT = 1 / (2 * Math.PI * Math.E);

function secondMoment(d: number): number {
  if (d <= SECOND_MOMENT.length) return SECOND_MOMENT[d - 1];
  // between d = 16 and the limit: the Leech lattice's 0.065771 at 24, then halfway to the sphere bound per doubling
  if (d <= 24) return SECOND_MOMENT[15] + ((0.065771 - SECOND_MOMENT[15]) * (d - 16)) / 8;
  return SPHERE_LIMIT + (0.065771 - SPHERE_LIMIT) * 2 ** -Math.log2(d / 24);
}

/**
 * How well a group would be quantized at vector length d with K centroids, in "bits of resolution per weight":
 * the high-resolution rate log₂K / d, plus the cell-shape gain ½·log₂(1/G(d)) (Zador: mean squared error per
 * weight ∝ G(d) · 2^(−2·log₂K/d)). Maximising it minimises the predicted error at the same bit budget. A group
 * with as many centroids as vectors is stored losslessly: +∞.
 */
export function planScore(d: number, K: number, vectors: number): number {
  if (K >= vectors) return Number.POSITIVE_INFINITY;
  return Math.log2(K) / d + 0.5 * Math.log2(1 / secondMoment(d));
}

/** Longest vector the planner considers (a vector longer than every output axis is only padding). */
export function maxVectorDim(members: MatrixSpec[]): number {
  return Math.min(256, Math.max(...members.map((x) => x.out)));
}

/**
 * The vector length for a group at a bit budget: among d = 1 … maxVectorDim with at least 2 centroids within
 * the budget (padding and the codebook's own bits counted), the d of the highest planScore; on a tie (lossless
 * groups) the one that spends fewer bits. Undefined when no d reaches 2 centroids.
 */
export function chooseVectorDim(
  members: MatrixSpec[],
  m: number,
  bits: number,
  packed = false,
): { d: number; K: number } | undefined {
  let best: { d: number; K: number; score: number; bits: number } | undefined;
  for (let d = 1; d <= maxVectorDim(members); d++) {
    if (m > 1 && m > Math.ceil(members[0].out / d)) break;
    const N = groupVectors({ members, d, m });
    const K = Math.min(budgetClusters(members, d, m, bits, packed), MAX_CLUSTERS, N);
    if (K < 2) continue;
    const score = planScore(d, K, N);
    const spent = groupCodeBits(members, d, codeWidth(K, packed)) + m * codebookBits(K, d);
    if (!best || score > best.score || (score === best.score && spent < best.bits)) best = { d, K, score, bits: spent };
  }
  return best && { d: best.d, K: best.K };
}

/** The lowest bpw a group can reach with 2 centroids at any vector length (for the error message). */
function lowestBpw(members: MatrixSpec[], m: number, packed: boolean): { bpw: number; d: number } {
  const params = members.reduce((s, x) => s + x.in * x.out, 0);
  let best = { bpw: Number.POSITIVE_INFINITY, d: 1 };
  for (let d = 1; d <= maxVectorDim(members); d++) {
    if (m > 1 && m > Math.ceil(members[0].out / d)) break;
    const codes = groupCodeBits(members, d, codeWidth(2, packed));
    const bpw = (codes + m * codebookBits(2, d)) / params;
    if (bpw < best.bpw) best = { bpw, d };
  }
  return best;
}

export function planCodebooks(mats: MatrixSpec[], o: PlanOptions): CodebookGroup[] {
  if (o.d !== undefined && (!Number.isInteger(o.d) || o.d < 1))
    throw new CompressionError("compress.vector_dim", `--vector-dim must be an integer ≥ 1, got ${o.d}`);
  if (!Number.isInteger(o.m) || o.m < 1)
    throw new CompressionError("compress.codebooks", `--codebooks must be an integer ≥ 1, got ${o.m}`);
  if (o.m > 1 && o.share !== "none") {
    throw new CompressionError(
      "compress.codebooks",
      `--codebooks ${o.m} needs --share none (a shared codebook is one per group)`,
    );
  }
  if (o.d === undefined && o.bits === undefined)
    throw new CompressionError("compress.usage", "--clusters needs --vector-dim");
  const packed = o.packed === true;
  const label = o.bitsLabel ?? `--bits ${o.bits}`;
  if (o.d === undefined) return planForBudget([...groupMatrices(mats, o.share)], o.m, o.bits!, o.share, packed, label);
  const plan: CodebookGroup[] = [];
  for (const [codebook, members] of groupMatrices(mats, o.share)) {
    const d: number = o.d;
    if (o.m > Math.ceil(members[0].out / d)) {
      throw new CompressionError(
        "compress.codebooks",
        `${members[0].name}: ${o.m} codebooks but only ${Math.ceil(members[0].out / d)} vector columns`,
      );
    }
    const N = groupVectors({ members, d, m: o.m });
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
      K = budgetClusters(members, d, o.m, B, packed);
      if (K < 1) {
        const params = members.reduce((s, x) => s + x.in * x.out, 0);
        const codes = groupCodeBits(members, d, codeWidth(2, packed));
        const padded = members.find((x) => x.out % d !== 0);
        throw new CompressionError(
          "compress.bits_unreachable",
          `${label} is unreachable with --vector-dim ${d}: the codes alone cost ${(codes / params).toFixed(3)} bpw for ${codebook}${padded ? ` (${padded.projection}'s ${padded.out} outputs pad to ${Math.ceil(padded.out / d) * d})` : ""}; leave out --vector-dim to let the planner choose, or use more bits`,
        );
      }
      K = Math.min(K, MAX_CLUSTERS, N);
    }
    plan.push({ codebook, members, d, K, m: o.m, codeBits: codeWidth(K, packed) });
  }
  return plan;
}

/**
 * A plan for --bits B without --vector-dim: each group gets the vector length and K that chooseVectorDim picks
 * for the target. A group that cannot reach the target at any vector length is planned at its cheapest (the
 * d of lowestBpw, 2 centroids) and its excess bits are taken from the others, whose target is lowered until the
 * model averages B; when even the cheapest plan of every group exceeds B, the error says what the model can reach.
 */
function planForBudget(
  groups: [string, MatrixSpec[]][],
  m: number,
  B: number,
  share: ShareMode,
  packed: boolean,
  label: string,
): CodebookGroup[] {
  const paramsOf = (members: MatrixSpec[]) => members.reduce((s, x) => s + x.in * x.out, 0);
  const total = groups.reduce((s, [, members]) => s + paramsOf(members), 0);
  const cheapest = new Map<string, CodebookGroup>();
  for (;;) {
    const fixedBits = [...cheapest.values()].reduce((s, g) => s + planBudget([g]).bits, 0);
    const restParams = groups.reduce((s, [name, members]) => s + (cheapest.has(name) ? 0 : paramsOf(members)), 0);
    const target = restParams > 0 ? (B * total - fixedBits) / restParams : 0;
    const plan: CodebookGroup[] = [];
    let grew = false;
    for (const [codebook, members] of groups) {
      const fixed = cheapest.get(codebook);
      if (fixed) {
        plan.push(fixed);
        continue;
      }
      const chosen = target > 0 ? chooseVectorDim(members, m, target, packed) : undefined;
      if (chosen) {
        const width = codeWidth(chosen.K, packed);
        plan.push({ codebook, members, d: chosen.d, K: chosen.K, m, codeBits: width, targetBits: target });
        continue;
      }
      const low = lowestBpw(members, m, packed);
      cheapest.set(codebook, {
        codebook,
        members,
        d: low.d,
        K: 2,
        m,
        codeBits: codeWidth(2, packed),
        targetBits: low.bpw,
      });
      grew = true;
    }
    if (!grew) return packed ? spendLeftover(plan, B * total, m) : plan;
    if (cheapest.size === groups.length) {
      const reach = [...cheapest.values()].reduce((s, g) => s + planBudget([g]).bits, 0) / total;
      const worst = [...cheapest.values()].sort((a, b) => (b.targetBits ?? 0) - (a.targetBits ?? 0))[0];
      throw new CompressionError(
        "compress.bits_unreachable",
        `${label} is below what this model can reach at any vector length: ${reach.toFixed(3)} bpw at best (each code is ${packed ? "at least 1 bit" : "16 bits"}; ${worst.codebook} alone needs ${worst.targetBits!.toFixed(3)}); use more bits${share === "none" ? " or --share block" : ""}`,
      );
    }
  }
}

/**
 * With packed codes a group's bits move in steps of a code width, so a plan at target B for every group can
 * leave much of the budget unspent (2.34 of 2.5 bpw on llama-en-26m). Greedily, the group whose best plan with
 * all the leftover bits gains the most planScore per extra bit takes it, until no group improves within what
 * is left; the model still averages at most B.
 */
function spendLeftover(plan: CodebookGroup[], budgetBits: number, m: number): CodebookGroup[] {
  const out = plan.slice();
  const bitsOf = (g: CodebookGroup) => planBudget([g]).bits;
  const vectorsOf = (g: CodebookGroup) => groupVectors(g);
  for (;;) {
    const left = budgetBits - out.reduce((s, g) => s + bitsOf(g), 0);
    let best: { i: number; g: CodebookGroup; gain: number } | undefined;
    out.forEach((g, i) => {
      const params = g.members.reduce((s, x) => s + x.in * x.out, 0);
      const chosen = chooseVectorDim(g.members, m, (bitsOf(g) + left) / params, true);
      if (!chosen || (chosen.d === g.d && chosen.K === g.K)) return;
      const next: CodebookGroup = {
        ...g,
        d: chosen.d,
        K: chosen.K,
        codeBits: codeWidth(chosen.K, true),
        targetBits: (bitsOf(g) + left) / params,
        tookLeftover: true,
      };
      const extra = bitsOf(next) - bitsOf(g);
      const gain = planScore(next.d, next.K, vectorsOf(next)) - planScore(g.d, g.K, vectorsOf(g));
      if (gain <= 0 || extra <= 0 || extra > left) return;
      const perBit = (gain * params) / extra;
      if (!best || perBit > best.gain) best = { i, g: next, gain: perBit };
    });
    if (!best) return out;
    out[best.i] = best.g;
  }
}

/** Bits and parameters of a plan (codebooks counted once). */
export function planBudget(plan: CodebookGroup[]): BitBudget {
  let params = 0;
  let bits = 0;
  for (const g of plan) {
    for (const x of g.members) {
      params += x.in * x.out;
      bits += codeBits({ out: x.out, in: x.in, d: g.d }, g.codeBits);
    }
    bits += g.m * codebookBits(g.K, g.d);
  }
  return { params, bits };
}

export function planBpw(plan: CodebookGroup[]): number {
  return budgetBpw(planBudget(plan));
}
