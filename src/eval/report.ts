// Comparison reports: a markdown table and a bits-vs-perplexity SVG plot (log-scale perplexity) of compressed
// variants next to the full-precision model.

export interface ComparisonRow {
  label: string;
  method: string;
  /** undefined for the full-precision reference row. */
  bpw?: number;
  bytes: number;
  ppl: number;
  compressSeconds?: number;
  evalSeconds: number;
  command?: string;
}

export function resultsTable(rows: ComparisonRow[]): string {
  const lines = [
    "| variant | method | bpw | file size | perplexity | compress s | eval s |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.label} | ${r.method} | ${r.bpw === undefined ? "full precision" : r.bpw.toFixed(3)} | ${(r.bytes / 2 ** 20).toFixed(2)} MiB | ${r.ppl.toFixed(2)} | ${r.compressSeconds === undefined ? "–" : r.compressSeconds.toFixed(1)} | ${r.evalSeconds.toFixed(1)} |`,
    );
  }
  return `${lines.join("\n")}\n`;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Perplexity (log scale) against bits per weight; one colour per series, the reference as a dashed line. */
export function bitsPerplexitySvg(rows: ComparisonRow[], title: string, series: (r: ComparisonRow) => string): string {
  const W = 720;
  const H = 440;
  const m = { l: 70, r: 200, t: 40, b: 50 };
  const pts = rows.filter((r) => r.bpw !== undefined);
  const ref = rows.find((r) => r.bpw === undefined);
  const xs = pts.map((r) => r.bpw!);
  const ys = [...pts.map((r) => r.ppl), ...(ref ? [ref.ppl] : [])];
  const x0 = Math.floor(Math.min(...xs, 2) * 2) / 2;
  const x1 = Math.ceil(Math.max(...xs, 4.5) * 2) / 2;
  const y0 = Math.log10(Math.min(...ys) * 0.9);
  const y1 = Math.log10(Math.max(...ys) * 1.1);
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((Math.log10(y) - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="15">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">bits per weight (compressed matrices)</text>`,
    `<text transform="translate(18 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">perplexity (log scale)</text>`,
  ];
  for (let x = x0; x <= x1 + 1e-9; x += 0.5) {
    out.push(`<line x1="${px(x)}" y1="${H - m.b}" x2="${px(x)}" y2="${H - m.b + 5}" stroke="black"/>`);
    out.push(`<text x="${px(x)}" y="${H - m.b + 18}" text-anchor="middle">${x.toFixed(1)}</text>`);
  }
  const decades = Math.max(1, Math.ceil(y1 - y0));
  for (let i = 0; i <= 6; i++) {
    const v = 10 ** (y0 + ((y1 - y0) * i) / 6);
    const y = py(v);
    out.push(`<line x1="${m.l - 5}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#ddd"/>`);
    out.push(
      `<text x="${m.l - 8}" y="${y + 4}" text-anchor="end">${v >= 100 || decades > 2 ? v.toFixed(0) : v.toFixed(1)}</text>`,
    );
  }
  if (ref) {
    out.push(
      `<line x1="${m.l}" y1="${py(ref.ppl)}" x2="${W - m.r}" y2="${py(ref.ppl)}" stroke="black" stroke-dasharray="6 4"/>`,
    );
    out.push(`<text x="${W - m.r + 8}" y="${py(ref.ppl) + 4}">${esc(ref.label)} ${ref.ppl.toFixed(2)}</text>`);
  }
  const names = [...new Set(pts.map(series))];
  names.forEach((name, i) => {
    const color = COLORS[i % COLORS.length];
    const s = pts.filter((r) => series(r) === name).sort((a, b) => a.bpw! - b.bpw!);
    if (s.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${color}" points="${s.map((r) => `${px(r.bpw!)},${py(r.ppl)}`).join(" ")}"/>`,
      );
    }
    for (const r of s) {
      out.push(
        `<circle cx="${px(r.bpw!)}" cy="${py(r.ppl)}" r="4" fill="${color}"><title>${esc(`${r.label}: ${r.bpw!.toFixed(3)} bpw, ppl ${r.ppl.toFixed(2)}`)}</title></circle>`,
      );
    }
    const ly = m.t + 20 + i * 18;
    out.push(`<circle cx="${W - m.r + 14}" cy="${ly - 4}" r="4" fill="${color}"/>`);
    out.push(`<text x="${W - m.r + 24}" y="${ly}">${esc(name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
