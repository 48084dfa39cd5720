// The WebGPU backend: every op of the contract as a WGSL compute shader (shaders/<op>.wgsl), in Node through Dawn
// and in browsers. Tensors live in GPU buffers from a size-class pool; ops are recorded and submitted in batches
// (one command buffer per flush: uploads, dispatches and copies in call order), and `read` maps a copy.
// Validated against the CPU reference by the same backend suite (test/backend).

import { BackendError } from "../../errors.js";
import { formatShape, numel, type Shape } from "../../tensor/shape.js";
import type {
  AdamWParams,
  AttentionParams,
  Backend,
  CodebookLayout,
  DeviceDType,
  MatmulOptions,
  OpName,
  RopeParams,
  RtnLayout,
  Tensor,
} from "../backend.js";
import {
  checkAdamw,
  checkAttention,
  checkAttentionBackward,
  checkBroadcast,
  checkCodebookGrad,
  checkCodebookLinear,
  checkCodebookShapes,
  checkCodeRange,
  checkCrossEntropy,
  checkEmbedding,
  checkEmbeddingBackward,
  checkKlDiv,
  checkKmeansAssign,
  checkKmeansUpdate,
  checkLinear,
  checkMatmul,
  checkMse,
  checkNarrow,
  checkReshape,
  checkRmsNorm,
  checkRope,
  checkRtn,
  checkSiluMul,
  checkSiluMulBackward,
  checkTokenIds,
  checkUpload,
  checkWriteRows,
  type IntRange,
  intRange,
  last,
  rows,
} from "../checks.js";
import type { AttentionShape } from "../cpu/attention.js";
import { type GpuContext, type GpuOptions, openDevice, requireDevice } from "./device.js";
import { BufferPool, type GpuStorage } from "./pool.js";
import { type ShaderName, WGSL } from "./wgsl.js";

// GPUBufferUsage / GPUMapMode values (the globals exist in browsers but not in Node)
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_READ = 0x1;
/** Uniform parameter slots are this far apart in the batch's parameter buffer (≥ any minUniformBufferOffsetAlignment). */
const PARAM_SLOT = 256;
/** A batch is submitted once it holds this many commands or this many bytes of uploads. */
const MAX_BATCH_COMMANDS = 512;
const MAX_BATCH_UPLOAD = 64 << 20;
/** Threads per workgroup of the elementwise shaders, and the grid's per-dimension limit. */
const WG = 256;
const MAX_GROUPS = 65535;
/** Products with at most this many rows (a decode step's linears) run as matrix–vector products (matvec.wgsl). */
const MATVEC_ROWS = 4;

export class GpuTensor implements Tensor {
  readonly shape: Shape;
  constructor(
    readonly storage: GpuStorage,
    shape: Shape,
    readonly dtype: DeviceDType,
    /** The range of an uploaded i32 tensor's values, to check ids and codes on the host (null: made on the GPU). */
    readonly range: IntRange | null = null,
  ) {
    this.shape = [...shape];
  }
}

type Binding = [binding: number, t: GpuStorage];

type Command =
  | {
      kind: "dispatch";
      pipeline: GPUComputePipeline;
      bindings: Binding[];
      params: ArrayBuffer;
      groups: [number, number, number];
    }
  | { kind: "copy"; src: GpuStorage; srcOffset: number; dst: GpuStorage; dstOffset: number; bytes: number }
  | { kind: "clear"; dst: GpuStorage }
  | { kind: "upload"; dst: GpuStorage; data: Uint8Array };

/** Shader constants prepended to a shader's source (array sizes and specializations WGSL needs at compile time). */
type Consts = Record<string, number | boolean>;

/**
 * Which files a shader's source is made of: reduce.wgsl (and row_lse.wgsl) for row reductions, matmul_tiles.wgsl
 * for the tiled products, matmul.wgsl's dense operands for matvec, fixed_sum.wgsl for order-independent
 * scatter-adds.
 */
const SOURCES: Partial<Record<ShaderName, ShaderName[]>> = {
  rms_norm: ["rms_norm", "reduce"],
  rms_norm_backward: ["rms_norm_backward", "reduce"],
  softmax: ["softmax", "row_lse", "reduce"],
  log_softmax: ["log_softmax", "row_lse", "reduce"],
  cross_entropy: ["cross_entropy", "row_lse", "reduce"],
  cross_entropy_backward: ["cross_entropy_backward", "row_lse", "reduce"],
  kl_div: ["kl_div", "reduce"],
  mse: ["mse", "reduce"],
  attention: ["attention", "reduce"],
  attention_backward: ["attention_backward", "reduce"],
  matmul: ["matmul", "matmul_tiles"],
  matvec: ["matvec", "matmul"],
  kmeans_update: ["kmeans_update", "fixed_sum"],
  codebook_grad: ["codebook_grad", "fixed_sum"],
  codebook_linear: ["codebook_linear", "matmul_tiles"],
};

export interface WebGpuBackendOptions extends GpuOptions {}

export class WebGpuBackend implements Backend {
  readonly name = "webgpu";
  private readonly device: GPUDevice;
  private readonly pool: BufferPool;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private pending: Command[] = [];
  /** kl_div's mask binding when there is no mask. */
  private noMask: Tensor | null = null;
  private pendingUpload = 0;
  /** The first GPU error since the last read (reported by that read), and a lost device (reported by every read). */
  private error: string | null = null;
  private lost: string | null = null;
  /** A 16-byte zero buffer bound where an op has no bias. */
  private readonly noBias: GpuStorage;

