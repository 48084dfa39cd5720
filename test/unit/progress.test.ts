// The progress bar: no rate or ETA in the first second (the first unit may take almost no time, which made the
// first line promise "ETA 0s"), then both; the last line says how long it took.

import { afterEach, expect, it, vi } from "vitest";
import { ProgressBar } from "../../src/cli/progress.js";

afterEach(() => {
  vi.useRealTimers();
});

it("shows rate and ETA only after the first second, and the total time at the end", () => {
  vi.useFakeTimers({ toFake: ["performance"] });
  vi.advanceTimersByTime(60_000); // a process that has run a while (the clock does not start at the bar)
  const lines: string[] = [];
  const stream = { isTTY: true, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
  const bar = new ProgressBar({ label: "k-means", total: 100, unit: "it", stream });
  vi.advanceTimersByTime(200);
  bar.update(1);
  expect(lines.at(-1)).toMatch(/1\/100 it ETA …$/);
  vi.advanceTimersByTime(1800);
  bar.update(20);
  expect(lines.at(-1)).toMatch(/20\/100 it 10\.0 it\/s ETA 8s$/);
  vi.advanceTimersByTime(8000);
  bar.update(100);
  expect(lines.at(-1)).toMatch(/100\/100 it 10\.0 it\/s in 10s\n$/);
});
