// Bits per weight: the one place the project computes it (AQLM's estimate_nbits_per_parameter, on the
// quantized weight itself). Codes are 16-bit (the reference's width) or, packed (--code-bits min), ⌈log₂K⌉ bits;
// centroids and RTN scales/zeros fp16.
//
// ClusComp, per matrix W [out, in] with vector length d, K centroids per codebook, m codebooks, b-bit codes:
//   bpw = b·in·⌈out/d⌉ / (in·out)  +  16·K·d·m / (in·out)
// which for b = 16 is the reference's 16/d + 16·K·d·m/(in·out) whenever d divides out (padding codes are counted
// honestly otherwise). A codebook shared by several matrices is counted once, spread over all of them.
// ReALLM's low-rank part of rank r (fp16 factors A [r, in], B [out, r]) adds 16·r·(in + out) bits to its matrix;
// LLM-Codebook's k salient input channels (fp16 columns [out, k], 32-bit indices) add k·(16·out + 32).
// Channel scales add one fp16 value per output row: 16·out bits.
// RTN, b bits, group G along the input axis, fp16 scale + zero per group: bpw = b + 32/G.

export const CODE_BITS = 16;
export const CENTROID_BITS = 16;
export const RTN_PARAM_BITS = 16;

export interface CodebookMatrixShape {
  out: number;
  in: number;
  d: number;
}

/** Bits of one code: the fixed 16, or packed ⌈log₂K⌉ (at least 1). */
export function codeWidth(K: number, packed: boolean): number {
  return packed ? Math.max(1, Math.ceil(Math.log2(K))) : CODE_BITS;
}

/** Bits of the codes of one matrix (one `width`-bit code per vector of the padded Wᵀ layout). */
export function codeBits(s: CodebookMatrixShape, width = CODE_BITS): number {
  return width * s.in * Math.ceil(s.out / s.d);
}

/** Bits of one codebook of K centroids of length d. */
export function codebookBits(K: number, d: number): number {
  return CENTROID_BITS * K * d;
}

/** bpw of one matrix with its own m codebooks of K centroids. */
export function codebookMatrixBpw(s: CodebookMatrixShape, K: number, m = 1): number {
  return (codeBits(s) + m * codebookBits(K, s.d)) / (s.in * s.out);
}

/** Bits of ReALLM's fp16 low-rank factors of rank r for a matrix [out, in]. */
export function lowRankPartBits(r: number, out: number, inp: number): number {
  return CENTROID_BITS * r * (out + inp);
}

/** Bits of LLM-Codebook's k salient input channels of a matrix with `out` outputs (fp16 values, 32-bit indices). */
export function salientPartBits(k: number, out: number): number {
  return k * (CENTROID_BITS * out + 32);
}

/** Bits of a matrix's channel scales (one fp16 value per output row). */
export function channelScaleBits(out: number): number {
  return CENTROID_BITS * out;
}

/** bpw of round-to-nearest with `bits` per weight and fp16 scale + zero per group of `group` weights. */
export function rtnBpw(bits: number, group: number, cols = group): number {
  // a row of `cols` weights holds ⌈cols/group⌉ groups
  return bits + (2 * RTN_PARAM_BITS * Math.ceil(cols / group)) / cols;
}

/** What a compressed model stores, to sum into a model-level bpw. */
export interface BitBudget {
  /** Parameters of the compressed matrices. */
  params: number;
  /** All bits stored for them (codes + codebooks counted once + scales/zeros). */
  bits: number;
}

export function addBudget(a: BitBudget, b: BitBudget): BitBudget {
  return { params: a.params + b.params, bits: a.bits + b.bits };
}

/** Parameter-weighted bpw over the compressed matrices. */
export function budgetBpw(b: BitBudget): number {
  return b.params === 0 ? 0 : b.bits / b.params;
}
