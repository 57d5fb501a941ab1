/**
 * dinotwins: the public surface. Notebooks import this file (`./lib/index` through the
 * notebooks/lib symlink; tslab cannot import a folder, so every path here names a file).
 */
export * from './backend/select';
export { DeviceError, watchDeviceErrors } from './backend/deviceErrors';
export * from './util/rng';
export * from './config/budget';
export * from './util/keep';
export * from './notebook/asyncErrors';
export * from './notebook/session';
export * from './protocol/experiment';

// Data: an explicit list, so generic names stay namespaced under `data`.
export {
  loadCifar10,
  loadCifar10OrFixture,
  DataError,
  balancedSubset,
  trainValSplit,
  take,
  classCounts,
  classCountTable,
  channelStats,
  writeCifar10Fixture,
  generateFixture,
  damageFixture,
  CIFAR10_CLASS_NAMES,
  CIFAR10_ENV,
  CIFAR10_SOURCE,
} from './data/index';
export type {
  LoadCifar10Options,
  Cifar10,
  Cifar10Source,
  LabelledSplit,
  Subset,
  Split,
  DataIdentity,
  SourceIdentity,
} from './data/index';
export {
  loadImageFolder,
  ImageFolderError,
  UnreadableImagesError,
  writeExampleFolder,
  IMAGE_FOLDER_DEFAULTS,
  UNLABELLED_EVALUATION,
} from './data/index';
export type {
  LoadImageFolderOptions,
  ImageFolderData,
  ImageFolderIdentity,
  LabelledImageFolder,
  UnlabelledImageFolder,
} from './data/index';
export { resolveDataSpec, CIFAR10_DATA } from './data/index';
export type { DataSpec, ImageFolderSpec, UnlabelledImages } from './data/index';
export * as data from './data/index';

// Augmentations.
export * from './augment/index';

// Networks.
export * from './nn/params';
export * from './nn/layers';
export * from './nn/module';
export * from './models/index';

// Losses, schedules, EMA.
export * from './losses/barlow';
export * from './losses/dino';
export * from './losses/dinoTwins';
export * from './losses/stepMonitors';
export * from './methods/schedules';
export * from './methods/ema';

// Methods and training.
export * from './methods/index';
export * from './config/config';
export * from './train/runName';
export * from './train/trainStep';
export { backendCapabilities } from './kernels/capabilities';
export type { BackendCapabilities } from './kernels/capabilities';
export * from './train/optimizers';
export * from './train/checkpoint';
export * from './train/runRecord';
export * from './train/trainer';
export * from './train/interrupt';
export * from './train/runLock';
export * from './train/cli';
export * from './sweep/index'; // sweeps: specs, the local and Slurm engines, status and results

// Evaluation.
export * from './eval/knn';
export * from './eval/collapseMonitors';
export * from './eval/features';
export * from './eval/linearProbe';
export * from './eval/knnMonitor';
export * from './eval/supervised';
export * from './eval/analysis';
export * from './protocol/representation'; // neighbours, embeddings of runs, safetensors weights in and out

// Charts, images, tables, progress: a namespace (names such as display, table, progress are generic).
export * as viz from './viz/index';

// Kernels (registered automatically by selectBackend; exported for benchmarks and tests).
export { ourKernels } from './kernels/index';
export { registerWebgpuKernels, unregisterWebgpuKernels, WEBGPU_KERNEL_DEFAULTS } from './kernels/webgpu/index';
export { gpuPoolStats, trimGpuPool } from './kernels/webgpu/pool';
export type { GpuPoolStats } from './kernels/webgpu/pool';
export * from './results/report';
// Results over training seeds: groups, Welch's test between rows, the table beside the original project's.
export * from './results/stats/describe';
export * from './results/stats/studentT';
export * from './results/stats/welch';
export * from './results/seedGroups';
export * from './results/seedCompare';
export * from './results/resultsTable';
export {
  useWasmThreads,
  wasmThreadsCount,
  stopWasmThreads,
  threadCpuSeconds,
  WASM_THREADS_DEFAULTS,
} from './kernels/wasm/threads';
export type { WasmThreadsOptions } from './kernels/wasm/threads';
