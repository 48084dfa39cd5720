// Typed errors. Every error a user can cause carries a message that names the file, tensor or field at fault
// and says what to do; the CLI prints `error: <message>` and exits non-zero.

export class CluscompError extends Error {
  /** Stable machine-readable code, e.g. "safetensors.truncated". */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A safetensors file or shard index that is malformed, truncated or inconsistent. */
export class SafetensorsError extends CluscompError {}

/** A config.json that is missing, not JSON, or has a field with a bad value. */
export class ConfigError extends CluscompError {}

/** A well-formed input that asks for something this version does not implement (architecture, rope type…). */
export class UnsupportedError extends CluscompError {}

/** tokenizer.json / tokenizer_config.json missing or unusable. */
export class TokenizerError extends CluscompError {}

/** Bad command-line usage or option values. */
export class UsageError extends CluscompError {}

/** A backend asked for an op or shape it cannot run, or tensors from another backend. */
export class BackendError extends CluscompError {}

/** A model directory whose tensors do not match its config (missing tensor, wrong shape). */
export class ModelError extends CluscompError {}

/** Compression settings that cannot be met (K out of range, target bits unreachable, output not empty…). */
export class CompressionError extends CluscompError {}

/** An output location that cannot be written (a file in the way, no permission, not empty…). */
export class OutputError extends CluscompError {}

/** A data file (evaluation or calibration text, a prompt file) that is missing, not text, or malformed. */
export class DataError extends CluscompError {}
