/**
 * The small slice of tfjs-backend-webgpu (4.22) our kernels use, typed locally so nothing here
 * deep-imports the backend: a program object the backend compiles (`WebGPUProgram` in
 * tfjs-backend-webgpu/src/webgpu_program.ts) and `backend.runWebGPUProgram` that binds the output
 * (binding 0, `result`), the inputs (bindings 1.., named by `variableNames`) and a uniform struct.
 *
 * Our shaders bake every size into WGSL constants (division by a constant is cheap) and put them
 * in `shaderKey`, so one compiled pipeline serves one layer shape. They use the backend's
 * `localId`, `localIndex` and `workgroupId` privates and define `fn main()`.
 */
import * as tf from '@tensorflow/tfjs';

/** What tfjs-backend-webgpu needs from a program (see its WebGPUProgram interface). */
export interface WgslProgram {
  /** Cache key; the backend appends input/output ranks and dtypes. Must name every baked constant. */
  shaderKey: string;
  /** Output shape (metadata: our shaders index `result` flat). */
  outputShape: number[];
  /** Names of the input bindings, in order. */
  variableNames: string[];
  /** Workgroup size. */
  workgroupSize: [number, number, number];
  /** Number of workgroups. */
  dispatch: [number, number, number];
  /** Must have a non-empty `y` so the backend calls `main()` without an index. */
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  /** WGSL: workgroup variables, helpers and `fn main()`. */
  getUserCode: () => string;
  /**
   * Extra uniform fields (e.g. `a : f32, b : f32,`), read as `uniforms.a`; their values go to
   * `runWebGPUProgram` as `[{ type: 'float32', data: [a] }, ...]` in the same order. For values that
   * change between calls (a schedule), where baking a constant would compile a shader per value.
   */
  uniforms?: string;
  /**
   * Components of each input binding (1: `array<f32>`, 4: `array<vec4<f32>>`), in `variableNames`
   * order; all 1 when absent. A vec4 binding's tensor must hold a multiple of 4 values.
   */
  variableComponents?: number[];
}

/** The WebGPU backend as our kernels see it. */
export interface WebgpuBackendLike {
  runWebGPUProgram(
    program: WgslProgram,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    uniforms?: unknown[],
    output?: tf.TensorInfo,
  ): tf.TensorInfo;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  device: { limits: { maxComputeWorkgroupsPerDimension: number; maxStorageBuffersPerShaderStage?: number } };
}

/**
 * A statement every `main()` must contain: the backend always binds its uniform buffer, and a
 * pipeline built with layout 'auto' keeps only bindings the shader statically uses.
 */
export const USE_UNIFORMS = '_ = uniforms.NAN;';

/**
 * Shader keys whose code passed `wgslProgram`'s checks. A key names everything its code bakes in,
 * so one check per key suffices: the code itself is built only when tfjs compiles a new pipeline,
 * not at every dispatch (it is large for the GEMMs, and building it per call was CPU time per step).
 */
const checkedKeys = new Set<string>();

/** A program with our defaults (2-D dispatch layout so `main()` takes no index). */
export function wgslProgram(p: Omit<WgslProgram, 'dispatchLayout'>): WgslProgram {
  const code = p.getUserCode;
  if (!checkedKeys.has(p.shaderKey)) {
    const src = code();
    if (!src.includes(USE_UNIFORMS)) throw new Error(`${p.shaderKey}: main() must contain USE_UNIFORMS`);
    if (p.variableNames.length > 0 && !src.includes('fn main() {'))
      throw new Error(`${p.shaderKey}: the shader must define \`fn main() {\``);
    checkedKeys.add(p.shaderKey);
  }
  const max = 65535;
  for (const d of p.dispatch) {
    if (!Number.isInteger(d) || d < 1 || d > max)
      throw new Error(`${p.shaderKey}: dispatch ${JSON.stringify(p.dispatch)} outside 1..${max}`);
  }
  // A pipeline with layout 'auto' drops bindings the shader never uses, and the backend binds every
  // input: a variant that skips an input (e.g. no weight decay) would fail validation and drop the
  // whole command buffer. One phony read per input keeps every binding.
  const touch = p.variableNames.map((n) => `_ = ${n}[0];`).join(' ');
  const getUserCode = touch ? () => code().replace('fn main() {', `fn main() {\n        ${touch}`) : code;
  return { ...p, getUserCode, dispatchLayout: { x: [0], y: [1] } };
}

