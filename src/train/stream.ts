// An activation stream: one [T, C] float32 array per calibration sample (a block's inputs or targets), kept in
// memory or, past --max-memory, in a file read and written one sample at a time. Either way `persist` leaves the
// complete stream in its file, which is what a block checkpoint records and `--resume` reopens.

import * as fs from "node:fs";
import { CompressionError } from "../errors.js";
import { streamFileAtomic } from "../io/atomic.js";

export class ActivationStream {
  readonly file: string;
  readonly samples: number;
  /** Floats per sample. */
  readonly elems: number;
  private readonly mem: Float32Array | null;
  private fd: number | null = null;

  private constructor(file: string, samples: number, elems: number, inMemory: boolean) {
    this.file = file;
    this.samples = samples;
    this.elems = elems;
    this.mem = inMemory ? new Float32Array(samples * elems) : null;
  }

  get bytes(): number {
    return this.samples * this.elems * 4;
  }

  /** An empty stream whose file will be `file` (disk streams create it now). */
  static create(file: string, samples: number, elems: number, inMemory: boolean): ActivationStream {
    const s = new ActivationStream(file, samples, elems, inMemory);
    if (!inMemory) {
      s.fd = fs.openSync(file, "w+");
      fs.ftruncateSync(s.fd, s.bytes);
    }
    return s;
  }

  /** Reopens a persisted stream. */
  static open(file: string, samples: number, elems: number, inMemory: boolean): ActivationStream {
    const s = new ActivationStream(file, samples, elems, inMemory);
    const size = fs.existsSync(file) ? fs.statSync(file).size : -1;
    if (size !== s.bytes) {
      throw new CompressionError(
        "finetune.resume",
        `${file}: expected ${s.bytes} bytes of activations, found ${size < 0 ? "no file" : `${size}`}; the checkpoint is damaged (delete the work directory to start over)`,
      );
    }
    if (s.mem) {
      const fd = fs.openSync(file, "r");
      try {
        readFully(fd, new Uint8Array(s.mem.buffer), 0);
      } finally {
        fs.closeSync(fd);
      }
    } else {
      s.fd = fs.openSync(file, "r+");
    }
    return s;
  }

  /** Sample s (a view for in-memory streams: do not keep it across writes). */
  read(s: number): Float32Array {
    if (this.mem) return this.mem.subarray(s * this.elems, (s + 1) * this.elems);
    const out = new Float32Array(this.elems);
    readFully(this.fd!, new Uint8Array(out.buffer), s * this.elems * 4);
    return out;
  }

  write(s: number, data: Float32Array): void {
    if (data.length !== this.elems)
      throw new CompressionError("finetune.stream", `sample of ${data.length} floats, stream holds ${this.elems}`);
    if (this.mem) {
      this.mem.set(data, s * this.elems);
      return;
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(this.fd!, bytes, off, bytes.length - off, s * this.elems * 4 + off);
  }

  /** Makes the file hold the whole stream, synced (in-memory streams are written atomically). */
  persist(): void {
    if (this.mem) {
      const mem = this.mem;
      streamFileAtomic(this.file, (append) => {
        const chunk = 1 << 24;
        const bytes = new Uint8Array(mem.buffer);
        for (let o = 0; o < bytes.length; o += chunk) append(bytes.subarray(o, Math.min(bytes.length, o + chunk)));
      });
    } else {
      fs.fsyncSync(this.fd!);
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

function readFully(fd: number, into: Uint8Array, position: number): void {
  let off = 0;
  while (off < into.length) {
    const n = fs.readSync(fd, into, off, into.length - off, position + off);
    if (n === 0) throw new CompressionError("finetune.stream", "activation file ended early");
    off += n;
  }
}
