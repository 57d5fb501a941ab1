/**
 * dinotwins' WebGPU kernels, registered over tfjs-backend-webgpu's stock ones through the one
 * registration point (`lib/kernels/index.ts`): Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter
 * as implicit GEMMs (`conv2d.ts`), and Sum/Mean over leading axes (batch-norm statistics and the
 * bias/BN gradients) as coalesced column sums (`reduce_rows.ts`), and AddN split into groups that
 * fit the device's storage-buffer limit (stock AddN binds every input at once and fails beyond 8 on
 * Dawn's default limits, e.g. a gradient norm over 75 parameters). BatchMatMul and _FusedMatMul stay
 * tfjs' own but never use its split-K program with float atomics, so results do not depend on
 * the GPU's timing (`matmul.ts`). Slice and Concat run as buffer copies where the data are contiguous
 * (`copy.ts`). Uploads of CPU data go through `queue.writeBuffer` (`upload.ts`). Cases ours do not cover (NCHW,
 * dilation, int32, other reduction axes) go to the stock kernel captured at registration.
 *
 * Importing this module adds the registrar; `lib/backend/select.ts` runs it after requiring the webgpu
 * backend. `DINOTWINS_WEBGPU_KERNELS=stock` keeps the stock kernels (for A/B benchmarks).
 */
import * as tf from '@tensorflow/tfjs';
import { addKernelRegistrar } from '../index';
import { conv2dFilterGrad, conv2dForward, conv2dInputGrad, convSupported } from './conv2d';
import { GEMM_DEFAULTS, GemmOptions } from './gemm';
import { WebgpuBackendLike } from './program';
import { REDUCE_ROWS_DEFAULTS, ReduceRowsOptions, sumRows } from './reduce_rows';
import { installWriteBufferUploads, uninstallWriteBufferUploads } from './upload';
import { bnBackward, bnForward, bnRunning, BnAttrs } from './bnKernels';
import { adamFlat, axpby, gelu } from './elementwise';
import { lnBackward, lnForward } from './layernorm';
import { useWinograd, winogradConv, winogradForward, winogradInputGrad } from './winograd';
import { FUSED_KERNELS } from '../fused';
import { deterministicMatMul } from './matmul';
import { copyConcat, copySlice, copySplit } from './copy';
import { trimGpuPool } from './pool';
import { registerCapabilities } from '../capabilities';

export const WEBGPU_KERNELS_ENV = 'DINOTWINS_WEBGPU_KERNELS';

/** Names of the kernels we can replace. */
export const WEBGPU_KERNEL_NAMES = [
  'Conv2D',
  'Conv2DBackpropInput',
  'Conv2DBackpropFilter',
  'Sum',
  'Mean',
  'AddN',
  'BatchMatMul',
  '_FusedMatMul',
  'Slice',
  'SplitV',
  'Concat',
] as const;
export type WebgpuKernelName = (typeof WEBGPU_KERNEL_NAMES)[number];

/** What to register and how to tune it. */
export interface WebgpuKernelOptions {
  /** Which kernels to replace (default: all of WEBGPU_KERNEL_NAMES). */
  kernels: readonly WebgpuKernelName[];
  /** GEMM tiling / split-K for the convolutions. */
  gemm: Readonly<GemmOptions>;
  /** Column-sum tuning for Sum/Mean. */
  reduce: Readonly<ReduceRowsOptions>;
  /** Sum/Mean over fewer rows than this go to the stock kernel (small reductions gain nothing). */
  minReduceRows: number;
  /** Upload CPU data with `queue.writeBuffer` instead of a new staging buffer per upload (`upload.ts`). */
  writeBufferUploads: boolean;
  /** Register the fused ops: batch norm, layer norm, GELU, axpby (EMA) and flat Adam (names in lib/kernels/fused.ts). */
  fusedOps: boolean;
  /** 3x3 stride-1 conv forward and input gradient by Winograd F(2x2, 3x3) (`winograd.ts`; not yet timed on a GPU). */
  winograd: boolean;
}

