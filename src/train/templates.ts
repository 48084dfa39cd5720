// Prompt templates for supervised data: the Stanford Alpaca template for instruction records (what the
// reference's finetuning/instruction_finetuning.py uses), and a model's own chat template (tokenizer_config.json's
// `chat_template`, Jinja) rendered with @huggingface/jinja — the engine transformers.js uses, not one of ours.

import { Template } from "@huggingface/jinja";
import { DataError } from "../errors.js";

const ALPACA_INPUT =
  "Below is an instruction that describes a task, paired with an input that provides further context. " +
  "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
const ALPACA_NO_INPUT =
  "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
  "### Instruction:\n{instruction}\n\n### Response:\n";

/** The Alpaca prompt of an instruction record (the response follows it). */
export function alpacaPrompt(instruction: string, input?: string): string {
  const t = input ? ALPACA_INPUT.replace("{input}", input) : ALPACA_NO_INPUT;
  return t.replace("{instruction}", instruction);
}

export interface ChatMessage {
  role: string;
  content: string;
}

/** A compiled chat template, with the special tokens the template refers to. */
export class ChatTemplate {
  private readonly template: Template;
  constructor(
    source: string,
    private readonly specials: { bos_token: string; eos_token: string },
    where: string,
  ) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new DataError("template.bad", `${where}: chat_template does not parse (${(e as Error).message})`);
    }
  }

  /** The rendered conversation; with `generationPrompt`, ending where the assistant's next turn starts. */
  render(messages: ChatMessage[], generationPrompt: boolean): string {
    try {
      return this.template.render({ messages, add_generation_prompt: generationPrompt, ...this.specials });
    } catch (e) {
      throw new DataError("template.render", `the chat template failed on a conversation (${(e as Error).message})`);
    }
  }
}
