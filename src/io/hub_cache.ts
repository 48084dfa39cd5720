// Model locations: a directory, or a Hugging Face hub id ("org/name", "org/name@revision") found in the local
// Hugging Face cache — the layout huggingface_hub writes (HF_HUB_CACHE, else HF_HOME/hub, else
// ~/.cache/huggingface/hub): models--org--name/refs/<branch> holds a commit hash, snapshots/<commit>/ the files.
// Nothing is downloaded: a model absent from the cache is an error that names the command to fetch it.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError } from "../errors.js";

/** The hub cache directory as huggingface_hub resolves it from the environment. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return path.join(env.HF_HOME, "hub");
  const xdg = env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(xdg, "huggingface", "hub");
}

/** "org/name", "name", optionally "@revision": the shape of a hub repository id. */
const HUB_ID = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*(?:@[A-Za-z0-9._/-]+)?$/;

export function looksLikeHubId(s: string): boolean {
  return HUB_ID.test(s) && !s.startsWith(".") && !s.includes("..");
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The snapshot directory of hub id `id` in the cache, or an error saying how to download it. A revision may be
 * a branch or tag (refs/<rev>) or a commit hash (snapshots/<rev>); without one, refs/main.
 */
export function resolveHubModel(id: string, cache = hubCacheDir()): string {
  const [repo, revision] = id.split("@", 2);
  const repoDir = path.join(cache, `models--${repo.replace(/\//g, "--")}`);
  const download = `hf download ${repo}${revision ? ` --revision ${revision}` : ""} (huggingface_hub; older versions: huggingface-cli download ${repo})`;
  if (!isDir(repoDir)) {
    throw new ConfigError(
      "model.not_found",
      `"${id}" is neither a directory nor in the Hugging Face cache (${cache}); download it with: ${download}, or give the model's directory`,
    );
  }
  const rev = revision ?? "main";
  let commit = rev;
  const ref = path.join(repoDir, "refs", rev);
  if (fs.existsSync(ref)) commit = fs.readFileSync(ref, "utf8").trim();
  const snapshot = path.join(repoDir, "snapshots", commit);
  if (isDir(snapshot)) return snapshot;
  if (revision === undefined) {
    // no refs/main (e.g. a download of a single revision): the one snapshot there is, if it is the only one
    const snaps = isDir(path.join(repoDir, "snapshots")) ? fs.readdirSync(path.join(repoDir, "snapshots")) : [];
    if (snaps.length === 1) return path.join(repoDir, "snapshots", snaps[0]);
    if (snaps.length > 1) {
      throw new ConfigError(
        "model.ambiguous_revision",
        `"${id}" has ${snaps.length} snapshots in ${repoDir} and no refs/main; name one as ${repo}@<revision> (${snaps.join(", ")})`,
      );
    }
  }
  throw new ConfigError(
    "model.not_found",
    `"${id}": revision ${rev} is not in the Hugging Face cache (${repoDir}); download it with: ${download}`,
  );
}

/**
 * Where the model named by `arg` lives: `arg` itself when it exists (it must be a directory), else the cached
 * snapshot of the hub id `arg`. `flagName` is for messages ("--model").
 */
export function resolveModelPath(arg: string, flagName = "--model"): string {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(arg);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") {
      throw new ConfigError("model.unreadable", `${flagName} ${arg}: cannot read it (${code})`);
    }
  }
  if (st) {
    if (st.isDirectory()) return arg;
    throw new ConfigError(
      "model.not_directory",
      `${flagName} ${arg} is a file; give the model's directory (config.json, *.safetensors, tokenizer.json)`,
    );
  }
  if (looksLikeHubId(arg)) return resolveHubModel(arg);
  throw new ConfigError("model.not_found", `${flagName} ${arg}: no such directory`);
}
