// Atomic outputs: write into a temporary sibling, fsync, then rename over the destination, so an interrupted
// run never leaves a half-written file (or directory) that looks complete.

import * as fs from "node:fs";
import * as path from "node:path";

export function tempSibling(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${Date.now().toString(36)}`);
}

/** Writes `data` to `dest` atomically. */
export function writeFileAtomic(dest: string, data: string | Uint8Array): void {
  streamFileAtomic(dest, (append) => append(typeof data === "string" ? Buffer.from(data, "utf8") : data));
}

/**
 * Streams chunks to `dest` atomically: `write` receives a function that appends bytes.
 * The destination appears only after every chunk is written and synced.
 */
export function streamFileAtomic(dest: string, write: (append: (chunk: Uint8Array) => void) => void): void {
  const tmp = tempSibling(dest);
  try {
    const fd = fs.openSync(tmp, "w");
    try {
      write((chunk) => {
        let off = 0;
        while (off < chunk.byteLength) off += fs.writeSync(fd, chunk, off, chunk.byteLength - off);
      });
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, dest);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