export const WEBGPU_KERNEL_DEFAULTS: Readonly<WebgpuKernelOptions> = Object.freeze({
  kernels: WEBGPU_KERNEL_NAMES,
  gemm: GEMM_DEFAULTS,
  reduce: REDUCE_ROWS_DEFAULTS,
  minReduceRows: 2,
  writeBufferUploads: true,
  fusedOps: true,
  winograd: false,
});

const BACKEND = 'webgpu';
const stock = new Map<string, tf.KernelConfig>();

type Args = { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs?: Record<string, unknown> };

function stockKernel(name: string): tf.KernelFunc {
  const k = stock.get(name);
  if (!k) throw new Error(`stock webgpu kernel ${name} was not captured`);
  return k.kernelFunc;
}

function dataFormat(a: Record<string, unknown>): 'channelsFirst' | 'channelsLast' {
  return tf.backend_util.convertConv2DDataFormat((a.dataFormat as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC');
}

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

function makeConv2D(o: WebgpuKernelOptions): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args as unknown as Args;
    const { x, filter } = inputs;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides as number | [number, number],
      (attrs.dilations as number | [number, number]) ?? 1,
      attrs.pad as Pad,
      attrs.dimRoundingMode as Rounding,
      false,
      dataFormat(attrs),
    );
    if (!convSupported(info) || x.dtype !== 'float32' || filter.dtype !== 'float32') return stockKernel('Conv2D')(args);
    if (useWinograd('fwd', info, [x, filter], o.winograd))
      return winogradConv(backend as WebgpuBackendLike, x, filter, winogradForward(info), o.gemm);
    return conv2dForward(backend as WebgpuBackendLike, x, filter, info, o.gemm);
  };
}

function makeConv2DBackpropInput(o: WebgpuKernelOptions): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args as unknown as Args;
    const { dy, filter } = inputs;
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as Pad,
      attrs.dimRoundingMode as Rounding,
      false,
      dataFormat(attrs),
    );
    if (!convSupported(info) || dy.dtype !== 'float32' || filter.dtype !== 'float32')
      return stockKernel('Conv2DBackpropInput')(args);
    if (useWinograd('dx', info, [dy, filter], o.winograd))
      return winogradConv(backend as WebgpuBackendLike, dy, filter, winogradInputGrad(info), o.gemm);
    return conv2dInputGrad(backend as WebgpuBackendLike, dy, filter, info, o.gemm);
  };
}

function makeConv2DBackpropFilter(o: WebgpuKernelOptions): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args as unknown as Args;
    const { x, dy } = inputs;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape as [number, number, number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as Pad,
      attrs.dimRoundingMode as Rounding,
      false,
      dataFormat(attrs),
    );
    if (!convSupported(info) || x.dtype !== 'float32' || dy.dtype !== 'float32')
      return stockKernel('Conv2DBackpropFilter')(args);
    return conv2dFilterGrad(backend as WebgpuBackendLike, x, dy, info, o.gemm);
  };
}

/** [R, C] view of a reduction over the leading `k` axes, or undefined if the axes are not leading. */
export function leadingReduction(
  shape: number[],
  axis: number | number[] | undefined,
): { R: number; C: number; k: number } | undefined {
  if (shape.length === 0) return undefined;
  const axes = [...tf.util.parseAxisParam(axis ?? shape.map((_, i) => i), shape)].sort((a, b) => a - b);
  const k = axes.length;
  if (k === 0 || k >= shape.length || axes.some((a, i) => a !== i)) return undefined;
  const R = shape.slice(0, k).reduce((a, b) => a * b, 1);
  const C = shape.slice(k).reduce((a, b) => a * b, 1);
  return { R, C, k };
}

