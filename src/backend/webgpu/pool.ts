// GPU buffer pool: storage buffers in size classes (≤ 25 % over the request), reused after dispose. Reuse is safe
// without waiting for the GPU: commands run in submission order, so work recorded after a release runs after all
// work that used the buffer before it.

const STORAGE = 0x80;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
/** Free buffers kept for reuse, in bytes; beyond this a released buffer is destroyed. */
const MAX_POOLED = 1 << 30;

/** A device buffer and the bytes a tensor uses of it (the buffer may be larger: its size class). */
export interface GpuStorage {
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  released: boolean;
}

/** The size class of a request: multiples of 256 bytes up to 4 KiB, then four classes per power of two. */
export function sizeClass(bytes: number): number {
  if (bytes <= 4096) return Math.max(256, Math.ceil(bytes / 256) * 256);
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private pooled = 0;
  /** Released beyond the cap: destroyed after the next submit (recorded commands may still use them). */
  private retired: GPUBuffer[] = [];

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number): GpuStorage {
    const size = sizeClass(bytes);
    const buffer = this.free.get(size)?.pop();
    if (buffer) {
      this.pooled -= size;
      return { buffer, bytes, released: false };
    }
    return {
      buffer: this.device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST }),
      bytes,
      released: false,
    };
  }

  release(s: GpuStorage): void {
    s.released = true;
    const size = s.buffer.size;
    if (this.pooled + size > MAX_POOLED) {
      this.retired.push(s.buffer);
      return;
    }
    const list = this.free.get(size) ?? [];
    list.push(s.buffer);
    this.free.set(size, list);
    this.pooled += size;
  }

  /** Call after a submit: destroys the buffers released beyond the cap (destruction waits for submitted work). */
  afterSubmit(): void {
    for (const b of this.retired) b.destroy();
    this.retired = [];
  }

  /** Destroys every pooled buffer. */
  clear(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.pooled = 0;
  }
}
