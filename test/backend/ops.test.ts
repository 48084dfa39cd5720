// The backend suite: every op of the contract on every available backend, against float64 oracles, on random
// inputs with awkward shapes (1, primes, sizes that are not multiples of a tile). Names carry op, shape and seed.
// A backend that does not support an op reports it as skipped (it.skip with the reason), never as passed.

import { describe, expect, it } from "vitest";
import { CpuBackend, packBits, Rng } from "../../src/index.js";
import { BACKENDS, label, opTest, rand, reportWebGpuSkip, TOL } from "../helpers/backends.js";
import { nmse, oracleAttention, oracleMatmul } from "../helpers/oracle.js";

reportWebGpuSkip("backend ops");

for (const be of BACKENDS) {
  const op = opTest(be);

  describe(`backend ${label(be)}`, () => {
    for (const [M, K, N, tA, tB, seed] of [
      [1, 1, 1, false, true, 1],
      [7, 13, 5, false, true, 2],
      [33, 65, 17, false, true, 3],
      [5, 31, 9, false, false, 4],
      [6, 17, 11, true, false, 5],
      [3, 7, 29, true, true, 6],
      // all four storage orders at sizes off the fast tier's 2×4 register block and 64×32 chunks
      [9, 17, 13, false, false, 7],
      [12, 5, 3, true, false, 8],
      [17, 33, 7, true, true, 9],
      [10, 1, 1, false, true, 10],
      [64, 64, 72, false, false, 11],
      [131, 70, 66, false, true, 12],
      // several chunks in both directions (rows of 64, columns of 32) and a transposed operand
      [70, 90, 100, true, false, 13],
      [129, 3, 65, false, false, 14],
      // the decode shape (≤ 4 rows): long rows of B, B stored either way, A transposed
      [1, 1000, 5, false, true, 15],
      [2, 300, 70, false, false, 16],
      [4, 129, 33, true, false, 17],
      [3, 65, 130, true, true, 18],
    ] as const) {
      op("matmul", `M${M} K${K} N${N} tA=${tA} tB=${tB} seed${seed}`, async () => {
        const a = rand(M * K, seed);
        const b = rand(K * N, seed + 100);
        const out = be.matmul(be.upload(a, tA ? [K, M] : [M, K]), be.upload(b, tB ? [N, K] : [K, N]), {
          transposeA: tA,
          transposeB: tB,
        });
        expect(out.shape).toEqual([M, N]);
        expect(nmse(await be.read(out), oracleMatmul(a, b, M, K, N, tA, tB))).toBeLessThan(TOL);
      });
    }

    for (const [B, T, seed] of [
      [2, 3, 7],
      [2, 9, 13],
      [1, 2, 19],
    ] as const) {
      op("linear", `x[${B},${T},19] W[23,19] with bias, seed ${seed}`, async () => {
        const x = rand(B * T * 19, seed);
        const w = rand(23 * 19, seed + 1);
        const bias = rand(23, seed + 2);
        const y = be.linear(be.upload(x, [B, T, 19]), be.upload(w, [23, 19]), be.upload(bias, [23]));
        expect(y.shape).toEqual([B, T, 23]);
        const ref = oracleMatmul(x, w, B * T, 19, 23, false, true).map((v, i) => v + bias[i % 23]);
        expect(nmse(await be.read(y), ref)).toBeLessThan(TOL);
      });
    }

    op("add", "[5,7] seed 10", async () => {
      const a = rand(35, 10);
      const b = rand(35, 11);
      const y = await be.read(be.add(be.upload(a, [5, 7]), be.upload(b, [5, 7])));
      expect(
        nmse(
          y,
          Array.from(a, (v, i) => v + b[i]),
        ),
      ).toBeLessThan(TOL);
    });

    op("rms_norm", "[3,37] eps 1e-5 seed 12", async () => {
      const x = rand(3 * 37, 12, 3);
      const w = rand(37, 13);
      const y = await be.read(be.rms_norm(be.upload(x, [3, 37]), be.upload(w, [37]), 1e-5));
      const ref = new Float64Array(x.length);
      for (let r = 0; r < 3; r++) {
        let ms = 0;
        for (let c = 0; c < 37; c++) ms += x[r * 37 + c] ** 2 / 37;
        for (let c = 0; c < 37; c++) ref[r * 37 + c] = (x[r * 37 + c] / Math.sqrt(ms + 1e-5)) * w[c];
      }
      expect(nmse(y, ref)).toBeLessThan(TOL);
    });

    op("rope", "B2 T5 heads3 D6 startPos4 seed 14", async () => {
      const [B, T, Hh, D, start, P] = [2, 5, 3, 6, 4, 16];
      const x = rand(B * T * Hh * D, 14);
      const cos = new Float32Array(P * 3);
      const sin = new Float32Array(P * 3);
      for (let p = 0; p < P; p++)
        for (let i = 0; i < 3; i++) {
          cos[p * 3 + i] = Math.cos(p * 0.3 ** i);
          sin[p * 3 + i] = Math.sin(p * 0.3 ** i);
        }
      const y = await be.read(
        be.rope(be.upload(x, [B, T, Hh * D]), be.upload(cos, [P, 3]), be.upload(sin, [P, 3]), {
          numHeads: Hh,
          headDim: D,
          startPos: start,
        }),
      );
      // as a complex rotation of the pairs (i, i + D/2) by angle (start + t)·0.3^i
      const ref = new Float64Array(x.length);
      for (let bt = 0; bt < B * T; bt++)
        for (let h = 0; h < Hh; h++)
          for (let i = 0; i < 3; i++) {
            const o = (bt * Hh + h) * D;
            const ang = (start + (bt % T)) * 0.3 ** i;
            const re = x[o + i];
            const im = x[o + i + 3];
            ref[o + i] = re * Math.cos(ang) - im * Math.sin(ang);
            ref[o + i + 3] = re * Math.sin(ang) + im * Math.cos(ang);
          }
      expect(nmse(y, ref)).toBeLessThan(TOL);
    });

    for (const [B, T, S, H, Hkv, D, kvLen, qOff, win, seed] of [
      [1, 1, 1, 1, 1, 1, 1, 0, null, 20],
      [2, 7, 7, 4, 2, 5, 7, 0, null, 21],
      [1, 3, 11, 6, 1, 4, 9, 6, null, 22],
      [2, 9, 9, 3, 3, 7, 9, 0, 4, 23],
      // ≥ 8 query rows: the fast tier's per-head matrix products
      [2, 11, 11, 4, 2, 6, 11, 0, null, 24],
      [1, 8, 19, 6, 2, 5, 17, 9, null, 25],
      [1, 13, 13, 2, 1, 8, 13, 0, 5, 26],
    ] as const) {
      op(
        "attention",
        `B${B} T${T} S${S} H${H} Hkv${Hkv} D${D} kv${kvLen} off${qOff} win${win} seed${seed}`,
        async () => {
          const q = rand(B * T * H * D, seed);
          const k = rand(B * S * Hkv * D, seed + 1);
          const v = rand(B * S * Hkv * D, seed + 2);
          const y = be.attention(
            be.upload(q, [B, T, H * D]),
            be.upload(k, [B, S, Hkv * D]),
            be.upload(v, [B, S, Hkv * D]),
            {
              numHeads: H,
              numKvHeads: Hkv,
              headDim: D,
              kvLength: kvLen,
              queryOffset: qOff,
              slidingWindow: win,
            },
          );
          const ref = oracleAttention(q, k, v, B, T, S, H, Hkv, D, kvLen, qOff, win);
          expect(nmse(await be.read(y), ref)).toBeLessThan(TOL);
        },
      );
    }

    // one chunk, and several chunks of 16,384 with a cut last one; large |gate| (exp over- and underflow)
    for (const [n, scale, seed] of [
      [41, 3, 30],
      [40000, 30, 33],
    ] as const) {
      op("silu_mul", `[${n}] gate scale ${scale} seed ${seed}`, async () => {
        const g = rand(n, seed, scale);
        const u = rand(n, seed + 1);
        const y = await be.read(be.silu_mul(be.upload(g, [n]), be.upload(u, [n])));
        expect(
          nmse(
            y,
            Array.from(g, (x, i) => (x / (1 + Math.exp(-x))) * u[i]),
          ),
        ).toBeLessThan(TOL);
        expect(y.every(Number.isFinite)).toBe(true);
      });
    }

    // add and mul: b of a's shape, one value per column, one per row; a 40,000-element a (several workgroup rows on a GPU)
    for (const opName of ["add", "mul"] as const)
      for (const [shape, bShape, seed] of [
        [[3, 7], [3, 7], 34],
        [[2, 5, 13], [13], 35],
        [[2, 5, 13], [2, 5, 1], 36],
        [[200, 200], [200, 1], 37],
        [[1], [1], 38],
      ] as const) {
        op(opName, `a[${shape}] b[${bShape}] seed ${seed}`, async () => {
          const n = shape.reduce((p: number, q: number) => p * q, 1);
          const C = shape[shape.length - 1];
          const a = rand(n, seed);
          const b = rand(
            bShape.reduce((p: number, q: number) => p * q, 1),
            seed + 1,
          );
          const y = await be.read(be[opName](be.upload(a, [...shape]), be.upload(b, [...bShape])));
          const perRow = bShape[bShape.length - 1] === 1 && C !== 1;
          const perColumn = bShape.length === 1 && bShape[0] === C && shape.length > 1;
          const ref = Array.from(a, (v, i) => {
            const w = b[perRow ? Math.floor(i / C) : perColumn ? i % C : i];
            return opName === "add" ? v + w : v * w;
          });
          expect(Array.from(y)).toEqual(ref.map(Math.fround));
        });
      }

    op("mul", "b of a shape it cannot broadcast to is a typed error", async () => {
      expect(() => be.mul(be.upload(rand(6, 1), [2, 3]), be.upload(rand(2, 2), [2]))).toThrow(/mul: b \[2\]/);
    });

    op("embedding", "ids[2,3] table[11,5]", async () => {
      const table = rand(55, 32);
      const ids = Int32Array.from([0, 10, 3, 3, 7, 1]);
      const y = be.embedding(be.uploadInt(ids, [2, 3]), be.upload(table, [11, 5]));
      expect(y.shape).toEqual([2, 3, 5]);
      const ref = Array.from(ids).flatMap((id) => Array.from(table.subarray(id * 5, id * 5 + 5)));
      expect(Array.from(await be.read(y))).toEqual(ref);
      expect(() => be.embedding(be.uploadInt(Int32Array.of(11), [1]), be.upload(table, [11, 5]))).toThrow(
        /token id 11/,
      );
      expect(() => be.embedding(be.uploadInt(Int32Array.of(3, 0, -2), [3]), be.upload(table, [11, 5]))).toThrow(
        /token id -2 at position 2 is outside \[0, 11\)/,
      );
    });

    op("cross_entropy", "rejects a target ≥ V (negative targets are ignored positions)", async () => {
      const logits = be.upload(rand(12, 36), [3, 4]);
      expect(() => be.cross_entropy(logits, be.uploadInt(Int32Array.of(0, 4, -100), [3]))).toThrow(
        /target 4 at position 1 is outside \[0, 4\)/,
      );
    });

    op("kmeans_update", "rejects codes outside [0, K)", async () => {
      const x = be.upload(rand(6, 37), [3, 2]);
      expect(() => be.kmeans_update(x, be.uploadInt(Int32Array.of(0, 5, 1), [3]), 5)).toThrow(/code 5 at position 1/);
      expect(() => be.kmeans_update(x, be.uploadInt(Int32Array.of(0, 1, -1), [3]), 5)).toThrow(/code -1 at position 2/);
    });

    op("codebook_linear", "rejects codes outside [0, K)", async () => {
      const layout = { out: 4, in: 3, d: 2, nb: 2, K: 3, partCols: 2 };
      const codes = be.uploadInt(Int32Array.of(0, 1, 2, 3, 0, 1), [3, 2]);
      expect(() =>
        be.codebook_linear(be.upload(rand(3, 38), [1, 3]), codes, be.upload(rand(6, 39), [1, 3, 2]), null, layout),
      ).toThrow(/code 3 at position 3 is ≥ K = 3/);
    });

    const softmaxRef = (x: Float32Array, C: number, log: boolean) => {
      const out = new Float64Array(x.length);
      for (let r = 0; r < x.length / C; r++) {
        const row = Array.from(x.subarray(r * C, (r + 1) * C));
        const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
        row.forEach((v, c) => {
          out[r * C + c] = log ? v - lse : Math.exp(v - lse);
        });
      }
      return out;
    };
    op("softmax", "[4,13] seed 33", async () => {
      const x = rand(52, 33, 4);
      expect(nmse(await be.read(be.softmax(be.upload(x, [4, 13]))), softmaxRef(x, 13, false))).toBeLessThan(TOL);
    });
    op("log_softmax", "[4,13] seed 34", async () => {
      const x = rand(52, 34, 4);
      expect(nmse(await be.read(be.log_softmax(be.upload(x, [4, 13]))), softmaxRef(x, 13, true))).toBeLessThan(TOL);
    });
    op("cross_entropy", "[5,17] with an ignored row, seed 35", async () => {
      const x = rand(85, 35, 4);
      const t = Int32Array.from([3, 0, -1, 16, 8]);
      const y = await be.read(be.cross_entropy(be.upload(x, [5, 17]), be.uploadInt(t, [5])));
      const ls = softmaxRef(x, 17, true);
      const ref = Array.from(t, (ti, r) => (ti < 0 ? 0 : -ls[r * 17 + ti]));
      expect(nmse(y, ref)).toBeLessThan(TOL);
    });

    op("write_rows", "and narrow, [2,6,3]", async () => {
      const dst = be.zeros([2, 6, 3]);
      const src = rand(2 * 2 * 3, 36);
      be.write_rows(dst, be.upload(src, [2, 2, 3]), 3);
      const got = await be.read(be.narrow(dst, 3, 2));
      expect(Array.from(got)).toEqual(Array.from(src));
      const all = await be.read(dst);
      expect(all.subarray(0, 9).every((v) => v === 0)).toBe(true);
    });

    for (const [N, K, d, seed] of [
      [1, 1, 1, 40],
      [7, 3, 2, 41],
      [103, 17, 6, 42],
      [64, 64, 9, 43],
    ] as const) {
      op("kmeans_assign", `N${N} K${K} d${d} seed${seed}`, async () => {
        const x = rand(N * d, seed);
        const c = rand(K * d, seed + 1);
        if (K > 2) c.set(c.subarray(0, d), 2 * d); // centroid 2 duplicates centroid 0: ties must pick 0
        const { codes, distances } = be.kmeans_assign(be.upload(x, [N, d]), be.upload(c, [K, d]));
        const got = await be.readInt(codes);
        const dist = await be.read(distances);
        for (let n = 0; n < N; n++) {
          let best = 0;
          let bestD = Number.POSITIVE_INFINITY;
          for (let k = 0; k < K; k++) {
            let s = 0;
            for (let j = 0; j < d; j++) s += (x[n * d + j] - c[k * d + j]) ** 2;
            if (s < bestD - 1e-9) {
              bestD = s;
              best = k;
            }
          }
          expect(got[n], `vector ${n}`).toBe(best);
          expect(Math.abs(dist[n] - bestD)).toBeLessThan(1e-4 * (1 + bestD));
        }
        expect(got.includes(2)).toBe(false);
      });
    }

    for (const [N, K, d, seed] of [
      [1027, 37, 6, 90],
      [515, 8, 1, 91],
      [258, 70, 8, 92],
      [33, 9, 13, 93],
    ] as const) {
      op("kmeans_assign", `against float64 with near-ties excused: N${N} K${K} d${d} seed${seed}`, async () => {
        const x = rand(N * d, seed);
        const c = rand(K * d, seed + 1);
        const { codes, distances } = be.kmeans_assign(be.upload(x, [N, d]), be.upload(c, [K, d]));
        const got = await be.readInt(codes);
        const dist = await be.read(distances);
        let checked = 0;
        for (let n = 0; n < N; n++) {
          const ds = Array.from({ length: K }, (_, k) => {
            let s = 0;
            for (let j = 0; j < d; j++) s += (x[n * d + j] - c[k * d + j]) ** 2;
            return s;
          });
          const best = ds.indexOf(Math.min(...ds));
          const second = Math.min(...ds.filter((_, k) => k !== best));
          expect(Math.abs(dist[n] - ds[best])).toBeLessThan(1e-4 * (1 + ds[best]));
          if (second - ds[best] > 1e-4 * (1 + ds[best])) {
            expect(got[n], `vector ${n}`).toBe(best);
            checked++;
          } else {
            expect(ds[got[n]] - ds[best]).toBeLessThan(2e-4 * (1 + ds[best])); // a near-tie: either is nearest
          }
        }
        expect(checked).toBeGreaterThan(N * 0.9);
      });
    }

    op("kmeans_update", "sums that cancel are exact, the same in every run (no float32 running sum)", async () => {
      // a float32 running sum loses 1e-3 next to 1e6 (its spacing there is 0.0625) or keeps it, by the order
      const x = Float32Array.of(1e6, 1e-3, 7, -1e6, 2.5e-3, -7, 3);
      const codes = Int32Array.of(0, 0, 1, 0, 0, 1, 1);
      const expected = [x[0] + x[1] + x[3] + x[4], x[2] + x[5] + x[6]]; // in float64
      const runs: Float32Array[] = [];
      for (let r = 0; r < 3; r++) {
        const { sums, counts } = be.kmeans_update(be.upload(x, [7, 1]), be.uploadInt(codes, [7]), 2);
        runs.push(await be.read(sums));
        expect(Array.from(await be.read(counts))).toEqual([4, 3]);
      }
      for (let k = 0; k < 2; k++) expect(Math.abs(runs[0][k] - expected[k]) / expected[k]).toBeLessThan(1e-6);
      expect(runs[1]).toEqual(runs[0]);
      expect(runs[2]).toEqual(runs[0]);
    });

    op("kmeans_update", "N50 K7 d3 seed 44", async () => {
      const x = rand(150, 44);
      const r = new Rng(45);
      const codes = Int32Array.from({ length: 50 }, () => r.int(6)); // cluster 6 stays empty
      const { sums, counts } = be.kmeans_update(be.upload(x, [50, 3]), be.uploadInt(codes, [50]), 7);
      const refS = new Float64Array(21);
      const refC = new Float64Array(7);
      codes.forEach((k, n) => {
        refC[k]++;
        for (let j = 0; j < 3; j++) refS[k * 3 + j] += x[n * 3 + j];
      });
      expect(Array.from(await be.read(counts))).toEqual(Array.from(refC));
      expect(nmse(await be.read(sums), refS)).toBeLessThan(TOL);
    });

    op("codebook_decode", "out10 in3 d4 K5 m2 seed 46", async () => {
      const [out, inp, d, K, m] = [10, 3, 4, 5, 2];
      const nb = Math.ceil(out / d);
      const partCols = Math.ceil(nb / m);
      const books = rand(m * K * d, 46);
      const r = new Rng(47);
      const codes = Int32Array.from({ length: inp * nb }, () => r.int(K));
      const w = await be.read(
        be.codebook_decode(be.uploadInt(codes, [inp, nb]), be.upload(books, [m, K, d]), {
          out,
          in: inp,
          d,
          nb,
          K,
          partCols,
        }),
      );
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inp; i++) {
          const j = Math.floor(o / d);
          const part = Math.floor(j / partCols);
          expect(w[o * inp + i]).toBe(books[(part * K + codes[i * nb + j]) * d + (o % d)]);
        }
    });

    // vector shapes (≤ 4 rows) and matrix shapes; several 8-vector panels, inputs past one 256-column panel,
    // a cut last vector, shared codebook parts, more than one 64-row block
    for (const [M, out, inp, d, K, m, bias, seed] of [
      [1, 29, 37, 4, 16, 1, true, 60],
      [3, 150, 300, 8, 20, 2, false, 61],
      [5, 21, 20, 5, 7, 2, true, 62],
      [70, 130, 260, 6, 33, 3, true, 63],
      [2, 8, 1, 8, 1, 1, false, 64],
    ] as const) {
      op("codebook_linear", `M${M} out${out} in${inp} d${d} K${K} m${m} bias=${bias} seed ${seed}`, async () => {
        const nb = Math.ceil(out / d);
        const partCols = Math.ceil(nb / m);
        const books = rand(m * K * d, seed);
        const r = new Rng(seed + 1);
        const codes = Int32Array.from({ length: inp * nb }, () => r.int(K));
        const x = rand(M * inp, seed + 2);
        const b = rand(out, seed + 3);
        const y = be.codebook_linear(
          be.upload(x, [1, M, inp]),
          be.uploadInt(codes, [inp, nb]),
          be.upload(books, [m, K, d]),
          bias ? be.upload(b, [out]) : null,
          { out, in: inp, d, nb, K, partCols },
        );
        expect(y.shape).toEqual([1, M, out]);
        // W[o, i] = books[part(o/d)][codes[i, o/d]][o mod d], then y = x·Wᵀ + b in float64
        const w = Float32Array.from({ length: out * inp }, (_, idx) => {
          const [o, i] = [Math.floor(idx / inp), idx % inp];
          const j = Math.floor(o / d);
          return books[(Math.floor(j / partCols) * K + codes[i * nb + j]) * d + (o % d)];
        });
        const ref = oracleMatmul(x, w, M, inp, out, false, true).map((v, idx) => v + (bias ? b[idx % out] : 0));
        expect(nmse(await be.read(y), ref)).toBeLessThan(TOL);
      });
    }

    op("rtn_decode", "out5 in7 3-bit group 3 seed 48", async () => {
      const [out, inp, bits, group] = [5, 7, 3, 3];
      const ng = Math.ceil(inp / group);
      const r = new Rng(48);
      const q = Int32Array.from({ length: out * inp }, () => r.int(8));
      const packed = packBits(q, bits);
      const words = new Int32Array(Math.ceil(packed.length / 4));
      new Uint8Array(words.buffer).set(packed);
      const scales = rand(out * ng, 49);
      const zeros = rand(out * ng, 50);
      const w = await be.read(
        be.rtn_decode(be.uploadInt(words, [words.length]), be.upload(scales, [out, ng]), be.upload(zeros, [out, ng]), {
          out,
          in: inp,
          bits,
          group,
        }),
      );
      const ref = Array.from(q, (v, idx) => {
        const g = Math.floor(idx / inp) * ng + Math.floor((idx % inp) / group);
        return v * scales[g] + zeros[g];
      });
      expect(nmse(w, ref)).toBeLessThan(TOL);
    });
  });
}