function makeReduce(name: 'Sum' | 'Mean', o: WebgpuKernelOptions): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args as unknown as Args;
    const { x } = inputs;
    const red = leadingReduction(x.shape, attrs.axis as number | number[] | undefined);
    if (!red || x.dtype !== 'float32' || red.R < o.minReduceRows || red.C === 0) return stockKernel(name)(args);
    const outShape = attrs.keepDims ? x.shape.map((d, i) => (i < red.k ? 1 : d)) : x.shape.slice(red.k);
    return sumRows(
      backend as WebgpuBackendLike,
      x,
      red.R,
      red.C,
      name === 'Mean' ? 1 / red.R : 1,
      outShape,
      undefined,
      o.reduce,
    );
  };
}

/** Slice: one buffer copy when the block is contiguous (`copy.ts`), else stock. */
function makeSlice(): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args as unknown as Args;
    const { x } = inputs;
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as tf.Tensor,
      attrs.begin as number | number[],
      attrs.size as number | number[] | undefined,
    );
    tf.slice_util.assertParamsValid(x as tf.Tensor, begin, size);
    return copySlice(backend, x, begin, size) ?? stockKernel('Slice')(args);
  };
}

/**
 * SplitV (tf.split): each part a buffer copy when the parts are contiguous (`copy.ts`; the flat
 * optimizer splits its parameter vector so), else stock. Stock SplitV calls its slice directly, so
 * registering Slice alone does not reach it.
 */
function makeSplitV(): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args as unknown as Args;
    const { x } = inputs;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number | number[], axis);
    return copySplit(backend, x, sizes, axis) ?? stockKernel('SplitV')(args);
  };
}

/** Concat: buffer copies when every axis before the concat axis has size 1 (`copy.ts`), else stock. */
function makeConcat(): tf.KernelFunc {
  return (args) => {
    const {
      inputs,
      backend,
      attrs = {},
    } = args as unknown as { inputs: tf.TensorInfo[]; backend: unknown; attrs?: Record<string, unknown> };
    const list = Array.from(inputs);
    if (list.length === 0) return stockKernel('Concat')(args);
    const axis = tf.util.parseAxisParam(attrs.axis as number, list[0].shape)[0];
    return copyConcat(backend, list, axis) ?? stockKernel('Concat')(args);
  };
}