  private constructor(private readonly ctx: GpuContext) {
    this.device = ctx.device;
    this.pool = new BufferPool(ctx.device);
    this.device.addEventListener("uncapturederror", (ev) => {
      this.error ??= (ev as GPUUncapturedErrorEvent).error.message;
    });
    void this.device.lost.then((info) => {
      this.lost = `device lost (${info.reason}): ${info.message}`;
    });
    this.noBias = this.pool.acquire(16);
    this.pending.push({ kind: "clear", dst: this.noBias });
  }

  /** A backend on the best adapter; throws a BackendError that says what to install when there is none. */
  static async create(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    return new WebGpuBackend(await requireDevice(opts));
  }

  /** A backend, or the reason there is none (for `auto` and for tests that must say why they skip). */
  static async tryCreate(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend | { reason: string }> {
    const r = await openDevice(opts);
    return "reason" in r ? r : new WebGpuBackend(r);
  }

  /** The adapter, e.g. "WebGPU on NVIDIA H100 80GB HBM3". */
  describe(): string {
    return `WebGPU on ${this.ctx.description}${this.ctx.software ? " (software)" : ""}`;
  }

  /** Whether the adapter is a CPU implementation of WebGPU (llvmpipe, SwiftShader): correct but slow. */
  get software(): boolean {
    return this.ctx.software;
  }

  /** Submits what is recorded and waits until the GPU has finished it (for timing; reads wait by themselves). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfFailed();
  }

  /** Waits for all submitted work and frees the device (the backend cannot be used afterwards). */
  async destroy(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.pool.clear();
    this.device.destroy();
  }

  supports(_op: OpName): boolean {
    return true;
  }

  // --- tensors --------------------------------------------------------------------------------------------

  private tensor(shape: Shape, dtype: DeviceDType = "f32", range: IntRange | null = null): GpuTensor {
    const bytes = numel(shape) * 4;
    const max = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > max) {
      throw new BackendError(
        "backend.too_large",
        `webgpu: a tensor of ${formatShape(shape)} (${bytes} bytes) exceeds this adapter's largest buffer binding ` +
          `(${max} bytes); use --backend cpu for this model`,
      );
    }
    return new GpuTensor(this.pool.acquire(bytes), shape, dtype, range);
  }

  private own(t: Tensor, what: string, dtype: DeviceDType = "f32"): GpuTensor {
    if (!(t instanceof GpuTensor)) throw new BackendError("backend.foreign", `${what}: tensor is not from webgpu`);
    if (t.storage.released) throw new BackendError("backend.disposed", `${what}: tensor was disposed`);
    if (t.dtype !== dtype) throw new BackendError("backend.dtype", `${what}: expected an ${dtype} tensor`);
    return t;
  }

  private record(c: Command): void {
    this.pending.push(c);
    if (c.kind === "upload") this.pendingUpload += c.data.byteLength;
    if (this.pending.length >= MAX_BATCH_COMMANDS || this.pendingUpload >= MAX_BATCH_UPLOAD) this.flush();
  }

  upload(data: Float32Array, shape: Shape): Tensor {
    checkUpload(data, shape);
    const t = this.tensor(shape);
    // copied now: the caller may reuse its array before the batch is submitted
    this.record({
      kind: "upload",
      dst: t.storage,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
    });
    return t;
  }

  assign(t: Tensor, data: Float32Array): void {
    const g = this.own(t, "assign target");
    if (numel(t.shape) !== data.length)
      throw new BackendError("backend.shape", `assign: ${data.length} values for a tensor of ${numel(t.shape)}`);
    this.record({
      kind: "upload",
      dst: g.storage,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
    });
  }

  uploadInt(data: Int32Array, shape: Shape): Tensor {
    checkUpload(data, shape);
    const copy = data.slice(); // the caller may reuse its array before the batch is submitted
    const t = this.tensor(shape, "i32", intRange(copy));
    this.record({ kind: "upload", dst: t.storage, data: new Uint8Array(copy.buffer) });
    return t;
  }

  zeros(shape: Shape): Tensor {
    const t = this.tensor(shape);
    this.record({ kind: "clear", dst: t.storage });
    return t;
  }

  async read(t: Tensor): Promise<Float32Array> {
    const g = this.own(t, "read");
    return new Float32Array(await this.readBytes(g));
  }

  async readInt(t: Tensor): Promise<Int32Array> {
    const g = this.own(t, "readInt", "i32");
    return new Int32Array(await this.readBytes(g));
  }

  private async readBytes(t: GpuTensor): Promise<ArrayBuffer> {
    const bytes = numel(t.shape) * 4;
    const staging = this.device.createBuffer({ size: Math.max(4, bytes), usage: USAGE.MAP_READ | USAGE.COPY_DST });
    if (bytes > 0)
      this.pending.push({
        kind: "copy",
        src: t.storage,
        srcOffset: 0,
        dst: { buffer: staging, bytes, released: false },
        dstOffset: 0,
        bytes,
      });
    this.flush();
    await staging.mapAsync(MAP_READ);
    const out = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    staging.destroy();
    this.throwIfFailed();
    return out;
  }

