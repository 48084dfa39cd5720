// Token ids of the first CHARS characters of a text with a model's tokenizer, as one JSON list on stdout (for
// bench/torch_train.py, which has no tokenizer of its own).
//   npx tsx bench/tokenize.ts MODEL_DIR TEXT_FILE [CHARS]

import * as fs from "node:fs";
import { loadTokenizer } from "../src/index.js";

const [dir, file, chars] = process.argv.slice(2);
const text = fs.readFileSync(file, "utf8").slice(0, chars ? Number(chars) : undefined);
process.stdout.write(`${JSON.stringify(loadTokenizer(dir).encode(text))}\n`);