/** AddN over any number of inputs: stock AddN on groups small enough to bind, then on the partial sums. */
function makeAddN(): tf.KernelFunc {
  return (args) => {
    const { inputs, backend } = args as unknown as { inputs: tf.TensorInfo[]; backend: WebgpuBackendLike };
    const stockAddN = stockKernel('AddN');
    const perGroup = Math.max(2, (backend.device.limits.maxStorageBuffersPerShaderStage ?? 8) - 1);
    let level: tf.TensorInfo[] = Array.from(inputs);
    const temps: tf.TensorInfo[] = [];
    while (level.length > perGroup) {
      const next: tf.TensorInfo[] = [];
      for (let i = 0; i < level.length; i += perGroup) {
        const group = level.slice(i, i + perGroup);
        if (group.length === 1) {
          next.push(group[0]);
          continue;
        }
        const partial = stockAddN({ ...args, inputs: group as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
        temps.push(partial);
        next.push(partial);
      }
      level = next;
    }
    const res = stockAddN({ ...args, inputs: level as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
    for (const t of temps) backend.disposeData(t.dataId);
    return res;
  };
}

function normAttrs(attrs: Record<string, unknown> | undefined): BnAttrs {
  const eps = attrs?.eps;
  if (typeof eps !== 'number' || !(eps > 0))
    throw new Error(`normalisation kernel: eps must be a positive number, got ${String(eps)}`);
  const groups = attrs?.groups ?? 1;
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups < 1)
    throw new Error(`normalisation kernel: groups must be a positive integer, got ${String(groups)}`);
  return { eps, relu: attrs?.relu === true, groups };
}

function checkFloat(what: string, ts: Array<tf.TensorInfo | undefined>): void {
  for (const t of ts) if (t && t.dtype !== 'float32') throw new Error(`${what}: float32 inputs only, got ${t.dtype}`);
}

/** Our kernels with no stock counterpart (names from lib/kernels/fused.ts). */
const FUSED_CONFIGS: tf.KernelConfig[] = [
  {
    kernelName: FUSED_KERNELS.batchNorm,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as Args;
      checkFloat(FUSED_KERNELS.batchNorm, [inputs.x, inputs.gamma, inputs.beta, inputs.residual]);
      return bnForward(
        backend as WebgpuBackendLike,
        inputs.x,
        inputs.gamma,
        inputs.beta,
        normAttrs(attrs),
        inputs.residual,
      );
    },
  },
  {
    kernelName: FUSED_KERNELS.batchNormGrad,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as Args;
      checkFloat(FUSED_KERNELS.batchNormGrad, [
        inputs.dy,
        inputs.x,
        inputs.stats,
        inputs.gamma,
        inputs.beta,
        inputs.residual,
      ]);
      return bnBackward(
        backend as WebgpuBackendLike,
        inputs.dy,
        inputs.x,
        inputs.stats,
        inputs.gamma,
        inputs.beta,
        normAttrs(attrs),
        inputs.residual,
      );
    },
  },
  {
    kernelName: FUSED_KERNELS.axpby,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { inputs, backend, attrs = {} } = args as unknown as Args;
      checkFloat(FUSED_KERNELS.axpby, [inputs.x, inputs.y]);
      return axpby(backend as WebgpuBackendLike, inputs.x, inputs.y, attrs.a as number, attrs.b as number);
    },
  },
  {
    kernelName: FUSED_KERNELS.adamFlat,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { inputs, backend, attrs = {} } = args as unknown as Args;
      const which = attrs.which;
      if (which !== 'm' && which !== 'v' && which !== 'p')
        throw new Error(`${FUSED_KERNELS.adamFlat}: which must be 'm', 'v' or 'p', got ${String(which)}`);
      checkFloat(FUSED_KERNELS.adamFlat, [inputs.g, inputs.scale, inputs.p, inputs.m, inputs.v]);
      const num = (k: string): number => {
        const x = attrs[k];
        if (typeof x !== 'number' || !Number.isFinite(x))
          throw new Error(`${FUSED_KERNELS.adamFlat}: ${k} must be a finite number, got ${String(x)}`);
        return x;
      };
      return adamFlat(backend as WebgpuBackendLike, which, inputs as Parameters<typeof adamFlat>[2], {
        lr: num('lr'),
        wd: num('wd'),
        beta1: num('beta1'),
        beta2: num('beta2'),
        eps: num('eps'),
        bc1: num('bc1'),
        bc2: num('bc2'),
        decoupled: attrs.decoupled === true,
      });
    },
  },
  {
    kernelName: FUSED_KERNELS.layerNorm,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as Args;
      checkFloat(FUSED_KERNELS.layerNorm, [inputs.x, inputs.gamma, inputs.beta]);
      return lnForward(backend as WebgpuBackendLike, inputs.x, inputs.gamma, inputs.beta, normAttrs(attrs).eps);
    },
  },
  {
    kernelName: FUSED_KERNELS.layerNormGrad,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as Args;
      checkFloat(FUSED_KERNELS.layerNormGrad, [inputs.dy, inputs.x, inputs.gamma]);
      return lnBackward(backend as WebgpuBackendLike, inputs.dy, inputs.x, inputs.gamma, normAttrs(attrs).eps);
    },
  },
  {
    kernelName: FUSED_KERNELS.gelu,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { inputs, backend } = args as unknown as Args;
      checkFloat(FUSED_KERNELS.gelu, [inputs.x]);
      return gelu(backend as WebgpuBackendLike, inputs.x);
    },
  },
  {
    kernelName: FUSED_KERNELS.geluGrad,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { inputs, backend } = args as unknown as Args;
      checkFloat(FUSED_KERNELS.geluGrad, [inputs.dy, inputs.x]);
      return gelu(backend as WebgpuBackendLike, inputs.x, inputs.dy);
    },
  },
  {
    kernelName: FUSED_KERNELS.batchNormRunning,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { inputs, backend, attrs = {} } = args as unknown as Args;
      const row = attrs.row === 1 ? 1 : 0;
      return bnRunning(
        backend as WebgpuBackendLike,
        inputs.running,
        inputs.stats,
        row,
        attrs.momentum as number,
        attrs.factor as number,
      );
    },
  },
];

