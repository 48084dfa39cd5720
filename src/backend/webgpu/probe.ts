// Whether this machine has a hardware WebGPU adapter, found without letting the GPU stack talk to the user:
// `--backend auto` must not print driver warnings (Vulkan loader messages, Dawn's "artificially reduced" limits)
// on a machine where it ends up on the CPU anyway. In Node the adapter is looked for in a child process whose
// output is discarded, and only where a GPU device node exists (Linux: /dev/nvidia*, /dev/dri/renderD*, WSL's
// /dev/dxg; macOS and Windows always have one); in a browser navigator.gpu is asked directly (it prints nothing).

/** The script the child runs: prints {"description", "software"} of the adapter, or null. */
const PROBE = `
const [{ create }] = await Promise.all([import(process.argv[1])]);
const gpu = create([]);
const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
if (!adapter) { process.stdout.write("null"); process.exit(0); }
const i = adapter.info;
const description = [i.description, i.device, i.vendor, i.architecture].filter((s) => s).join(" ");
process.stdout.write(JSON.stringify({ description, fallback: i.isFallbackAdapter === true }));
process.exit(0);
`;

/** Software rasterizers, which are correct but slower than the CPU backend. */
export const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|warp|cpu/i;

async function gpuDeviceNodes(): Promise<boolean> {
  if (process.platform === "darwin" || process.platform === "win32") return true;
  const fs = await import("node:fs");
  const exists = (p: string) => {
    try {
      fs.accessSync(p);
      return true;
    } catch {
      return false;
    }
  };
  if (exists("/dev/nvidia0") || exists("/dev/dxg")) return true;
  try {
    return fs.readdirSync("/dev/dri").some((f) => f.startsWith("renderD"));
  } catch {
    return false;
  }
}

/** The description of a hardware adapter, or null when there is none (or only a software one). */
export async function probeHardwareAdapter(timeoutMs = 20_000): Promise<string | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) {
    const adapter = await nav.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return null;
    const i = adapter.info;
    const d = [i.description, i.device, i.vendor, i.architecture].filter((s) => s).join(" ");
    return SOFTWARE_ADAPTER.test(d) ? null : d;
  }
  if (typeof process === "undefined" || typeof process.versions?.node !== "string") return null;
  if (!(await gpuDeviceNodes())) return null;
  const { createRequire } = await import("node:module");
  const { spawnSync } = await import("node:child_process");
  const { pathToFileURL } = await import("node:url");
  let entry: string;
  try {
    entry = pathToFileURL(createRequire(import.meta.url).resolve("webgpu")).href;
  } catch {
    return null; // the optional dependency is not installed
  }
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", PROBE, entry], {
    encoding: "utf8",
    timeout: timeoutMs,
    stdio: ["ignore", "pipe", "ignore"],
  });
  if (r.status !== 0 || !r.stdout) return null;
  try {
    const found = JSON.parse(r.stdout) as { description: string; fallback: boolean } | null;
    if (!found || found.fallback || SOFTWARE_ADAPTER.test(found.description)) return null;
    return found.description;
  } catch {
    return null;
  }
}
