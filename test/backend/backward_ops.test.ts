// The training ops of the backend contract (backward ops, loss, optimizer, codebook gradient) on every backend.
// Oracles: float64 central differences of a float64 forward (finiteDifferenceVjp), written independently of
// src/, or exact identities (adjoints, inverses) for the linear ops.

import { describe, expect } from "vitest";
import { Rng } from "../../src/index.js";
import { BACKENDS, label, opTest, rand, reportWebGpuSkip, TOL } from "../helpers/backends.js";
import { finiteDifferenceVjp, nmse, oracleAttention } from "../helpers/oracle.js";

const FD_TOL = 1e-8; // NMSE of an f32 gradient against a float64 finite-difference gradient

function dotProduct(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

reportWebGpuSkip("training ops");

for (const be of BACKENDS) {
  const op = opTest(be);
  describe(`backend ${label(be)}: training ops`, () => {
    op("rms_norm_backward", "[3,37] eps 1e-5 seed 60", async () => {
      const [R, C, eps] = [3, 37, 1e-5];
      const x = rand(R * C, 60, 2);
      const w = rand(C, 61);
      const dy = rand(R * C, 62);
      const { dx, dweight } = be.rms_norm_backward(be.upload(x, [R, C]), be.upload(w, [C]), be.upload(dy, [R, C]), eps);
      const [rx, rw] = finiteDifferenceVjp(
        ([xs, ws]) => {
          const y = new Float64Array(R * C);
          for (let r = 0; r < R; r++) {
            let ms = 0;
            for (let c = 0; c < C; c++) ms += xs[r * C + c] ** 2 / C;
            for (let c = 0; c < C; c++) y[r * C + c] = (xs[r * C + c] / Math.sqrt(ms + eps)) * ws[c];
          }
          return y;
        },
        [x, w],
        dy,
      );
      expect(nmse(await be.read(dx), rx)).toBeLessThan(FD_TOL);
      expect(nmse(await be.read(dweight), rw)).toBeLessThan(FD_TOL);
    });

    for (const [B, T, S, H, Hkv, D, kvLen, qOff, win, seed] of [
      [1, 1, 1, 1, 1, 1, 1, 0, null, 63],
      [2, 6, 6, 4, 2, 5, 6, 0, null, 64],
      [1, 3, 7, 6, 1, 4, 6, 3, null, 65],
      [2, 7, 7, 3, 3, 3, 7, 0, 3, 66],
      // ≥ 8 query rows: the fast tier's per-head matrix products
      [2, 9, 9, 4, 2, 3, 9, 0, null, 67],
      [1, 8, 14, 3, 1, 4, 12, 4, 5, 68],
    ] as const) {
      op(
        "attention_backward",
        `B${B} T${T} S${S} H${H} Hkv${Hkv} D${D} kv${kvLen} off${qOff} win${win} seed${seed}`,
        async () => {
          const q = rand(B * T * H * D, seed);
          const k = rand(B * S * Hkv * D, seed + 1);
          const v = rand(B * S * Hkv * D, seed + 2);
          const dout = rand(B * T * H * D, seed + 3);
          const p = {
            numHeads: H,
            numKvHeads: Hkv,
            headDim: D,
            kvLength: kvLen,
            queryOffset: qOff,
            slidingWindow: win,
          };
          const g = be.attention_backward(
            be.upload(q, [B, T, H * D]),
            be.upload(k, [B, S, Hkv * D]),
            be.upload(v, [B, S, Hkv * D]),
            be.upload(dout, [B, T, H * D]),
            p,
          );
          const ref = finiteDifferenceVjp(
            ([qs, ks, vs]) => oracleAttention(qs, ks, vs, B, T, S, H, Hkv, D, kvLen, qOff, win),
            [q, k, v],
            dout,
          );
          expect(g.dk.shape).toEqual([B, S, Hkv * D]);
          expect(nmse(await be.read(g.dq), ref[0])).toBeLessThan(FD_TOL);
          expect(nmse(await be.read(g.dk), ref[1])).toBeLessThan(FD_TOL);
          expect(nmse(await be.read(g.dv), ref[2])).toBeLessThan(FD_TOL);
        },
      );
    }

    op("silu_mul_backward", "[41] seed 70", async () => {
      const g = rand(41, 70, 3);
      const u = rand(41, 71);
      const dy = rand(41, 72);
      const r = be.silu_mul_backward(be.upload(g, [41]), be.upload(u, [41]), be.upload(dy, [41]));
      const [rg, ru] = finiteDifferenceVjp(
        ([gs, us]) => gs.map((x, i) => (x / (1 + Math.exp(-x))) * us[i]),
        [g, u],
        dy,
      );
      expect(nmse(await be.read(r.dgate), rg)).toBeLessThan(FD_TOL);
      expect(nmse(await be.read(r.dup), ru)).toBeLessThan(FD_TOL);
    });

    op("rope", "inverse undoes the rotation and is its transpose, seed 73", async () => {
      const [B, T, Hh, D, start, P] = [2, 4, 3, 6, 2, 8];
      const tables = (fn: (a: number) => number) =>
        Float32Array.from({ length: P * 3 }, (_, i) => fn(Math.floor(i / 3) * 0.7 ** (i % 3)));
      const cos = be.upload(tables(Math.cos), [P, 3]);
      const sin = be.upload(tables(Math.sin), [P, 3]);
      const x = rand(B * T * Hh * D, 73);
      const y = rand(B * T * Hh * D, 74);
      const p = { numHeads: Hh, headDim: D, startPos: start };
      const rx = be.rope(be.upload(x, [B, T, Hh * D]), cos, sin, p);
      const back = be.rope(rx, cos, sin, { ...p, inverse: true });
      expect(nmse(await be.read(back), x)).toBeLessThan(TOL);
      const ry = await be.read(be.rope(be.upload(y, [B, T, Hh * D]), cos, sin, { ...p, inverse: true }));
      const lhs = dotProduct(await be.read(rx), y);
      expect(Math.abs(lhs - dotProduct(x, ry))).toBeLessThan(1e-5 * (1 + Math.abs(lhs)));
    });

    op("sum_rows", "[4,3,7] seed 75", async () => {
      const x = rand(84, 75);
      const got = await be.read(be.sum_rows(be.upload(x, [4, 3, 7])));
      const ref = Array.from({ length: 7 }, (_, c) => {
        let s = 0;
        for (let r = 0; r < 12; r++) s += x[r * 7 + c];
        return s;
      });
      expect(nmse(got, ref)).toBeLessThan(TOL);
    });

    op("mse", "[5,9] seed 76", async () => {
      const p = rand(45, 76);
      const t = rand(45, 77);
      const { loss, grad } = be.mse(be.upload(p, [5, 9]), be.upload(t, [5, 9]));
      const ref = p.reduce((s, v, i) => s + (v - t[i]) ** 2, 0) / 45;
      expect(Math.abs((await be.read(loss))[0] - ref)).toBeLessThan(1e-6 * ref);
      const [rg] = finiteDifferenceVjp(([ps]) => [ps.reduce((s, v, i) => s + (v - t[i]) ** 2, 0) / 45], [p], [1]);
      expect(nmse(await be.read(grad), rg)).toBeLessThan(FD_TOL);
    });

    op("adamw", "three steps against torch.optim.AdamW's update rule, seed 78", async () => {
      const n = 23;
      const p0 = rand(n, 78);
      const grads = [rand(n, 79), rand(n, 80, 0.01), rand(n, 81, 10)];
      const hp = { lr: 5e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
      const param = be.upload(p0.slice(), [n]);
      const m = be.zeros([n]);
      const v = be.zeros([n]);
      // torch/optim/adamw.py (single-tensor, amsgrad off), in float64
      const rp = Float64Array.from(p0);
      const rm = new Float64Array(n);
      const rv = new Float64Array(n);
      for (let step = 1; step <= grads.length; step++) {
        be.adamw(param, be.upload(grads[step - 1], [n]), m, v, { ...hp, step });
        for (let i = 0; i < n; i++) {
          const g = grads[step - 1][i];
          rp[i] *= 1 - hp.lr * hp.weightDecay;
          rm[i] += (g - rm[i]) * (1 - hp.beta1); // torch: exp_avg.lerp_(grad, 1 - beta1)
          rv[i] = rv[i] * hp.beta2 + (1 - hp.beta2) * g * g;
          const bc1 = 1 - hp.beta1 ** step;
          const bc2 = 1 - hp.beta2 ** step;
          const denom = Math.sqrt(rv[i]) / Math.sqrt(bc2) + hp.eps;
          rp[i] -= (hp.lr / bc1) * (rm[i] / denom);
        }
      }
      const got = await be.read(param);
      for (let i = 0; i < n; i++) expect(Math.abs(got[i] - rp[i])).toBeLessThan(1e-6);
      expect(nmse(await be.read(m), rm)).toBeLessThan(TOL);
      expect(nmse(await be.read(v), rv)).toBeLessThan(TOL);
      expect(() => be.adamw(param, be.zeros([n]), m, v, { ...hp, step: 0 })).toThrow(/step/);
    });

    op("codebook_grad", "sums that cancel are exact (no float32 running sum)", async () => {
      // out 2, in 3, d 2, one code per input column, all three → centroid 0: its element o sums row o of dW
      const layout = { out: 2, in: 3, d: 2, nb: 1, K: 2, partCols: 1 };
      const dW = Float32Array.of(1e6, 1e-3, -1e6, 5, 2.5e-3, -5); // [2, 3]
      const g = await be.read(
        be.codebook_grad(be.upload(dW, [2, 3]), be.uploadInt(Int32Array.of(0, 0, 0), [3, 1]), layout),
      );
      const expected = [dW[0] + dW[1] + dW[2], dW[3] + dW[4] + dW[5], 0, 0]; // float64: 1e-3, 2.5e-3
      for (let i = 0; i < 4; i++) expect(Math.abs(g[i] - expected[i]), `grad ${i}`).toBeLessThan(1e-9);
    });

    for (const [out, inp, d, K, m, seed] of [
      [10, 3, 4, 5, 2, 82],
      [7, 5, 3, 4, 1, 83],
      [12, 2, 4, 2, 3, 84],
    ] as const) {
      op(
        "codebook_grad",
        `is codebook_decode's adjoint: out${out} in${inp} d${d} K${K} m${m} seed${seed}`,
        async () => {
          const nb = Math.ceil(out / d);
          const l = { out, in: inp, d, nb, K, partCols: Math.ceil(nb / m) };
          const parts = Math.ceil(nb / l.partCols);
          const r = new Rng(seed);
          const codes = be.uploadInt(
            Int32Array.from({ length: inp * nb }, () => r.int(K)),
            [inp, nb],
          );
          const books = rand(parts * K * d, seed + 1);
          const dW = rand(out * inp, seed + 2);
          const grad = await be.read(be.codebook_grad(be.upload(dW, [out, inp]), codes, l));
          expect(grad.length).toBe(parts * K * d);
          // <decode(C), dW> is linear in C, so its gradient is exact by differences; and the adjoint identity holds
          const decode = async (c: ArrayLike<number>) =>
            be.read(be.codebook_decode(codes, be.upload(Float32Array.from(c), [parts, K, d]), l));
          const lhs = dotProduct(await decode(books), dW);
          expect(Math.abs(lhs - dotProduct(books, grad))).toBeLessThan(1e-5 * (1 + Math.abs(lhs)));
          const unit = new Float32Array(parts * K * d);
          for (const idx of [0, K * d - 1, parts * K * d - 1]) {
            unit.fill(0);
            unit[idx] = 1;
            expect(Math.abs(dotProduct(await decode(unit), dW) - grad[idx])).toBeLessThan(1e-5);
          }
        },
      );
    }

    op("scale", "[3,5] by -2.5, seed 90", async () => {
      const x = rand(15, 90);
      const y = await be.read(be.scale(be.upload(x, [3, 5]), -2.5));
      expect(Array.from(y)).toEqual(Array.from(x, (v) => Math.fround(-2.5 * v)));
    });

    for (const [R, V, seed] of [
      [1, 1, 91],
      [5, 17, 92],
      [3, 300, 93],
    ] as const) {
      op("cross_entropy_backward", `[${R},${V}] with an ignored row, scale 0.25, seed ${seed}`, async () => {
        const x = rand(R * V, seed, 3);
        const t = Int32Array.from({ length: R }, (_, r) => (r === 1 ? -100 : (r * 7 + 3) % V));
        const got = await be.read(be.cross_entropy_backward(be.upload(x, [R, V]), be.uploadInt(t, [R]), 0.25));
        const [ref] = finiteDifferenceVjp(
          ([xs]) => {
            let s = 0;
            for (let r = 0; r < R; r++) {
              if (t[r] < 0) continue;
              let m = -Infinity;
              for (let v = 0; v < V; v++) m = Math.max(m, xs[r * V + v]);
              let z = 0;
              for (let v = 0; v < V; v++) z += Math.exp(xs[r * V + v] - m);
              s += m + Math.log(z) - xs[r * V + t[r]];
            }
            return Float64Array.of(0.25 * s);
          },
          [x],
          Float64Array.of(1),
        );
        expect(nmse(got, ref)).toBeLessThan(FD_TOL);
      });
    }

    for (const [R, V, tau, seed] of [
      [1, 1, 1, 94],
      [4, 23, 1, 95],
      [3, 260, 2.5, 96],
    ] as const) {
      op("kl_div", `[${R},${V}] τ ${tau} seed ${seed}: the loss and its gradient`, async () => {
        const sv = rand(R * V, seed, 2);
        const tv = rand(R * V, seed + 1, 2);
        const scale = 0.5;
        const { loss, grad } = be.kl_div(be.upload(sv, [R, V]), be.upload(tv, [R, V]), tau, scale);
        const klRows = (ss: ArrayLike<number>) =>
          Array.from({ length: R }, (_, r) => {
            const lsm = (a: ArrayLike<number>) => {
              const row = Array.from({ length: V }, (_, v) => a[r * V + v] / tau);
              const m = Math.max(...row);
              const l = m + Math.log(row.reduce((acc, z) => acc + Math.exp(z - m), 0));
              return row.map((z) => z - l);
            };
            const lq = lsm(ss);
            const lp = lsm(tv);
            return lp.reduce((acc, l, v) => acc + Math.exp(l) * (l - lq[v]), 0);
          });
        expect(nmse(await be.read(loss), klRows(sv))).toBeLessThan(TOL);
        const [ref] = finiteDifferenceVjp(
          ([ss]) => Float64Array.of(scale * tau * klRows(ss).reduce((a, b) => a + b, 0)),
          [sv],
          Float64Array.of(1),
        );
        expect(nmse(await be.read(grad), ref)).toBeLessThan(FD_TOL);
      });
    }

    op("kl_div", "rows masked < 0 have loss and gradient 0; the others are unchanged", async () => {
      const [R, V] = [4, 9];
      const sv = be.upload(rand(R * V, 102), [R, V]);
      const tv = be.upload(rand(R * V, 103), [R, V]);
      const all = be.kl_div(sv, tv, 1.3, 0.7);
      const masked = be.kl_div(sv, tv, 1.3, 0.7, be.uploadInt(Int32Array.of(5, -100, 0, -1), [R]));
      const [la, ga, lm, gm] = [
        await be.read(all.loss),
        await be.read(all.grad),
        await be.read(masked.loss),
        await be.read(masked.grad),
      ];
      for (let r = 0; r < R; r++) {
        const ignored = r === 1 || r === 3;
        expect(lm[r]).toBe(ignored ? 0 : la[r]);
        for (let v = 0; v < V; v++) expect(gm[r * V + v]).toBe(ignored ? 0 : ga[r * V + v]);
      }
    });

    op("kl_div", "of a distribution with itself is 0, and refuses mismatched shapes and τ ≤ 0", async () => {
      const x = be.upload(rand(40, 97), [4, 10]);
      const { loss, grad } = be.kl_div(x, x, 1.5, 1);
      for (const v of await be.read(loss)) expect(Math.abs(v)).toBeLessThan(1e-6);
      for (const v of await be.read(grad)) expect(Math.abs(v)).toBeLessThan(1e-7);
      expect(() => be.kl_div(x, be.upload(rand(30, 98), [3, 10]), 1, 1)).toThrow(/must have one shape/);
      expect(() => be.kl_div(x, x, 0, 1)).toThrow(/temperature/);
    });

    for (const [shape, V, C, seed] of [
      [[1], 1, 1, 99],
      [[2, 5], 7, 3, 100],
      [[3, 40], 50, 9, 101],
    ] as const) {
      op(
        "embedding_backward",
        `is embedding's adjoint: ids ${JSON.stringify(shape)} V${V} C${C} seed${seed}`,
        async () => {
          const r = new Rng(seed);
          const n = (shape as readonly number[]).reduce((a, b) => a * b, 1);
          // repeated ids, so rows really sum
          const ids = Int32Array.from({ length: n }, () => r.int(Math.max(1, Math.ceil(V / 2))));
          const dy = rand(n * C, seed + 1);
          const got = await be.read(
            be.embedding_backward(be.uploadInt(ids, [...shape]), be.upload(dy, [...shape, C]), V),
          );
          const ref = new Float64Array(V * C);
          for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) ref[ids[i] * C + c] += dy[i * C + c];
          expect(nmse(got, ref)).toBeLessThan(TOL);
          expect(() =>
            be.embedding_backward(be.uploadInt(Int32Array.of(V), [1]), be.upload(rand(C, 1), [1, C]), V),
          ).toThrow(/outside/);
        },
      );
    }
  });
}