/** Test hook: when set, every temporary buffer our kernels allocate starts as NaN. */
const debug = { poisonTemporaries: false };

/** Turns NaN-filled temporaries on/off (tests use it to prove every element is written). */
export function setPoisonTemporaries(on: boolean): void {
  debug.poisonTemporaries = on;
}

/**
 * A float32 buffer of `shape` (new, or `out`), every element `value`, written on the GPU (no CPU
 * copy, so a later read really comes from the GPU buffer). Tests use it to poison outputs with NaN.
 */
export function gpuFill(
  backend: WebgpuBackendLike,
  shape: number[],
  value: number,
  out?: tf.TensorInfo,
): tf.TensorInfo {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Number.isNaN(value) ? 'uniforms.NAN' : f32(value);
  const prog = gridProgram({
    shaderKey: `dtFill_${n}_${Number.isNaN(value) ? 'nan' : f32(value)}`,
    outputShape: shape,
    variableNames: [],
    n,
    body: `result[i] = ${v};`,
  });
  return backend.runWebGPUProgram(prog, [], 'float32', undefined, out ?? backend.makeTensorInfo(shape, 'float32'));
}

/**
 * A program whose 256-thread workgroups visit every index < n once (`gridStride`; the index is
 * `i`, or `index`): `decls` (constants, helper functions) at module scope, `body` per index. The
 * workgroup count is appended to the shader key.
 */
export function gridProgram(
  p: Omit<WgslProgram, 'dispatchLayout' | 'workgroupSize' | 'dispatch' | 'getUserCode'> & {
    n: number;
    body: string;
    decls?: string;
    index?: string;
  },
): WgslProgram {
  const { n, body, decls = '', index = 'i', ...rest } = p;
  const { groups, loop } = gridStride(n);
  return wgslProgram({
    ...rest,
    shaderKey: `${p.shaderKey}_${groups}`,
    workgroupSize: [256, 1, 1],
    dispatch: [groups, 1, 1],
    getUserCode: () => `${decls}
      fn main() {
        ${USE_UNIFORMS}
        ${loop(body, index)}
      }`,
  });
}

/** Allocates a float32 temporary on the backend (NaN-filled under `setPoisonTemporaries(true)`). */
export function allocTemp(backend: WebgpuBackendLike, shape: number[]): tf.TensorInfo {
  if (!debug.poisonTemporaries) return backend.makeTensorInfo(shape, 'float32');
  return gpuFill(backend, shape, NaN);
}

/** Frees a temporary made by `allocTemp` (or an intermediate program output). */
export function freeTemp(backend: WebgpuBackendLike, t: tf.TensorInfo): void {
  backend.disposeData(t.dataId);
}

/**
 * Elementwise kernels: 256-thread workgroups, at most `maxGroups` of them (each thread then loops),
 * and the WGSL loop that visits every index `v` < n once.
 */
function gridStride(n: number, maxGroups = 8192): { groups: number; loop: (body: string, v?: string) => string } {
  const groups = Math.max(1, Math.min(ceilDiv(n, 256), maxGroups));
  const loop = (body: string, v = 'i'): string =>
    `for (var ${v} = i32(workgroupId.x) * 256 + i32(localIndex); ${v} < ${i32(n)}; ${v} = ${v} + ${i32(groups * 256)}) {\n          ${body}\n        }`;
  return { groups, loop };
}

/** `ceil(a / b)` for positive integers. */
export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

/** Formats an integer as a WGSL i32 literal. */
export function i32(v: number): string {
  if (!Number.isInteger(v) || Math.abs(v) > 2 ** 31 - 1) throw new Error(`not an i32: ${v}`);
  return `${v}`;
}

/** Formats a number as a WGSL f32 literal (exact for float32 values). */
export function f32(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`not a finite f32: ${v}`);
  const s = Math.fround(v).toPrecision(9);
  return s.includes('.') || s.includes('e') ? s : `${s}.0`;
}
