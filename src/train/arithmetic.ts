// The seeded arithmetic task of the finetuning study (protocol B): "Q: What is 47 plus 38?\nA:" → " 85", operands
// 0–99, plus or minus. Training and held-out items never share an operand pair, in either order: the unordered
// pairs {a, b} are shuffled once, the first `test` go to the held-out set and the next `train` to training, and
// each item then draws its operand order and operation.

import { UsageError } from "../errors.js";
import { Rng } from "../tensor/rng.js";
import type { TaskItem } from "./data.js";

export interface ArithmeticTask {
  train: TaskItem[];
  test: TaskItem[];
}

export function arithmeticTask(o: { train: number; test: number; seed: number }): ArithmeticTask {
  const pairs: [number, number][] = [];
  for (let a = 0; a < 100; a++) for (let b = a; b < 100; b++) pairs.push([a, b]);
  if (
    !Number.isInteger(o.train) ||
    !Number.isInteger(o.test) ||
    o.train < 1 ||
    o.test < 1 ||
    o.train + o.test > pairs.length
  )
    throw new UsageError("usage.task", `train + test items must be ≥ 1 each and at most ${pairs.length} together`);
  const rng = new Rng(o.seed);
  rng.shuffle(pairs);
  const item = ([x, y]: [number, number]): TaskItem => {
    const [a, b] = rng.int(2) === 0 ? [x, y] : [y, x];
    const plus = rng.int(2) === 0;
    return { prompt: `Q: What is ${a} ${plus ? "plus" : "minus"} ${b}?\nA:`, completion: ` ${plus ? a + b : a - b}` };
  };
  return { test: pairs.slice(0, o.test).map(item), train: pairs.slice(o.test, o.test + o.train).map(item) };
}
