// Storage dtypes (safetensors names) and conversions between f16/bf16 bit patterns and f32.
// Node 20 has no Float16Array, so f16 and bf16 are held as Uint16Array bit patterns.

export const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;

export type DType = keyof typeof DTYPE_BYTES;

export function isDType(s: string): s is DType {
  return Object.hasOwn(DTYPE_BYTES, s);
}

export function isFloatDType(d: DType): boolean {
  return d === "F64" || d === "F32" || d === "F16" || d === "BF16";
}

/** The typed array a dtype's raw bytes are viewed as (f16/bf16 as their 16-bit patterns). */
export type RawArray =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint8Array;

export function viewAs(dtype: DType, buf: ArrayBuffer, byteOffset = 0, length?: number): RawArray {
  const n = length ?? (buf.byteLength - byteOffset) / DTYPE_BYTES[dtype];
  switch (dtype) {
    case "F64":
      return new Float64Array(buf, byteOffset, n);
    case "F32":
      return new Float32Array(buf, byteOffset, n);
    case "F16":
    case "BF16":
    case "U16":
      return new Uint16Array(buf, byteOffset, n);
    case "I64":
      return new BigInt64Array(buf, byteOffset, n);
    case "U64":
      return new BigUint64Array(buf, byteOffset, n);
    case "I32":
      return new Int32Array(buf, byteOffset, n);
    case "I16":
      return new Int16Array(buf, byteOffset, n);
    case "I8":
      return new Int8Array(buf, byteOffset, n);
    case "U32":
      return new Uint32Array(buf, byteOffset, n);
    case "U8":
    case "BOOL":
      return new Uint8Array(buf, byteOffset, n);
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half → float (handles subnormals, inf, NaN exactly). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float → IEEE half, round to nearest even (as torch's .half()). */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

export function bf16ToF32(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0];
}

/** float → bfloat16, round to nearest even (as torch's .bfloat16()). */
export function f32ToBf16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = f16ToF32(i);
  return t;
})();

/** Converts raw storage of any numeric dtype to a fresh Float32Array. */
export function toFloat32(dtype: DType, raw: RawArray): Float32Array {
  const n = raw.length;
  const out = new Float32Array(n);
  switch (dtype) {
    case "F16": {
      const src = raw as Uint16Array;
      for (let i = 0; i < n; i++) out[i] = F16_TABLE[src[i]];
      return out;
    }
    case "BF16": {
      const src = raw as Uint16Array;
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
      return out;
    }
    case "I64":
    case "U64": {
      const src = raw as BigInt64Array | BigUint64Array;
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return out;
    }
    default: {
      const src = raw as Exclude<RawArray, BigInt64Array | BigUint64Array>;
      for (let i = 0; i < n; i++) out[i] = src[i];
      return out;
    }
  }
}

/** Encodes f32 values into f16 or bf16 bit patterns. */
export function fromFloat32(dtype: "F16" | "BF16", src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const enc = dtype === "F16" ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < src.length; i++) out[i] = enc(src[i]);
  return out;
}
