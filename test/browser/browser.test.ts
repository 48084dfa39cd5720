// The CPU and WebGPU backends in a browser: headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) loads
// test/browser/page.html, which imports the compiled package and runs checks.js — each fast-tier op against the
// reference loops. In a Web Worker of a cross-origin-isolated page the fast tier must run on two threads (Web
// Workers on a shared WebAssembly memory); on a page's main thread (no Atomics.wait) and on a page that is not
// cross-origin isolated (no SharedArrayBuffer) it must fall back to one thread with the same results. With
// --enable-unsafe-webgpu the page also has navigator.gpu (SwiftShader, a CPU implementation), on which the WebGPU
// backend runs the same cases and a few of its own.
// Without Chromium the tests are reported as skipped with the reason (.ci/run installs it).

import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = path.resolve(import.meta.dirname, "../..");
const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" };

interface Results {
  error?: string;
  /** Why the page has no WebGPU adapter (the WebGPU check only). */
  reason?: string;
  ready: boolean;
  describe: string;
  crossOriginIsolated: boolean;
  checks: { name: string; nmse: number }[];
  workerChunks: number;
}

/** Serves the repository: under /isolated/ with the headers that make a page cross-origin isolated. */
function serve(): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const isolated = url.pathname.startsWith("/isolated/");
    const rel = url.pathname.replace(/^\/(isolated|plain)\//, "");
    const file = path.resolve(ROOT, rel);
    if (!file.startsWith(`${ROOT}${path.sep}`) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" };
    if (isolated) {
      headers["cross-origin-opener-policy"] = "same-origin";
      headers["cross-origin-embedder-policy"] = "require-corp";
    }
    res.writeHead(200, headers).end(fs.readFileSync(file));
  });
}

const have = fs.existsSync(CHROMIUM);
describe.skipIf(!have)(
  `CPU and WebGPU backends in headless Chromium${have ? "" : ` — skipped: ${CHROMIUM} is not installed`}`,
  () => {
    let server: http.Server;
    let browser: Browser;
    let base: string;

    beforeAll(async () => {
      server = serve();
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          "--no-sandbox",
          "--enable-unsafe-webgpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
        ],
      });
    });

    afterAll(async () => {
      await browser?.close();
      await new Promise((resolve) => server?.close(resolve));
    });

    async function run(
      prefix: "isolated" | "plain",
      where: "worker" | "main" | "webgpu",
      skip?: (note: string) => never,
    ): Promise<Results> {
      const page = await browser.newPage();
      try {
        await page.goto(`${base}/${prefix}/test/browser/page.html?where=${where}`);
        await page.waitForFunction(() => "results" in globalThis, null, { timeout: 120_000 });
        const r = (await page.evaluate(() => (globalThis as unknown as { results: unknown }).results)) as Results;
        expect(r.error).toBeUndefined();
        // no adapter in this Chromium: skipped with the reason, or a failure where CI requires WebGPU
        if (r.reason !== undefined && skip && process.env.CLUSCOMP_REQUIRE_WEBGPU !== "1")
          skip(`no WebGPU adapter in Chromium: ${r.reason}`);
        expect(r.reason, "no WebGPU adapter in Chromium").toBeUndefined();
        expect(r.checks.length).toBeGreaterThan(5);
        for (const c of r.checks) expect(c.nmse, c.name).toBeLessThan(1e-10);
        return r;
      } finally {
        await page.close();
      }
    }

    it("in a Web Worker of a cross-origin-isolated page: two threads (Web Workers) that take part, same results", async () => {
      const r = await run("isolated", "worker");
      expect(r.crossOriginIsolated).toBe(true);
      expect(r.describe).toMatch(/^WebAssembly (relaxed )?SIMD.*, 2 threads$/);
      expect(r.ready).toBe(true);
      expect(r.workerChunks).toBeGreaterThan(0);
    });

    it("on a page's main thread (which may not block): one thread, same results", async () => {
      const r = await run("isolated", "main");
      expect(r.describe).toMatch(/^WebAssembly (relaxed )?SIMD.*, 1 thread$/);
    });

    it("in a worker of a page that is not cross-origin isolated (no shared memory): one thread, same results", async () => {
      const r = await run("plain", "worker");
      expect(r.crossOriginIsolated).toBe(false);
      expect(r.describe).toMatch(/^WebAssembly (relaxed )?SIMD.*, 1 thread$/);
    });

    it("the WebGPU backend on the page's navigator.gpu (SwiftShader here): every case against the reference", async (ctx) => {
      const r = await run("plain", "webgpu", (note) => {
        ctx.skip(note);
        throw new Error("unreachable: ctx.skip throws");
      });
      expect(r.describe).toMatch(/^WebGPU on /);
      expect(r.checks.length).toBeGreaterThan(10);
    });
  },
);
