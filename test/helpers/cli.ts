// Runs the built command line (dist/cli/main.js, built by `npm test`) as a user would.

import { spawnSync } from "node:child_process";
import * as path from "node:path";

export const ROOT = path.resolve(__dirname, "../..");
export const CLI = path.join(ROOT, "dist/cli/main.js");
export const EXAMPLE = path.join(ROOT, "examples/stories260K");
export const TEXT = path.join(ROOT, "examples/data/tinystories-excerpt.txt");

export function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