describe("CPU backend tiers", () => {
  it("the fast tier's WebAssembly kernels load in this engine (Node ≥ 20 has SIMD), --backend reference does not", () => {
    expect(new CpuBackend().name).toBe("cpu");
    expect(new CpuBackend({ tier: "reference" }).name).toBe("reference");
    expect(new CpuBackend({ threads: 2 }).describe()).toMatch(/^WebAssembly (relaxed )?SIMD.*, 2 threads$/);
  });

  it("rejects a thread count that is not a positive integer", () => {
    expect(() => new CpuBackend({ threads: 0 })).toThrow(/threads must be an integer ≥ 1/);
    expect(() => new CpuBackend({ threads: 1.5 })).toThrow(/threads must be an integer ≥ 1/);
  });

  it("gives bit-identical results on one thread and on two (chunks are split, never the arithmetic)", async () => {
    const one = new CpuBackend({ threads: 1 });
    const two = new CpuBackend({ threads: 2, parallelMinFlops: 0 });
    expect(await two.ready()).toBe(true);
    const runs = (be: CpuBackend) => {
      const a = be.upload(rand(150 * 70, 70), [150, 70]);
      const b = be.upload(rand(70 * 90, 71), [70, 90]);
      const r = new Rng(72);
      const codes = be.uploadInt(
        Int32Array.from({ length: 70 * 20 }, () => r.int(50)),
        [70, 20],
      );
      const books = be.upload(rand(2 * 50 * 8, 73), [2, 50, 8]);
      const layout = { out: 157, in: 70, d: 8, nb: 20, K: 50, partCols: 10 };
      const x = be.upload(rand(2000 * 6, 74), [2000, 6]);
      const c = be.upload(rand(300 * 6, 75), [300, 6]);
      const qkv = [76, 77, 78].map((s) => be.upload(rand(2 * 20 * 4 * 8, s), [2, 20, 32]));
      const p = { numHeads: 4, numKvHeads: 4, headDim: 8, kvLength: 20, queryOffset: 0, slidingWindow: null };
      return [
        be.matmul(a, b),
        be.matmul(b, a, { transposeA: true, transposeB: true }),
        be.codebook_linear(a, codes, books, null, layout),
        be.codebook_linear(be.narrow(be.reshape(a, [1, 150, 70]), 0, 3), codes, books, null, layout),
        be.kmeans_assign(x, c).distances,
        be.attention(qkv[0], qkv[1], qkv[2], p),
      ];
    };
    const [r1, r2] = [runs(one), runs(two)];
    for (let i = 0; i < r1.length; i++) expect(await two.read(r2[i]), `result ${i}`).toEqual(await one.read(r1[i]));
    const assign = (be: CpuBackend) =>
      be.readInt(
        be.kmeans_assign(be.upload(rand(2000 * 6, 74), [2000, 6]), be.upload(rand(300 * 6, 75), [300, 6])).codes,
      );
    expect(await assign(two)).toEqual(await assign(one));
  });

  it("splits large jobs across its worker threads", async () => {
    const be = new CpuBackend({ threads: 2 });
    expect(await be.ready()).toBe(true);
    const a = be.upload(rand(400 * 400, 80), [400, 400]);
    // the workers race the calling thread for chunks: a few products make sure they took some
    for (let i = 0; i < 50 && be.workerChunks() === 0; i++) be.matmul(a, a);
    expect(be.workerChunks()).toBeGreaterThan(0);
  });
});
