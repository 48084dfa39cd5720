// attention_backward: gradients of attention_forward (same masks), recomputing the probabilities per query:
//   P = softmax(q·kᵀ/√D),  O = P·v,  δ = Σ_d dO·O
//   dS_j = P_j·(dO·v_j − δ);  dq = Σ_j dS_j·k_j/√D;  dk_j += dS_j·q/√D;  dv_j += P_j·dO
// Gradients of the query heads that share a key/value head are summed into it. Rows ≥ kvLength get zero.

import type { AttentionShape } from "./attention.js";

export function attention_backward_forward(
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dout: Float32Array,
  shape: AttentionShape,
): void {
  const { B, T, S, H, Hkv, D, kvLength, queryOffset, slidingWindow } = shape;
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(D);
  const qRow = H * D;
  const kvRow = Hkv * D;
  const p = new Float64Array(kvLength);
  const o = new Float64Array(D);
  const dqAcc = new Float64Array(D);
  const dkAcc = new Float64Array(dk.length);
  const dvAcc = new Float64Array(dv.length);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const pos = queryOffset + t;
      const jEnd = Math.min(pos + 1, kvLength);
      const jStart = slidingWindow === null ? 0 : Math.max(0, pos - slidingWindow + 1);
      for (let h = 0; h < H; h++) {
        const qo = (b * T + t) * qRow + h * D;
        const kvh = Math.floor(h / group);
        let max = Number.NEGATIVE_INFINITY;
        for (let j = jStart; j < jEnd; j++) {
          const ko = (b * S + j) * kvRow + kvh * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qo + d] * k[ko + d];
          p[j] = s * scale;
          if (p[j] > max) max = p[j];
        }
        let sum = 0;
        for (let j = jStart; j < jEnd; j++) {
          p[j] = Math.exp(p[j] - max);
          sum += p[j];
        }
        o.fill(0);
        for (let j = jStart; j < jEnd; j++) {
          p[j] /= sum;
          const vo = (b * S + j) * kvRow + kvh * D;
          for (let d = 0; d < D; d++) o[d] += p[j] * v[vo + d];
        }
        let delta = 0;
        for (let d = 0; d < D; d++) delta += dout[qo + d] * o[d];
        dqAcc.fill(0);
        for (let j = jStart; j < jEnd; j++) {
          const ko = (b * S + j) * kvRow + kvh * D;
          let dp = 0;
          for (let d = 0; d < D; d++) dp += dout[qo + d] * v[ko + d];
          const ds = p[j] * (dp - delta) * scale;
          for (let d = 0; d < D; d++) {
            dqAcc[d] += ds * k[ko + d];
            dkAcc[ko + d] += ds * q[qo + d];
            dvAcc[ko + d] += p[j] * dout[qo + d];
          }
        }
        for (let d = 0; d < D; d++) dq[qo + d] = dqAcc[d];
      }
    }
  }
  for (let i = 0; i < dk.length; i++) {
    dk[i] = dkAcc[i];
    dv[i] = dvAcc[i];
  }
}
