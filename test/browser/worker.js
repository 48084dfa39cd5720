// A module Web Worker that runs the checks (a worker may block in Atomics.wait, so the fast tier can use threads).
import { runChecks } from "./checks.js";

self.onmessage = async (e) => {
  try {
    self.postMessage(await runChecks(e.data.threads));
  } catch (err) {
    self.postMessage({ error: String(err?.stack ?? err) });
  }
};
