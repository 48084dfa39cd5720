// Access to ../shared: the models, eval texts and the PyTorch/transformers golden fixtures, plus a comparison
// that reports which tensor differs, by how much and where.

import * as fs from "node:fs";
import * as path from "node:path";
import { SafetensorsFile } from "../../src/index.js";

export const SHARED = path.resolve(__dirname, "../../../shared");
export const MODELS = {
  stories260K: path.join(SHARED, "models/stories260K"),
  "llama-en-26m": path.join(SHARED, "models/llama-en-26m"),
} as const;
export type SharedModel = keyof typeof MODELS;

export const TEXTS: Record<string, string> = {
  tinystories_excerpt: path.join(SHARED, "data/tinystories/excerpt.txt"),
  wikitext2_test: path.join(SHARED, "data/wikitext2/wiki.test.raw"),
};

export interface GoldenPpl {
  ppl: number;
  windows: number;
  mean_nll: number;
  tokens: number;
  ids_sha256: string;
  first4096: { first_tokens: number; windows: number; seqlen: number; mean_nll: number; ppl: number };
}

export interface GoldenMeta {
  model: string;
  seqlen: number;
  ppl: Record<string, GoldenPpl>;
  block0_loss: number;
  lm_loss: number;
  layer0_params: string[];
}

export function hasShared(): boolean {
  return fs.existsSync(path.join(SHARED, "fixtures"));
}

export class Golden {
  readonly meta: GoldenMeta;
  private readonly file: SafetensorsFile;
  constructor(model: SharedModel) {
    this.meta = JSON.parse(fs.readFileSync(path.join(SHARED, `fixtures/golden-${model}.json`), "utf8")) as GoldenMeta;
    this.file = SafetensorsFile.open(path.join(SHARED, `fixtures/golden-${model}.safetensors`));
  }
  f32(name: string): { data: Float32Array; shape: readonly number[] } {
    const info = this.file.info(name);
    if (!info) throw new Error(`golden has no tensor ${name}`);
    return { data: this.file.readFloat32(name), shape: info.shape };
  }
  i32(name: string): Int32Array {
    const raw = this.file.readRaw(name);
    if (!(raw instanceof Int32Array)) throw new Error(`golden tensor ${name} is not I32`);
    return raw;
  }
  names(): string[] {
    return this.file.names();
  }
}

/** max |a − b| with a description of the first few positions over `tol`; throws with it when over. */
export function expectClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): number {
  if (actual.length !== expected.length) {
    throw new Error(`${name}: length ${actual.length} ≠ expected ${expected.length}`);
  }
  let max = 0;
  const bad: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    if (!(d <= tol) && bad.length < 5) bad.push(`[${i}] ${actual[i]} vs ${expected[i]}`);
  }
  if (!(max <= tol)) throw new Error(`${name}: max |Δ| = ${max} > ${tol}; first differing: ${bad.join(", ")}`);
  return max;
}

/** max |a − b| / max |b|, the relative gradient tolerance of ../shared/README.md. */
export function expectRelClose(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rel: number,
): number {
  let ref = 0;
  for (let i = 0; i < expected.length; i++) ref = Math.max(ref, Math.abs(expected[i]));
  const max = expectClose(name, actual, expected, rel * ref);
  return ref === 0 ? max : max / ref;
}