  private throwIfFailed(): void {
    if (this.lost !== null) throw new BackendError("backend.webgpu_lost", `webgpu: ${this.lost}`);
    const error = this.error;
    this.error = null; // reported once: work submitted after the failed batch is valid again
    if (error !== null) throw new BackendError("backend.webgpu", `webgpu: ${error}`);
  }

  dispose(t: Tensor): void {
    if (t instanceof GpuTensor && !t.storage.released) this.pool.release(t.storage);
  }

  reshape(t: Tensor, shape: Shape): Tensor {
    checkReshape(t, shape);
    const g = this.own(t, "reshape", t.dtype);
    return new GpuTensor(g.storage, shape, g.dtype, g.range);
  }

  // --- recording and submitting -----------------------------------------------------------------------------

  private pipeline(shader: ShaderName, entry: string, consts: Consts = {}): GPUComputePipeline {
    const constLines = Object.entries(consts)
      .map(([k, v]) => (typeof v === "boolean" ? `const ${k}: bool = ${v};` : `const ${k}: u32 = ${v}u;`))
      .join("\n");
    const key = `${shader}:${entry}:${constLines}`;
    let p = this.pipelines.get(key);
    if (!p) {
      const code = [constLines, ...(SOURCES[shader] ?? [shader]).map((s) => WGSL[s])].join("\n");
      const module = this.device.createShaderModule({ label: shader, code });
      p = this.device.createComputePipeline({
        label: `${shader}.${entry}`,
        layout: "auto",
        compute: { module, entryPoint: entry },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Records one dispatch. `types` gives each parameter's WGSL type in struct order: u = u32, f = f32. */
  private dispatch(
    shader: ShaderName,
    entry: string,
    consts: Consts,
    bindings: Binding[],
    types: string,
    values: number[],
    groups: [number, number, number],
  ): void {
    const params = new ArrayBuffer(Math.ceil((types.length * 4) / 16) * 16);
    const view = new DataView(params);
    for (let i = 0; i < types.length; i++) {
      if (types[i] === "u") view.setUint32(i * 4, values[i], true);
      else view.setFloat32(i * 4, values[i], true);
    }
    if (groups[0] === 0 || groups[1] === 0) return; // nothing to compute
    this.record({ kind: "dispatch", pipeline: this.pipeline(shader, entry, consts), bindings, params, groups });
  }

  /** A 2-D grid of `count` workgroups (at most 65535 along each dimension). */
  private grid(count: number): [number, number, number] {
    const x = Math.min(count, MAX_GROUPS);
    const y = Math.ceil(count / Math.max(x, 1));
    if (y > MAX_GROUPS)
      throw new BackendError("backend.too_large", `webgpu: a grid of ${count} workgroups is too large`);
    return [x, y, 1];
  }

  /** Submits everything recorded so far as one command buffer. */
  flush(): void {
    const cmds = this.pending;
    if (cmds.length === 0) return;
    this.pending = [];
    this.pendingUpload = 0;
    const dev = this.device;
    const temps: GPUBuffer[] = [];
    // every upload of the batch goes through one staging buffer, every parameter block through one uniform buffer
    let uploadBytes = 0;
    let dispatches = 0;
    for (const c of cmds) {
      if (c.kind === "upload") uploadBytes += Math.ceil(c.data.byteLength / 4) * 4;
      if (c.kind === "dispatch") dispatches++;
    }
    let staging: GPUBuffer | null = null;
    if (uploadBytes > 0) {
      staging = dev.createBuffer({ size: uploadBytes, usage: USAGE.COPY_SRC, mappedAtCreation: true });
      const bytes = new Uint8Array(staging.getMappedRange());
      let o = 0;
      for (const c of cmds) {
        if (c.kind !== "upload") continue;
        bytes.set(c.data, o);
        o += Math.ceil(c.data.byteLength / 4) * 4;
      }
      staging.unmap();
      temps.push(staging);
    }
    let uniforms: GPUBuffer | null = null;
    if (dispatches > 0) {
      uniforms = dev.createBuffer({ size: dispatches * PARAM_SLOT, usage: USAGE.UNIFORM, mappedAtCreation: true });
      const bytes = new Uint8Array(uniforms.getMappedRange());
      let i = 0;
      for (const c of cmds) if (c.kind === "dispatch") bytes.set(new Uint8Array(c.params), PARAM_SLOT * i++);
      uniforms.unmap();
      temps.push(uniforms);
    }
    const enc = dev.createCommandEncoder();
    let pass: GPUComputePassEncoder | null = null;
    let uploadAt = 0;
    let slot = 0;
    for (const c of cmds) {
      if (c.kind !== "dispatch" && pass) {
        pass.end();
        pass = null;
      }
      switch (c.kind) {
        case "dispatch": {
          pass ??= enc.beginComputePass();
          const entries: GPUBindGroupEntry[] = [
            { binding: 0, resource: { buffer: uniforms!, offset: PARAM_SLOT * slot++, size: c.params.byteLength } },
          ];
          for (const [binding, s] of c.bindings)
            entries.push({ binding, resource: { buffer: s.buffer, size: Math.max(4, s.bytes) } });
          pass.setPipeline(c.pipeline);
          pass.setBindGroup(0, dev.createBindGroup({ layout: c.pipeline.getBindGroupLayout(0), entries }));
          pass.dispatchWorkgroups(...c.groups);
          break;
        }
        case "copy":
          enc.copyBufferToBuffer(c.src.buffer, c.srcOffset, c.dst.buffer, c.dstOffset, c.bytes);
          break;
        case "clear":
          enc.clearBuffer(c.dst.buffer, 0, c.dst.buffer.size);
          break;
        case "upload": {
          const n = Math.ceil(c.data.byteLength / 4) * 4;
          if (n > 0) enc.copyBufferToBuffer(staging!, uploadAt, c.dst.buffer, 0, n);
          uploadAt += n;
          break;
        }
      }
    }
    pass?.end();
    dev.queue.submit([enc.finish()]);
    for (const b of temps) b.destroy(); // destruction waits for the submitted work
    this.pool.afterSubmit();
  }

  // --- ops ------------------------------------------------------------------------------------------------

  /** Elementwise shaders: one thread per element of n. */
  private elementwise(shader: ShaderName, bindings: Binding[], n: number, types = "u", values: number[] = [n]): void {
    this.dispatch(shader, "main", {}, bindings, types, values, this.grid(Math.ceil(n / WG)));
  }

  /**
   * The entry points of one shader in order, each with one thread per element of its n and the bindings it uses
   * (a layout "auto" holds only those): the passes of the fixed-point scatter-adds.
   */
  private passes(
    shader: ShaderName,
    bindings: Binding[],
    types: string,
    values: number[],
    passes: [entry: string, n: number, bound: number[]][],
  ): void {
    for (const [entry, n, bound] of passes) {
      const b = bindings.filter(([i]) => bound.includes(i));
      this.dispatch(shader, entry, {}, b, types, values, this.grid(Math.ceil(n / WG)));
    }
  }

  /** The tile shape of a product with M rows and N columns: big tiles for big products, narrow ones for few rows. */
  private tiles(M: number, N: number): Consts {
    if (M >= 128 && N >= 128) return { TM: 8, TN: 8, BK: 8 };
    if (M >= 32) return { TM: 4, TN: 4, BK: 16 };
    return { TM: 1, TN: 4, BK: 16 };
  }

  private product(
    shader: "matmul" | "codebook_linear",
    consts: Consts,
    bindings: Binding[],
    types: string,
    values: number[],
    M: number,
    N: number,
  ): void {
    const BM = 16 * Number(consts.TM);
    const BN = 16 * Number(consts.TN);
    const groups: [number, number, number] = [Math.ceil(N / BN), Math.ceil(M / BM), 1];
    if (groups[0] > MAX_GROUPS || groups[1] > MAX_GROUPS)
      throw new BackendError("backend.too_large", `webgpu: a product of ${M}×${N} outputs is too large`);
    this.dispatch(shader, "main", consts, bindings, types, values, groups);
  }

  private gemm(
    a: GpuStorage,
    b: GpuStorage,
    bias: GpuStorage | null,
    M: number,
    K: number,
    N: number,
    tA: boolean,
    tB: boolean,
    shape: Shape,
  ): Tensor {
    const out = this.tensor(shape);
    if (M <= MATVEC_ROWS) {
      const bindings: Binding[] = [
        [1, a],
        [2, b],
        [3, bias ?? this.noBias],
        [4, out.storage],
      ];
      const consts = { MV: MATVEC_ROWS, TRANS_A: tA, TRANS_B: tB, HAS_BIAS: bias !== null };
      if (tB) this.dispatch("matvec", "rows", consts, bindings, "uuu", [M, K, N], this.grid(N));
      else this.dispatch("matvec", "cols", consts, bindings, "uuu", [M, K, N], this.grid(Math.ceil(N / 64)));
      return out;
    }
    const consts = {
      ...this.tiles(M, N),
      TRANS_A: tA,
      TRANS_B: tB,
      A_K_CONTIGUOUS: !tA,
      B_K_CONTIGUOUS: tB,
      HAS_BIAS: bias !== null,
    };
    const bindings: Binding[] = [
      [1, a],
      [2, b],
      [3, bias ?? this.noBias],
      [4, out.storage],
    ];
    this.product("matmul", consts, bindings, "uuu", [M, K, N], M, N);
    return out;
  }

  matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
    const { M, K, N } = checkMatmul(a, b, opts);
    const ga = this.own(a, "matmul a");
    const gb = this.own(b, "matmul b");
    return this.gemm(ga.storage, gb.storage, null, M, K, N, opts.transposeA ?? false, opts.transposeB ?? false, [M, N]);
  }

  linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    const { M, K, N } = checkLinear(x, weight, bias);
    const gx = this.own(x, "linear x");
    const gw = this.own(weight, "linear weight");
    const gb = bias && this.own(bias, "linear bias");
    return this.gemm(gx.storage, gw.storage, gb?.storage ?? null, M, K, N, false, true, [...x.shape.slice(0, -1), N]);
  }

  /**
   * Checks codes against the layout (and their range where it is known: uploaded codes); returns them and the
   * number of codebook parts m.
   */
  private codes(op: string, codes: Tensor, l: CodebookLayout, codebooks?: Tensor): { c: GpuTensor; m: number } {
    const m = checkCodebookShapes(op, codes, l, codebooks);
    const c = this.own(codes, `${op} codes`, "i32");
    if (c.range) checkCodeRange(op, c.range, l.K);
    return { c, m };
  }

  codebook_linear(x: Tensor, codes: Tensor, codebooks: Tensor, bias: Tensor | null, l: CodebookLayout): Tensor {
    checkCodebookLinear(x, bias, l);
    const { c } = this.codes("codebook_linear", codes, l, codebooks);
    const gx = this.own(x, "codebook_linear x");
    const books = this.own(codebooks, "codebook_linear codebooks");
    const gb = bias ? this.own(bias, "codebook_linear bias").storage : null;
    const M = rows(x);
    const y = this.tensor([...x.shape.slice(0, -1), l.out]);
    const values = [M, l.in, l.out, l.nb, l.K, l.d, l.partCols, 0, 0];
    const types = "uuuuuuuuu";
    if (M <= 4 && l.d <= 16) {
      // vector shape: slices of 64 inputs per workgroup row, then the slices' sums
      const sliceLen = 64;
      const slices = Math.max(1, Math.ceil(l.in / sliceLen));
      values[7] = slices;
      values[8] = sliceLen;
      const consts = {
        VM: M,
        D: l.d,
        TM: 1,
        TN: 1,
        BK: 1,
        A_K_CONTIGUOUS: true,
        B_K_CONTIGUOUS: false,
        HAS_BIAS: gb !== null,
      };
      const partial = this.pool.acquire(slices * M * l.out * 4);
      this.dispatch(
        "codebook_linear",
        "vector_partial",
        consts,
        [
          [1, gx.storage],
          [2, c.storage],
          [3, books.storage],
          [6, partial],
        ],
        types,
        values,
        [Math.ceil(l.nb / 64), slices, 1],
      );
      this.dispatch(
        "codebook_linear",
        "vector_reduce",
        consts,
        [
          [4, gb ?? this.noBias],
          [5, y.storage],
          [7, partial],
        ],
        types,
        values,
        [Math.ceil((M * l.out) / WG), 1, 1],
      );
      this.pool.release(partial);
    } else {
      const consts = {
        ...this.tiles(M, l.out),
        VM: 1,
        D: 1,
        A_K_CONTIGUOUS: true,
        B_K_CONTIGUOUS: false,
        HAS_BIAS: gb !== null,
      };
      const bindings: Binding[] = [
        [1, gx.storage],
        [2, c.storage],
        [3, books.storage],
        [4, gb ?? this.noBias],
        [5, y.storage],
      ];
      this.product("codebook_linear", consts, bindings, types, values, M, l.out);
    }
    return y;
  }

  add(a: Tensor, b: Tensor): Tensor {
    return this.broadcast("add", a, b);
  }

  mul(a: Tensor, b: Tensor): Tensor {
    return this.broadcast("mul", a, b);
  }

  /** add and mul: a ∘ b with b broadcast as checkBroadcast allows. */
  private broadcast(op: "add" | "mul", a: Tensor, b: Tensor): Tensor {
    const { n, div, modulus } = checkBroadcast(op, a, b);
    const out = this.tensor(a.shape);
    this.elementwise(
      op,
      [
        [1, this.own(a, `${op} a`).storage],
        [2, this.own(b, `${op} b`).storage],
        [3, out.storage],
      ],
      n,
      "uuu",
      [n, div, modulus],
    );
    return out;
  }

  rms_norm(x: Tensor, weight: Tensor, eps: number): Tensor {
    const C = checkRmsNorm("rms_norm", x, weight);
    const out = this.tensor(x.shape);
    const R = rows(x);
    const b: Binding[] = [
      [1, this.own(x, "rms_norm x").storage],
      [2, this.own(weight, "rms_norm weight").storage],
      [3, out.storage],
    ];
    this.dispatch("rms_norm", "main", {}, b, "uuf", [R, C, eps], this.grid(R));
    return out;
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor, p: RopeParams): Tensor {
    const { B, T } = checkRope(x, cos, p);
    const out = this.tensor(x.shape);
    const half = p.headDim / 2;
    const b: Binding[] = [
      [1, this.own(x, "rope x").storage],
      [2, this.own(cos, "rope cos").storage],
      [3, this.own(sin, "rope sin").storage],
      [4, out.storage],
    ];
    const n = B * T * p.numHeads * half;
    this.elementwise("rope", b, n, "uuuuuf", [B * T, T, p.numHeads, half, p.startPos, p.inverse ? -1 : 1]);
    return out;
  }

  private attentionParams(s: AttentionShape): number[] {
    if (s.D > 256) throw new BackendError("backend.unsupported", `webgpu attention: head dim ${s.D} > 256`);
    return [s.B, s.T, s.S, s.H, s.Hkv, s.D, s.kvLength, s.queryOffset, s.slidingWindow ?? 0, 1 / Math.sqrt(s.D)];
  }

  attention(q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): Tensor {
    const s = checkAttention("attention", q, k, v, p);
    const out = this.tensor(q.shape);
    const b: Binding[] = [
      [1, this.own(q, "attention q").storage],
      [2, this.own(k, "attention k").storage],
      [3, this.own(v, "attention v").storage],
      [4, out.storage],
    ];
    this.dispatch("attention", "main", {}, b, "uuuuuuuuuf", this.attentionParams(s), this.grid(s.B * s.T * s.H));
    return out;
  }

  silu_mul(gate: Tensor, up: Tensor): Tensor {
    checkSiluMul(gate, up);
    const out = this.tensor(gate.shape);
    const b: Binding[] = [
      [1, this.own(gate, "silu_mul gate").storage],
      [2, this.own(up, "silu_mul up").storage],
      [3, out.storage],
    ];
    this.elementwise("silu_mul", b, numel(gate.shape));
    return out;
  }

  embedding(ids: Tensor, table: Tensor): Tensor {
    const { V, C } = checkEmbedding(table);
    const gi = this.own(ids, "embedding ids", "i32");
    if (gi.range) checkTokenIds("embedding", gi.range, V, false);
    const out = this.tensor([...ids.shape, C]);
    const n = numel(ids.shape) * C;
    this.elementwise(
      "embedding",
      [
        [1, gi.storage],
        [2, this.own(table, "embedding table").storage],
        [3, out.storage],
      ],
      n,
      "uu",
      [n, C],
    );
    return out;
  }

  private rowwise(shader: "softmax" | "log_softmax", x: Tensor): Tensor {
    const out = this.tensor(x.shape);
    const R = rows(x);
    this.dispatch(
      shader,
      "main",
      {},
      [
        [1, this.own(x, `${shader} x`).storage],
        [2, out.storage],
      ],
      "uu",
      [R, last(x.shape)],
      this.grid(R),
    );
    return out;
  }

  softmax(x: Tensor): Tensor {
    return this.rowwise("softmax", x);
  }

  log_softmax(x: Tensor): Tensor {
    return this.rowwise("log_softmax", x);
  }

  cross_entropy(logits: Tensor, targets: Tensor): Tensor {
    const { V, R } = checkCrossEntropy(logits, targets);
    const gt = this.own(targets, "cross_entropy targets", "i32");
    if (gt.range) checkTokenIds("cross_entropy", gt.range, V, true);
    const out = this.tensor(targets.shape);
    const b: Binding[] = [
      [1, this.own(logits, "cross_entropy logits").storage],
      [2, gt.storage],
      [3, out.storage],
    ];
    this.dispatch("cross_entropy", "main", {}, b, "uu", [R, V], this.grid(R));
    return out;
  }

  write_rows(dst: Tensor, src: Tensor, offset: number): void {
    const { B, cap, T } = checkWriteRows(dst, src, offset);
    const C = last(dst.shape);
    const d = this.own(dst, "write_rows dst").storage;
    const s = this.own(src, "write_rows src").storage;
    const bytes = T * C * 4;
    if (bytes === 0) return;
    for (let b = 0; b < B; b++)
      this.record({ kind: "copy", src: s, srcOffset: b * bytes, dst: d, dstOffset: (b * cap + offset) * C * 4, bytes });
  }

  narrow(x: Tensor, start: number, length: number): Tensor {
    checkNarrow(x, start, length);
    const [B, T, C] = x.shape;
    const s = this.own(x, "narrow x").storage;
    const out = this.tensor([B, length, C]);
    const bytes = length * C * 4;
    if (bytes > 0)
      for (let b = 0; b < B; b++)
        this.record({
          kind: "copy",
          src: s,
          srcOffset: (b * T + start) * C * 4,
          dst: out.storage,
          dstOffset: b * bytes,
          bytes,
        });
    return out;
  }

  kmeans_assign(x: Tensor, centroids: Tensor): { codes: Tensor; distances: Tensor } {
    const { N, d, K } = checkKmeansAssign(x, centroids);
    if (d > 256) throw new BackendError("backend.unsupported", `webgpu kmeans_assign: vector length ${d} > 256`);
    const codes = this.tensor([N], "i32");
    const distances = this.tensor([N]);
    const VPT = d <= 8 ? 4 : d <= 16 ? 2 : 1;
    const TILE = Math.max(1, Math.min(256, Math.floor(2048 / d)));
    const b: Binding[] = [
      [1, this.own(x, "kmeans_assign x").storage],
      [2, this.own(centroids, "kmeans_assign centroids").storage],
      [3, codes.storage],
      [4, distances.storage],
    ];
    this.dispatch("kmeans_assign", "main", { D: d, VPT, TILE }, b, "uu", [N, K], this.grid(Math.ceil(N / (128 * VPT))));
    return { codes, distances };
  }

  kmeans_update(x: Tensor, codes: Tensor, K: number): { sums: Tensor; counts: Tensor } {
    const { N, d } = checkKmeansUpdate(x, codes);
    const gc = this.own(codes, "kmeans_update codes", "i32");
    if (gc.range) checkCodeRange("kmeans_update", gc.range, K);
    const sums = this.tensor([K, d]);
    const counts = this.tensor([K]);
    const acc = this.pool.acquire(K * d * 8);
    const countsU = this.pool.acquire(K * 4);
    const maxBits = this.pool.acquire(4);
    for (const t of [acc, countsU, maxBits]) this.record({ kind: "clear", dst: t });
    const b: Binding[] = [
      [1, this.own(x, "kmeans_update x").storage],
      [2, gc.storage],
      [3, acc],
      [4, countsU],
      [5, maxBits],
      [6, sums.storage],
      [7, counts.storage],
    ];
    this.passes(
      "kmeans_update",
      b,
      "uuu",
      [N, d, K],
      [
        ["max_abs", N * d, [1, 5]],
        ["accumulate", N, [1, 2, 3, 4, 5]],
        ["finish", K * d, [3, 4, 5, 6, 7]],
      ],
    );
    for (const t of [acc, countsU, maxBits]) this.pool.release(t);
    return { sums, counts };
  }

  codebook_decode(codes: Tensor, codebooks: Tensor, l: CodebookLayout): Tensor {
    const { c } = this.codes("codebook_decode", codes, l, codebooks);
    const w = this.tensor([l.out, l.in]);
    const b: Binding[] = [
      [1, c.storage],
      [2, this.own(codebooks, "codebook_decode codebooks").storage],
      [3, w.storage],
    ];
    this.elementwise("codebook_decode", b, l.out * l.in, "uuuuuu", [l.out, l.in, l.d, l.nb, l.K, l.partCols]);
    return w;
  }

  rtn_decode(packed: Tensor, scales: Tensor, zeros: Tensor, l: RtnLayout): Tensor {
    checkRtn(packed, scales, zeros, l);
    const w = this.tensor([l.out, l.in]);
    const b: Binding[] = [
      [1, this.own(packed, "rtn_decode packed", "i32").storage],
      [2, this.own(scales, "rtn_decode scales").storage],
      [3, this.own(zeros, "rtn_decode zeros").storage],
      [4, w.storage],
    ];
    this.elementwise("rtn_decode", b, l.out * l.in, "uuuuu", [l.out, l.in, l.bits, l.group, Math.ceil(l.in / l.group)]);
    return w;
  }

  // --- training ---------------------------------------------------------------------------------------------

  rms_norm_backward(x: Tensor, weight: Tensor, dy: Tensor, eps: number): { dx: Tensor; dweight: Tensor } {
    const C = checkRmsNorm("rms_norm_backward", x, weight, dy);
    const R = rows(x);
    const dx = this.tensor(x.shape);
    const dweight = this.tensor([C]);
    const inv = this.pool.acquire(Math.max(1, R) * 4);
    const gx = this.own(x, "rms_norm_backward x").storage;
    const gdy = this.own(dy, "rms_norm_backward dy").storage;
    const gw = this.own(weight, "rms_norm_backward weight").storage;
    this.dispatch(
      "rms_norm_backward",
      "rows",
      {},
      [
        [1, gx],
        [2, gw],
        [3, gdy],
        [4, dx.storage],
        [5, inv],
      ],
      "uuf",
      [R, C, eps],
      this.grid(R),
    );
    this.dispatch(
      "rms_norm_backward",
      "columns",
      {},
      [
        [1, gx],
        [3, gdy],
        [6, inv],
        [7, dweight.storage],
      ],
      "uuf",
      [R, C, eps],
      [Math.ceil(C / WG), 1, 1],
    );
    this.pool.release(inv);
    return { dx, dweight };
  }

  attention_backward(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dout: Tensor,
    p: AttentionParams,
  ): { dq: Tensor; dk: Tensor; dv: Tensor } {
    const s = checkAttentionBackward(q, k, v, dout, p);
    const params = this.attentionParams(s);
    const dq = this.tensor(q.shape);
    const dk = this.tensor(k.shape);
    const dv = this.tensor(k.shape);
    const scratch = this.tensor([s.B, s.H, s.T, s.S]); // size check only; its storage holds P
    const dscore = this.pool.acquire(scratch.storage.bytes);
    const gq = this.own(q, "attention_backward q").storage;
    const gk = this.own(k, "attention_backward k").storage;
    const gv = this.own(v, "attention_backward v").storage;
    const gd = this.own(dout, "attention_backward dout").storage;
    const rowB: Binding[] = [
      [1, gq],
      [2, gk],
      [3, gv],
      [4, gd],
      [5, scratch.storage],
      [6, dscore],
      [7, dq.storage],
    ];
    this.dispatch("attention_backward", "rows", {}, rowB, "uuuuuuuuuf", params, this.grid(s.B * s.T * s.H));
    const keyB: Binding[] = [
      [1, gq],
      [4, gd],
      [8, scratch.storage],
      [9, dscore],
      [10, dk.storage],
      [11, dv.storage],
    ];
    this.dispatch("attention_backward", "keys", {}, keyB, "uuuuuuuuuf", params, this.grid(s.B * s.S * s.Hkv));
    this.pool.release(scratch.storage);
    this.pool.release(dscore);
    return { dq, dk, dv };
  }

  silu_mul_backward(gate: Tensor, up: Tensor, dy: Tensor): { dgate: Tensor; dup: Tensor } {
    checkSiluMulBackward(gate, up, dy);
    const dgate = this.tensor(gate.shape);
    const dup = this.tensor(gate.shape);
    const b: Binding[] = [
      [1, this.own(gate, "silu_mul_backward gate").storage],
      [2, this.own(up, "silu_mul_backward up").storage],
      [3, this.own(dy, "silu_mul_backward dy").storage],
      [4, dgate.storage],
      [5, dup.storage],
    ];
    this.elementwise("silu_mul_backward", b, numel(gate.shape));
    return { dgate, dup };
  }

  sum_rows(x: Tensor): Tensor {
    const C = last(x.shape);
    const out = this.tensor([C]);
    this.elementwise(
      "sum_rows",
      [
        [1, this.own(x, "sum_rows x").storage],
        [2, out.storage],
      ],
      C,
      "uu",
      [rows(x), C],
    );
    return out;
  }

  mse(pred: Tensor, target: Tensor): { loss: Tensor; grad: Tensor } {
    const n = checkMse(pred, target);
    const groups = Math.ceil(n / WG);
    const grad = this.tensor(pred.shape);
    const loss = this.tensor([1]);
    const partials = this.pool.acquire(groups * 4);
    const b: Binding[] = [
      [1, this.own(pred, "mse pred").storage],
      [2, this.own(target, "mse target").storage],
      [3, grad.storage],
      [4, partials],
    ];
    this.dispatch("mse", "partial", {}, b, "uu", [n, groups], this.grid(groups));
    this.dispatch(
      "mse",
      "total",
      {},
      [
        [5, partials],
        [6, loss.storage],
      ],
      "uu",
      [n, groups],
      [1, 1, 1],
    );
    this.pool.release(partials);
    return { loss, grad };
  }

  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): void {
    checkAdamw(param, grad, m, v, p.step);
    const n = numel(param.shape);
    const b: Binding[] = [
      [1, this.own(param, "adamw param").storage],
      [2, this.own(grad, "adamw grad").storage],
      [3, this.own(m, "adamw m").storage],
      [4, this.own(v, "adamw v").storage],
    ];
    // the step's scalars in float64, as the reference computes them
    const values = [
      n,
      p.beta1,
      1 - p.beta1, // not 1 − β in float32: β2 = 0.999 rounds, and 1 − β2 would lose 4 digits
      p.beta2,
      1 - p.beta2,
      p.eps,
      1 - p.lr * p.weightDecay,
      p.lr / (1 - p.beta1 ** p.step),
      Math.sqrt(1 - p.beta2 ** p.step),
    ];
    this.elementwise("adamw", b, n, "uffffffff", values);
  }

  codebook_grad(dW: Tensor, codes: Tensor, l: CodebookLayout): Tensor {
    checkCodebookGrad(dW, l);
    const { c, m } = this.codes("codebook_grad", codes, l);
    const grad = this.tensor([m, l.K, l.d]);
    const slots = m * l.K * l.d;
    const acc = this.pool.acquire(slots * 8);
    const maxBits = this.pool.acquire(4);
    for (const t of [acc, maxBits]) this.record({ kind: "clear", dst: t });
    const b: Binding[] = [
      [1, this.own(dW, "codebook_grad dW").storage],
      [2, c.storage],
      [3, acc],
      [4, maxBits],
      [5, grad.storage],
    ];
    this.passes(
      "codebook_grad",
      b,
      "uuuuuuu",
      [l.out, l.in, l.d, l.nb, l.K, l.partCols, slots],
      [
        ["max_abs", l.out * l.in, [1, 4]],
        ["accumulate", l.out * l.in, [1, 2, 3, 4]],
        ["finish", slots, [3, 4, 5]],
      ],
    );
    for (const t of [acc, maxBits]) this.pool.release(t);
    return grad;
  }

  scale(x: Tensor, s: number): Tensor {
    const n = numel(x.shape);
    const out = this.tensor(x.shape);
    this.elementwise(
      "scale",
      [
        [1, this.own(x, "scale x").storage],
        [2, out.storage],
      ],
      n,
      "uf",
      [n, s],
    );
    return out;
  }

  cross_entropy_backward(logits: Tensor, targets: Tensor, scale: number): Tensor {
    const { V, R } = checkCrossEntropy(logits, targets);
    const gt = this.own(targets, "cross_entropy_backward targets", "i32");
    if (gt.range) checkTokenIds("cross_entropy_backward", gt.range, V, true);
    const out = this.tensor(logits.shape);
    const b: Binding[] = [
      [1, this.own(logits, "cross_entropy_backward logits").storage],
      [2, gt.storage],
      [3, out.storage],
    ];
    this.dispatch("cross_entropy_backward", "main", {}, b, "uuf", [R, V, scale], this.grid(R));
    return out;
  }

  kl_div(
    student: Tensor,
    teacher: Tensor,
    tau: number,
    scale: number,
    mask: Tensor | null = null,
  ): { loss: Tensor; grad: Tensor } {
    const { V, R } = checkKlDiv(student, teacher, tau, mask);
    const loss = this.tensor(student.shape.slice(0, -1));
    const grad = this.tensor(student.shape);
    // without a mask every row counts: a one-element placeholder (made once) keeps the binding layout
    this.noMask ??= this.uploadInt(Int32Array.of(0), [1]);
    const m = this.own(mask ?? this.noMask, "kl_div mask", "i32").storage;
    const b: Binding[] = [
      [1, this.own(student, "kl_div student").storage],
      [2, this.own(teacher, "kl_div teacher").storage],
      [3, loss.storage],
      [4, grad.storage],
      [5, m],
    ];
    this.dispatch("kl_div", "main", {}, b, "uuffu", [R, V, 1 / tau, scale, mask ? 1 : 0], this.grid(R));
    return { loss, grad };
  }

  /** The scatter-add of kmeans_update (64-bit fixed point, the same bits in every run) with ids as the codes. */
  embedding_backward(ids: Tensor, dy: Tensor, V: number): Tensor {
    const { N, C } = checkEmbeddingBackward(ids, dy, V);
    const gi = this.own(ids, "embedding_backward ids", "i32");
    if (gi.range) checkTokenIds("embedding_backward", gi.range, V, false);
    const flatIds = this.reshape(ids, [N]);
    const flatDy = this.reshape(dy, [N, C]);
    const { sums, counts } = this.kmeans_update(flatDy, flatIds, V);
    this.dispose(counts);
    return sums;
  }
}