/**
 * Replaces the stock webgpu kernels named in `opts.kernels` with ours (re-registering with new
 * options is allowed); returns the names now ours. The webgpu backend package must be loaded.
 */
export function registerWebgpuKernels(opts: Partial<WebgpuKernelOptions> = {}): string[] {
  const o: WebgpuKernelOptions = { ...WEBGPU_KERNEL_DEFAULTS, ...opts };
  for (const name of o.kernels) {
    if (!(WEBGPU_KERNEL_NAMES as readonly string[]).includes(name))
      throw new Error(`registerWebgpuKernels: unknown kernel ${name}; ours are ${WEBGPU_KERNEL_NAMES.join(', ')}`);
  }
  unregisterWebgpuKernels();
  const makers: Record<WebgpuKernelName, () => tf.KernelFunc> = {
    Conv2D: () => makeConv2D(o),
    Conv2DBackpropInput: () => makeConv2DBackpropInput(o),
    Conv2DBackpropFilter: () => makeConv2DBackpropFilter(o),
    Sum: () => makeReduce('Sum', o),
    Mean: () => makeReduce('Mean', o),
    AddN: () => makeAddN(),
    BatchMatMul: () => deterministicMatMul(stockKernel('BatchMatMul')),
    _FusedMatMul: () => deterministicMatMul(stockKernel('_FusedMatMul')),
    Slice: () => makeSlice(),
    SplitV: () => makeSplitV(),
    Concat: () => makeConcat(),
  };
  for (const name of o.kernels) {
    const k = tf.getKernel(name, BACKEND);
    if (!k)
      throw new Error(
        `registerWebgpuKernels: no stock ${name} kernel for '${BACKEND}'; require('@tensorflow/tfjs-backend-webgpu') first`,
      );
    stock.set(name, k);
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc: makers[name]() });
  }
  if (o.writeBufferUploads) installWriteBufferUploads();
  if (o.fusedOps) for (const k of FUSED_CONFIGS) tf.registerKernel(k);
  registerCapabilities(BACKEND, { groupedBatchNorm: o.fusedOps });
  return [...o.kernels, ...(o.fusedOps ? FUSED_CONFIGS.map((k) => k.kernelName) : [])];
}

/** Puts the stock kernels and the stock upload path back (A/B comparisons in one process). */
export function unregisterWebgpuKernels(): void {
  uninstallWriteBufferUploads();
  for (const k of FUSED_CONFIGS) if (tf.getKernel(k.kernelName, BACKEND)) tf.unregisterKernel(k.kernelName, BACKEND);
  registerCapabilities(BACKEND, { groupedBatchNorm: false });
  for (const [name, k] of stock) {
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel(k);
  }
  stock.clear();
}

/** Names of the kernels currently ours. */
export function activeWebgpuKernels(): string[] {
  return [
    ...stock.keys(),
    ...FUSED_CONFIGS.filter((k) => tf.getKernel(k.kernelName, BACKEND)).map((k) => k.kernelName),
  ];
}

// The pool is the backend's own (stock kernels use it too): its trim is a capability either way.
registerCapabilities(BACKEND, { releaseCachedMemory: trimGpuPool });
addKernelRegistrar(BACKEND, () => (process.env[WEBGPU_KERNELS_ENV] === 'stock' ? [] : registerWebgpuKernels()));
