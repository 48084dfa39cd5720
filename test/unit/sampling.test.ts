// Sampling: greedy is argmax, top-k and top-p restrict the candidates, a seed fixes the draw.

import { describe, expect, it } from "vitest";
import { argmax, Rng, sampleToken } from "../../src/index.js";

const logits = Float32Array.from([0, 3, 1, 2.5, -1]);

describe("sampleToken", () => {
  it("temperature 0 is argmax (first index on ties)", () => {
    expect(sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, new Rng(0))).toBe(1);
    expect(argmax(Float32Array.from([1, 5, 5]))).toBe(1);
  });

  it("top-k 2 only ever draws the two most likely tokens, both of them", () => {
    const rng = new Rng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 2, topP: 1 }, rng));
    expect([...seen].sort()).toEqual([1, 3]);
  });

  it("top-p keeps the smallest set reaching p", () => {
    // softmax(logits): p(1) ≈ 0.52, p(3) ≈ 0.32 → top-p 0.6 keeps {1, 3}; top-p 0.5 keeps {1}
    const rng = new Rng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 0, topP: 0.6 }, rng));
    expect([...seen].sort()).toEqual([1, 3]);
    for (let i = 0; i < 50; i++) expect(sampleToken(logits, { temperature: 1, topK: 0, topP: 0.5 }, rng)).toBe(1);
  });

  it("frequencies follow softmax(logits / T)", () => {
    const rng = new Rng(11);
    const counts = new Array(5).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: 2, topK: 0, topP: 1 }, rng)]++;
    const e = Array.from(logits, (l) => Math.exp(l / 2));
    const z = e.reduce((a, b) => a + b, 0);
    for (let i = 0; i < 5; i++) expect(Math.abs(counts[i] / n - e[i] / z)).toBeLessThan(0.015);
  });

  it("the same seed gives the same sequence", () => {
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 20 }, () => sampleToken(logits, { temperature: 1, topK: 0, topP: 1 }, rng));
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
  });
});
