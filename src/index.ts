// The public API of cluscomp. The CLI and the web demo use only what is exported here.

export type {
  AttentionParams,
  Backend,
  DeviceDType,
  MatmulOptions,
  OpName,
  RopeParams,
  Tensor,
} from "./backend/backend.js";
export { type AdamWParams, BACKEND_NAMES, type CodebookLayout, OP_NAMES, type RtnLayout } from "./backend/backend.js";
export { CpuBackend, type CpuBackendOptions, CpuTensor } from "./backend/cpu/index.js";
export { createBackend } from "./backend/registry.js";
export { GpuTensor, WebGpuBackend, type WebGpuBackendOptions } from "./backend/webgpu/index.js";
export {
  type BitBudget,
  budgetBpw,
  channelScaleBits,
  codeBits,
  codebookBits,
  codebookMatrixBpw,
  lowRankPartBits,
  rtnBpw,
  salientPartBits,
} from "./compress/bits.js";
export {
  decodeWeight,
  extractVectors,
  partRange,
  placeCodes,
  type VectorLayout,
  vectorLayout,
} from "./compress/codebook.js";
export {
  ASSIGNMENTS,
  type Assignment,
  type CalibrationSpec,
  CODE_BITS_MODES,
  COMPRESS_METHODS,
  type CodeBitsMode,
  type CompressMethod,
  type CompressOptions,
  type CompressProgress,
  type CompressReport,
  compressModel,
  DEFAULT_CHANNEL_SCALES,
  DEFAULT_CODE_BITS,
  DEFAULT_HESSIAN_INPUTS,
  defaultShare,
  describePlan,
  dirBytes,
  HESSIAN_INPUTS,
  type HessianInputs,
  isScalarMethod,
  MAX_BITS,
  REALLM_ALTERNATIONS,
  resolvedCompressOptions,
  resolvePlan,
  sideKind,
  sidePlan,
  WEIGHTINGS,
  type Weighting,
} from "./compress/compress.js";
export {
  DENSE_DTYPES,
  type DecompressOptions,
  type DecompressReport,
  type DenseDtype,
  decompressModel,
} from "./compress/decompress.js";
export {
  cholesky,
  dampenedHessian,
  FACTOR_BLOCK,
  GPTQ_BLOCK,
  gptqAssign,
  gptqFactor,
  gptqFactorFast,
  gptqQuantize,
  gptqSweep,
  inverseCholeskyUpper,
  inverseCholeskyUpperFast,
} from "./compress/gptq.js";
export {
  collectInputStatistics,
  HESSIAN_DAMPENING,
  type InputStatistics,
  type InputStatisticsMap,
  inputHessianBytes,
  layerHessianBytes,
  layerInputStatistics,
  vectorWeights,
} from "./compress/hessian.js";
export {
  type CentroidDtype,
  type KMeansOptions,
  type KMeansResult,
  kmeans,
  MAX_CLUSTERS,
  sampleDistinct,
} from "./compress/kmeans.js";
export {
  lowRankFactors,
  lowRankProduct,
  orthonormalColumns,
  type RandomizedSvdOptions,
  randomizedSvd,
  symmetricEigen,
  type TruncatedSvd,
} from "./compress/lowrank.js";
export {
  type CodebookGroup,
  listLinears,
  type MatrixSpec,
  type PlanOptions,
  planBpw,
  planBudget,
  planCodebooks,
  planScore,
  SHARE_MODES,
  type ShareMode,
} from "./compress/plan.js";
export { packBits, rtnQuantize, unpackBits } from "./compress/rtn.js";
export { channelScaleBpw, channelScales, scaleRows } from "./compress/scales.js";
export {
  channelSelection,
  describeSide,
  fixedSizes,
  SIDE_SHARES,
  type SideKind,
  type SideSummary,
  salientChannels,
  shareSizes,
  sidePartBits,
  sideSummary,
} from "./compress/side.js";
export {
  BackendError,
  CluscompError,
  CompressionError,
  ConfigError,
  DataError,
  ModelError,
  OutputError,
  SafetensorsError,
  TokenizerError,
  UnsupportedError,
  UsageError,
} from "./errors.js";
export { type DivergenceResult, divergence } from "./eval/divergence.js";
export { type ExactMatchOptions, type ExactMatchResult, exactMatch } from "./eval/exact_match.js";
export { type PerplexityOptions, type PerplexityResult, perplexity } from "./eval/perplexity.js";
export { bitsPerplexitySvg, type ComparisonRow, resultsTable } from "./eval/report.js";
export {
  applyRepetitionPenalty,
  GENERATE_DEFAULTS,
  type GenerateOptions,
  type GenerateResult,
  generate,
  type StopReason,
} from "./generate/generate.js";
export { argmax, type SamplingOptions, sampleToken } from "./generate/sampling.js";
export { checkOutputDir, checkWorkDir, type OutputLocation, removeStaleTemporaries } from "./io/atomic.js";
export {
  FORMAT_VERSION,
  parseQuantizationConfig,
  type QuantizationConfig,
  type QuantModule,
  sideTensorNames,
} from "./io/cluscomp_format.js";
export { type Fail, JSON_LIMITS, openRegularFile, readJsonFile, readRegularFile } from "./io/files.js";
export { modelFingerprint } from "./io/fingerprint.js";
export {
  type Architecture,
  type ModelConfig,
  parseModelConfig,
  type RopeScaling,
  readModelConfig,
} from "./io/hf_config.js";
export { hubCacheDir, looksLikeHubId, resolveHubModel, resolveModelPath } from "./io/hub_cache.js";
export { inspectModel, type ModelSummary, tensorGroup } from "./io/inspect.js";
export {
  INDEX_FILE,
  openCheckpoint,
  SafetensorsFile,
  ShardedSource,
  type TensorInfo,
  type TensorSource,
  type TensorToWrite,
  writeSafetensors,
} from "./io/safetensors.js";
export { decodeUtf8, MAX_TEXT_BYTES, parseDocuments, readTextFile } from "./io/text.js";
export { loadTokenizer, type Tokenizer } from "./io/tokenizer.js";
export {
  type DecoderLayer,
  decoderLayerBackward,
  decoderLayerForward,
  disposeActivations,
  type GradRequest,
  LAYER_LINEARS,
  type LayerActivations,
  type LayerContext,
  type LayerGrads,
  type LinearGrad,
  type LinearKey,
} from "./model/decoder_layer.js";
export { KVCache } from "./model/kv_cache.js";
export {
  applyLinear,
  type CodebookLinear,
  type DenseLinear,
  type Linear,
  type LoraAdapter,
  type LowRankPart,
  linearWeight,
  lowRankParts,
  type RtnLinear,
} from "./model/linear.js";
export {
  type ForwardOptions,
  type ForwardResult,
  LlamaModel,
  type LlamaWeights,
} from "./model/llama.js";
export {
  type ChunkLoss,
  lmTrainingPass,
  type ModelGradRequest,
  type TrainingPassOptions,
  type TrainingPassResult,
} from "./model/llama_backward.js";
export {
  assertFinite,
  buildModel,
  CheckpointReader,
  checkModelDir,
  type LoadOptions,
  type LoadProgress,
  loadModel,
} from "./model/load.js";
export { ropeInvFreq, ropeTables } from "./model/rope.js";
export {
  type CheckpointCheck,
  CODEBOOK_DTYPES,
  checkCheckpoint,
  checkConfigMath,
  type ExpectedTensor,
  expectedTensors,
  FLOAT_WEIGHT_DTYPES,
  isIgnoredBuffer,
  modelLinears,
  readCodebookCodes,
} from "./model/tensors.js";
export { bf16ToF32, type DType, f16ToF32, f32ToBf16, f32ToF16, fromFloat32, toFloat32 } from "./tensor/dtype.js";
export { Rng } from "./tensor/rng.js";
export { formatShape, numel, type Shape } from "./tensor/shape.js";
export {
  type BlockReport,
  type BlockwiseOptions,
  type BlockwiseProgress,
  type BlockwiseReport,
  type BlockwiseSettings,
  DEFAULT_LR,
  DEFAULT_LR_SCHEDULE,
  defaultHoldout,
  finetuneBlockwise,
  finetuneRecord,
  LR_SCHEDULES,
  type LrSchedule,
  resolveBlockwiseOptions,
  scheduledLr,
} from "./train/blockwise.js";
export { type CalibrationOptions, calibrationWindows, readCalibrationText } from "./train/calibration.js";
export {
  type DataFormat,
  type Dataset,
  type Example,
  epochOrder,
  padBatch,
  readDataset,
  readTaskFile,
  type TaskItem,
} from "./train/data.js";
export { type GenerateDataOptions, generateDistillationData } from "./train/generate_data.js";
export { type Batch, type BatchResult, batchGradients, type GradientOptions } from "./train/gradients.js";
export { type TrainOptions, type TrainProgress, type TrainReport, trainModel } from "./train/loop.js";
export {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  attachLora,
  LORA_TARGETS,
  type LoraSettings,
  type LoraTarget,
  loadAdapter,
  loraLinears,
  mergeLora,
  parseLoraTargets,
  saveAdapter,
} from "./train/lora.js";
export { batchLoss, LOSS_KINDS, type LossKind, type LossSpec, shiftLabels } from "./train/losses.js";
export {
  ADAMW_DEFAULTS,
  AdamW,
  type AdamWSettings,
  clipGradients,
  gradNorm,
  lrAt,
  SCHEDULES,
  type Schedule,
} from "./train/optimizer.js";
export { ActivationStream } from "./train/stream.js";
export { alpacaPrompt, type ChatMessage, ChatTemplate } from "./train/templates.js";
export {
  collectLayerGrads,
  GradAccumulator,
  layerGradRequest,
  loraParamName,
  lowRankParamName,
  modelGradRequest,
  modelTrainableParams,
  paramSet,
  TRAIN_SETS,
  type TrainableParam,
  type TrainSet,
  trainableGrads,
  trainableParams,
  trainStep,
} from "./train/trainable.js";
export { compressAndTune, type TwoStageHooks, type TwoStageReport } from "./train/two_stage.js";
