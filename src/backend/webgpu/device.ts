// WebGPU device setup: the browser's navigator.gpu, or in Node the `webgpu` package (Dawn: Vulkan, Metal, D3D12).
// Limits are requested explicitly (the adapter's maxima for what large tensors need); no adapter is a typed
// error that says what to install.

import { BackendError } from "../../errors.js";

/** What device setup found: the device, the adapter's description, and whether it is a software rasterizer. */
export interface GpuContext {
  device: GPUDevice;
  /**
   * The API object and adapter the device came from. Held for the device's lifetime: in Node, Dawn's instance is
   * owned by the `GPU` object, and a device whose instance was garbage-collected crashes the process.
   */
  gpu: GPU;
  adapter: GPUAdapter;
  /** e.g. "NVIDIA H100 80GB HBM3 (vulkan)" or "llvmpipe (LLVM 19.1.7, 256 bits) (vulkan)". */
  description: string;
  /** A CPU implementation of the API (llvmpipe, SwiftShader, WARP): correct but slow. */
  software: boolean;
}

export interface GpuOptions {
  /** Dawn toggles for Node, e.g. ["backend=vulkan"] (default: none; Dawn picks the platform's API). */
  dawnOptions?: string[];
  /** "high-performance" (default) prefers a discrete GPU where there are several. */
  powerPreference?: GPUPowerPreference;
}

/** Limits raised to the adapter's maximum: tensor size, workgroup memory, bindings per shader. */
const RAISED_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupsPerDimension",
] as const;

/** The API entry point, or null with the reason it is missing. */
async function gpuApi(opts: GpuOptions): Promise<{ gpu: GPU } | { reason: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu };
  const isNode = typeof process !== "undefined" && typeof process.versions?.node === "string";
  if (!isNode) return { reason: "this browser exposes no navigator.gpu (WebGPU disabled or unsupported)" };
  let mod: { create(options: string[]): GPU };
  try {
    const name = "webgpu"; // a variable: bundlers for the browser leave this Node-only import alone
    mod = (await import(name)) as { create(options: string[]): GPU };
  } catch (e) {
    return {
      reason:
        `the "webgpu" package (Dawn for Node, an optional dependency) did not load (${(e as Error).message}); ` +
        "install it with npm install webgpu",
    };
  }
  return { gpu: mod.create(opts.dawnOptions ?? []) };
}

function describeAdapter(adapter: GPUAdapter): { description: string; software: boolean } {
  const info = adapter.info;
  const parts = [info.description, info.device, info.vendor, info.architecture].filter((s) => s && s.length > 0);
  const description = parts.length > 0 ? parts.join(" ") : "unnamed adapter";
  const fallback = (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const software = fallback || /llvmpipe|lavapipe|swiftshader|software|warp|cpu/i.test(description);
  return { description, software };
}

/** Opens a device on the best adapter, or null with the reason (so `auto` can fall back and tests can skip). */
export async function openDevice(opts: GpuOptions = {}): Promise<GpuContext | { reason: string }> {
  const api = await gpuApi(opts);
  if (!("gpu" in api)) return api;
  const adapter = await api.gpu.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" });
  if (!adapter) {
    return {
      reason:
        "no WebGPU adapter: install a GPU driver with Vulkan (Linux), or Mesa's llvmpipe for a slow software " +
        "adapter (Debian bookworm-backports mesa-vulkan-drivers); in a browser, enable WebGPU",
    };
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredLimits });
  return { device, gpu: api.gpu, adapter, ...describeAdapter(adapter) };
}

/** openDevice, with "no adapter" as a BackendError a user can act on. */
export async function requireDevice(opts: GpuOptions = {}): Promise<GpuContext> {
  const r = await openDevice(opts);
  if ("reason" in r) throw new BackendError("backend.webgpu_unavailable", `--backend webgpu: ${r.reason}`);
  return r;
}
