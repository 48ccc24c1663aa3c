// Public API of @codereasoner/bench: CRUXEval, LiveCodeBench (code execution) and REval with
// the official prompts, extraction and execution-based scoring, model adapters and reports.

export { BenchmarkConfigError, BenchmarkDataError, BenchmarkRunError } from './errors.js';

export { BENCHMARK_TASKS } from './types.js';
export type {
  BenchItem,
  BenchmarkName,
  BenchmarkTask,
  PromptStyle,
  SampleVerdict,
  Verdict,
} from './types.js';

export { runBenchmark, runBenchmarks, resolveRunSettings } from './run-benchmark.js';
export { constantBaselines } from './baselines.js';
export type { ConstantBaseline, TaskBaselines } from './baselines.js';
export type {
  RunBenchmarkOptions,
  RunBenchmarksOptions,
  RunBenchmarksResult,
} from './run-benchmark.js';

export { BENCHMARK_LAYOUT, BUNDLED_BENCHMARKS_DIR, resolveBenchmarkFiles } from './files.js';
export type { BenchmarkFiles } from './files.js';

export { CRUXEVAL_TIMEOUT_MS, cruxEvalItems, loadCruxEval, scoreCruxEval } from './cruxeval.js';
export {
  LCB_BASE_IMPORTS,
  LCB_EXPECTED_SAMPLES,
  LCB_TIMEOUT_MS,
  checkLiveCodeBenchExport,
  liveCodeBenchItems,
  loadLiveCodeBench,
  loadLiveCodeBenchIndex,
  scoreLiveCodeBench,
} from './livecodebench.js';
export type { LiveCodeBenchIndexCheck } from './livecodebench.js';
export { loadReval } from './reval/data.js';
export type { RevalGroup, RevalProbePoint, RevalProblem } from './reval/data.js';
export {
  computeRevalTruth,
  REVAL_GROUP_TIMEOUT_MS,
  REVAL_OUTPUT_TIMEOUT_MS,
} from './reval/truth.js';
export type { RevalGroupTruth, RevalProbeTruth } from './reval/truth.js';
export { incrementalConsistency, revalGroupItems, scoreReval } from './reval/items.js';
export type { ConsistencyPoint, RevalItemContext, RevalTask } from './reval/items.js';
export type {
  CruxEvalRecord,
  LiveCodeBenchIndexRecord,
  LiveCodeBenchRecord,
  RevalDataRecord,
  RevalTasksRecord,
} from './schemas.js';
export {
  cruxEvalRecordSchema,
  liveCodeBenchIndexRecordSchema,
  liveCodeBenchRecordSchema,
  revalDataRecordSchema,
  revalTasksRecordSchema,
} from './schemas.js';

export {
  completeRevalOutput,
  extractCruxInput,
  extractCruxOutput,
  extractLcbOutput,
  extractRevalAnswer,
  parseRevalCoverage,
  parseRevalPath,
} from './extract.js';
export { OFFICIAL_SYSTEM_MESSAGE } from './official-prompts.js';
export { meanPassAtK, passAtK } from './pass-at-k.js';

export {
  createEndpointModel,
  createNullModel,
  createOracleModel,
  isGoldAware,
  loadLocalModel,
} from './models.js';
export type { GoldAwareModel, LocalModelOptions } from './models.js';

export {
  PAPER_ROWS,
  officialCount,
  renderMarkdownReport,
  revalConsistency,
  taskMetrics,
} from './report.js';
export type { BenchmarkSummary, ExcludedEntry, ItemRecord, TaskMetrics } from './report.js';

export type { SandboxLike } from './types.js';
export type { CheckRequest, CheckResult, RunRequest, RunResult } from '@codereasoner/sandbox';
