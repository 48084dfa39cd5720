// An independent float64 Llama forward written straight from the transformers source, token by token, for
// checking the model on random checkpoints of shapes the goldens never show. Shares no code with src/model.

export interface NaiveConfig {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  eps: number;
  theta: number;
  tied: boolean;
  slidingWindow: number | null;
}

export type NaiveTensors = Map<string, { shape: number[]; data: ArrayLike<number> }>;
type Tensors = NaiveTensors;

function get(t: Tensors, name: string): ArrayLike<number> {
  const v = t.get(name);
  if (!v) throw new Error(`naive: missing ${name}`);
  return v.data;
}

function linear(x: number[], w: ArrayLike<number>, b: ArrayLike<number> | null, out: number): number[] {
  const K = x.length;
  const y: number[] = [];
  for (let j = 0; j < out; j++) {
    let s = b ? b[j] : 0;
    for (let k = 0; k < K; k++) s += x[k] * w[j * K + k];
    y.push(s);
  }
  return y;
}

function rmsNorm(x: number[], w: ArrayLike<number>, eps: number): number[] {
  const ms = x.reduce((s, v) => s + v * v, 0) / x.length;
  const r = 1 / Math.sqrt(ms + eps);
  return x.map((v, i) => v * r * w[i]);
}

function rotate(vec: number[], pos: number, D: number, theta: number): number[] {
  const out = vec.slice();
  for (let head = 0; head < vec.length / D; head++) {
    for (let i = 0; i < D / 2; i++) {
      const angle = pos / theta ** ((2 * i) / D);
      const a = vec[head * D + i];
      const b = vec[head * D + i + D / 2];
      out[head * D + i] = a * Math.cos(angle) - b * Math.sin(angle);
      out[head * D + i + D / 2] = b * Math.cos(angle) + a * Math.sin(angle);
    }
  }
  return out;
}

/** Logits [T][V] for one sequence. */
export function naiveForward(t: Tensors, c: NaiveConfig, ids: number[]): number[][] {
  const C = c.hidden;
  const emb = get(t, "model.embed_tokens.weight");
  let xs = ids.map((id) => Array.from({ length: C }, (_, k) => emb[id * C + k]));
  for (let l = 0; l < c.layers; l++) xs = naiveLayer(t, c, `model.layers.${l}`, xs);
  const head = c.tied ? emb : get(t, "lm_head.weight");
  return xs.map((x) => linear(rmsNorm(x, get(t, "model.norm.weight"), c.eps), head, null, c.vocab));
}

/** One decoder layer (weights `${p}.…`) applied to the rows xs [T][C] of one sequence from position 0. */
export function naiveLayer(t: Tensors, c: NaiveConfig, p: string, xs: number[][]): number[][] {
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D } = c;
  const opt = (n: string) => t.get(n)?.data ?? null;
  const qs: number[][] = [];
  const ks: number[][] = [];
  const vs: number[][] = [];
  xs.forEach((x, pos) => {
    const n = rmsNorm(x, get(t, `${p}.input_layernorm.weight`), c.eps);
    qs.push(
      rotate(
        linear(n, get(t, `${p}.self_attn.q_proj.weight`), opt(`${p}.self_attn.q_proj.bias`), H * D),
        pos,
        D,
        c.theta,
      ),
    );
    ks.push(
      rotate(
        linear(n, get(t, `${p}.self_attn.k_proj.weight`), opt(`${p}.self_attn.k_proj.bias`), Hkv * D),
        pos,
        D,
        c.theta,
      ),
    );
    vs.push(linear(n, get(t, `${p}.self_attn.v_proj.weight`), opt(`${p}.self_attn.v_proj.bias`), Hkv * D));
  });
  return xs.map((x, i) => {
    const attn: number[] = [];
    for (let h = 0; h < H; h++) {
      const g = Math.floor((h * Hkv) / H);
      const allowed: number[] = [];
      for (let j = 0; j <= i; j++) if (c.slidingWindow === null || i - j < c.slidingWindow) allowed.push(j);
      const scores = allowed.map((j) => {
        let s = 0;
        for (let d = 0; d < D; d++) s += qs[i][h * D + d] * ks[j][g * D + d];
        return s / Math.sqrt(D);
      });
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < D; d++) attn.push(allowed.reduce((s, j, k) => s + (e[k] / z) * vs[j][g * D + d], 0));
    }
    const o = linear(attn, get(t, `${p}.self_attn.o_proj.weight`), opt(`${p}.self_attn.o_proj.bias`), C);
    const h1 = x.map((v, k) => v + o[k]);
    const n2 = rmsNorm(h1, get(t, `${p}.post_attention_layernorm.weight`), c.eps);
    const I = get(t, `${p}.mlp.gate_proj.weight`).length / C;
    const gate = linear(n2, get(t, `${p}.mlp.gate_proj.weight`), opt(`${p}.mlp.gate_proj.bias`), I);
    const up = linear(n2, get(t, `${p}.mlp.up_proj.weight`), opt(`${p}.mlp.up_proj.bias`), I);
    const act = gate.map((gv, k) => (gv / (1 + Math.exp(-gv))) * up[k]);
    const down = linear(act, get(t, `${p}.mlp.down_proj.weight`), opt(`${p}.mlp.down_proj.bias`), C);
    return h1.map((v, k) => v + down[k]);
  });
}
