// Tensors held in memory (as a writer would write them) over another source: compress reads a block it has just
// compressed back through the same loader as a checkpoint on disk (codes, codebooks, side parts), with the
// untouched tensors (norms, biases) from the source checkpoint underneath.

import { DTYPE_BYTES, type RawArray, toFloat32, viewAs } from "../tensor/dtype.js";
import type { TensorInfo, TensorSource, TensorToWrite } from "./safetensors.js";

export class OverlaySource implements TensorSource {
  private readonly byName = new Map<string, TensorToWrite>();

  constructor(
    tensors: TensorToWrite[],
    private readonly base: TensorSource,
  ) {
    for (const t of tensors) this.byName.set(t.name, t);
  }

  names(): string[] {
    return [...new Set([...this.byName.keys(), ...this.base.names()])];
  }

  info(name: string): TensorInfo | undefined {
    const t = this.byName.get(name);
    if (!t) return this.base.info(name);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    return {
      name,
      dtype: t.dtype,
      shape: t.shape,
      fileOffset: 0,
      byteLength: numel * DTYPE_BYTES[t.dtype],
      file: "(memory)",
    };
  }

  readRaw(name: string): RawArray {
    const t = this.byName.get(name);
    if (!t) return this.base.readRaw(name);
    const v = typeof t.data === "function" ? t.data() : t.data;
    const numel = t.shape.reduce((a, b) => a * b, 1);
    return viewAs(t.dtype, v.buffer as ArrayBuffer, v.byteOffset, numel);
  }

  readFloat32(name: string): Float32Array {
    if (!this.byName.has(name)) return this.base.readFloat32(name);
    const t = this.byName.get(name)!;
    const raw = this.readRaw(name);
    return t.dtype === "F32" ? (raw as Float32Array).slice() : toFloat32(t.dtype, raw);
  }

  /** The base source stays open: it belongs to the caller. */
  close(): void {}
}
