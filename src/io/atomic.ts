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

/**
 * Builds the directory `dest` atomically: `fill` writes into a temporary sibling, which is renamed into place only
 * when `fill` returns; on any failure nothing appears (and the temporary is removed). `dest` must be absent or empty.
 */
export async function writeDirAtomic(dest: string, fill: (dir: string) => void | Promise<void>): Promise<void> {
  const tmp = path.join(path.dirname(path.resolve(dest)), `.${path.basename(dest)}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    await fill(tmp);
    if (fs.existsSync(dest)) fs.rmdirSync(dest); // fails unless empty
    fs.renameSync(tmp, dest);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
