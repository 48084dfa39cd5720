// Atomic outputs: write into a temporary sibling, fsync, then rename over the destination, so an interrupted
// run never leaves a half-written file (or directory) that looks complete.

import * as fs from "node:fs";
import * as path from "node:path";
import { OutputError } from "../errors.js";

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

/** Temporaries this module makes: `.<name>.tmp-<pid>` (directories) and `.<name>.tmp-<pid>-<time>` (files). */
const TEMP_NAME = /^\.(.+)\.tmp-(\d+)(?:-[0-9a-z]+)?$/;

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/**
 * Removes the temporaries that processes no longer running left in `dir` for the output `name` (a run killed
 * during its final write); returns the paths removed. Temporaries of live processes are left alone.
 */
export function removeStaleTemporaries(dir: string, name: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const e of entries) {
    const m = TEMP_NAME.exec(e);
    if (!m || m[1] !== name || alive(Number(m[2]))) continue;
    const p = path.join(dir, e);
    fs.rmSync(p, { recursive: true, force: true });
    removed.push(p);
  }
  return removed;
}

function fail(msg: string): never {
  throw new OutputError("output.location", msg);
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

export interface OutputLocation {
  /** Where to write: the path given, or the directory it links to. */
  dir: string;
  /** Stale temporaries of dead runs that were removed. */
  removed: string[];
}

/**
 * Checks, before any work, that a directory can be written at `out`: absent (its parent directories are created),
 * or an empty directory. A symbolic link is followed deliberately: to an empty directory it is written there (the
 * link stays); a dangling link or a link to a file is refused. The parent must be writable (probed by creating a
 * file). Stale temporaries of killed runs for this output are removed. Typed errors only.
 */
export function checkOutputDir(out: string): OutputLocation {
  let target = path.resolve(out);
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(target);
  } catch (e) {
    if (errno(e) === "ENOTDIR") {
      // some ancestor is a file
      let a = path.dirname(target);
      while (a !== path.dirname(a) && !fs.existsSync(a)) a = path.dirname(a);
      fail(`--out ${out}: ${a} is a file, so nothing can be written under it`);
    }
    if (errno(e) !== "ENOENT") fail(`--out ${out}: cannot use it (${errno(e)})`);
  }
  if (st?.isSymbolicLink()) {
    let real: string;
    try {
      real = fs.realpathSync(target);
    } catch {
      fail(
        `--out ${out} is a symbolic link to ${fs.readlinkSync(target)}, which does not exist; remove the link or create its target`,
      );
    }
    target = real;
    st = fs.statSync(real);
    if (!st.isDirectory()) fail(`--out ${out} is a symbolic link to ${real}, which is not a directory`);
  }
  if (st) {
    if (!st.isDirectory()) fail(`--out ${out} exists and is not a directory`);
    if (fs.readdirSync(target).length > 0) fail(`--out ${out} is not empty; choose a new path or empty it`);
  }
  const parent = path.dirname(target);
  // the nearest existing ancestor must be a directory
  let a = parent;
  while (!fs.existsSync(a) && a !== path.dirname(a)) a = path.dirname(a);
  if (!fs.statSync(a).isDirectory()) fail(`--out ${out}: ${a} is a file, so nothing can be written under it`);
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (e) {
    fail(`--out ${out}: cannot create ${parent} (${errno(e)})`);
  }
  const probe = path.join(parent, `.${path.basename(target)}.tmp-${process.pid}-probe`);
  try {
    fs.writeFileSync(probe, "");
    fs.rmSync(probe, { force: true });
  } catch (e) {
    fail(`--out ${out}: cannot write in ${parent} (${errno(e)})`);
  }
  const removed = removeStaleTemporaries(parent, path.basename(target));
  return { dir: target, removed };
}

/** A run's work directory (OUT.work): absent or a directory, else an error before any work. */
export function checkWorkDir(work: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(work);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) {
    try {
      st = fs.statSync(work);
    } catch {
      fail(`${work} (the run's work directory) is a dangling symbolic link; remove it`);
    }
  }
  if (!st.isDirectory())
    fail(`${work} (the run's work directory) exists and is not a directory; remove it or choose another --out`);
}
