// Progress on stderr: a redrawn bar with rate and ETA on a terminal; on a pipe or in CI, a line every few
// seconds (and at the end) so logs stay readable.

export interface ProgressOptions {
  label: string;
  total: number;
  unit: string;
  /** Show done/total as a percentage, without a rate (for work counted in internal units). */
  percent?: boolean;
  /** Units already done when the bar starts (a resumed run): left out of the rate and ETA. */
  initial?: number;
  /** Silence everything (e.g. --quiet). */
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600)
    return `${Math.floor(s / 60)}m${Math.floor(s % 60)
      .toString()
      .padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)
    .toString()
    .padStart(2, "0")}m`;
}

function fmtRate(r: number): string {
  return r >= 100 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toPrecision(2);
}

function fmtCount(n: number): string {
  return Number.isInteger(n) ? String(n) : n >= 100 ? n.toFixed(0) : n.toPrecision(3);
}

export class ProgressBar {
  private readonly opts: ProgressOptions;
  private readonly start = performance.now();
  private lastDraw = 0;
  private readonly tty: boolean;
  private readonly out: NodeJS.WriteStream;

  constructor(opts: ProgressOptions) {
    this.opts = opts;
    this.out = opts.stream ?? process.stderr;
    this.tty = this.out.isTTY === true;
  }

  /** Reports `done` of `total` units; `extra` is appended (e.g. a loss). */
  update(done: number, extra = ""): void {
    if (this.opts.quiet) return;
    const now = performance.now();
    const finished = done >= this.opts.total;
    const every = this.tty ? 100 : 5000;
    if (!finished && now - this.lastDraw < every) return;
    this.lastDraw = now;
    const secs = (now - this.start) / 1000;
    const rate = (done - (this.opts.initial ?? 0)) / Math.max(secs, 1e-9);
    const eta = (this.opts.total - done) / rate;
    const frac = this.opts.total > 0 ? Math.min(1, done / this.opts.total) : 1;
    const width = 24;
    const fill = Math.round(frac * width);
    const bar = `${"█".repeat(fill)}${"░".repeat(width - fill)}`;
    // under a second in, the rate (and so the ETA) is noise: the first unit may have taken almost no time
    const early = !finished && secs < 1;
    const tail = finished ? `in ${fmtTime(secs)}` : early ? "ETA …" : `ETA ${fmtTime(eta)}`;
    const speed = early || this.opts.percent ? "" : ` ${fmtRate(rate)} ${this.opts.unit}/s`;
    const count = this.opts.percent
      ? `${(frac * 100).toFixed(frac < 0.1 ? 1 : 0)} %`
      : `${fmtCount(done)}/${fmtCount(this.opts.total)} ${this.opts.unit}`;
    const line = `${this.opts.label} ${bar} ${count}${speed} ${tail}${extra ? ` ${extra}` : ""}`;
    if (this.tty) this.out.write(`\r\x1b[2K${line}${finished ? "\n" : ""}`);
    else this.out.write(`${line}\n`);
  }
}
