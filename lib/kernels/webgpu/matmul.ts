/**
 * Deterministic matrix products on tfjs' WebGPU backend. For a single product (batch 1) with a
 * long inner dimension (>= 2000) and a small output (at most `threshold` tiles of 32x32; 8 on
 * non-Intel GPUs), tfjs 4.22 picks `MatMulSplitKProgram`, whose workgroups add their partial sums
 * into the output with float atomics: the result depends on the order they finish in, so the same
 * training step gives different losses from the same state. Seen on lavapipe: a Barlow Twins step
 * with a 2048-wide projector at batch 2 gave 24,710.06 and 24,710.01 in one process, and with a
 * 256-wide projector (no split-K) the same value every time. Real batch sizes do not reach that
 * path (an output of 512 x 2048 has 1,024 tiles), but smoke runs, tests and small ablations do.
 *
 * For exactly those shapes we ask tfjs for its small-output program (`MatMulSmallOutputSizeProgram`:
 * every output element summed by one thread, no atomics) through its WEBGPU_MATMUL_PROGRAM_TYPE
 * flag, for that call only; every other product runs as tfjs chooses. A flag the user set is left
 * alone. The decision mirrors tfjs-backend-webgpu's `batchMatMulImpl` (4.22).
 */
import * as tf from '@tensorflow/tfjs';

const PROGRAM_FLAG = 'WEBGPU_MATMUL_PROGRAM_TYPE';
const THRESHOLD_FLAG = 'WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL';
/** tfjs' MatMulProgramType.MatMulSmallOutputSizeProgram. */
const SMALL_OUTPUT_PROGRAM = 2;

/**
 * Whether tfjs would run this product as the atomic split-K program: `a` x `b` (optionally
 * transposed), `threshold` = tfjs' workgroup threshold for the adapter.
 */
export function matmulWouldSplitK(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
  threshold: number,
): boolean {
  const ra = aShape.length;
  const rb = bShape.length;
  if (ra < 2 || rb < 2) return false;
  const inner = transposeB ? bShape[rb - 1] : bShape[rb - 2];
  const outerA = transposeA ? aShape[ra - 1] : aShape[ra - 2];
  const outerB = transposeB ? bShape[rb - 2] : bShape[rb - 1];
  const batch = Math.max(tf.util.sizeFromShape(aShape.slice(0, -2)), tf.util.sizeFromShape(bShape.slice(0, -2)));
  const tiles = batch * Math.ceil(outerA / 32) * Math.ceil(outerB / 32);
  const few = tiles <= threshold || (outerA <= 8 && tiles <= threshold * 2);
  return few && batch * outerA * outerB > 128 && batch === 1 && inner >= 2000;
}

type Args = { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs?: Record<string, unknown> };

/**
 * Wraps tfjs' `BatchMatMul` or `_FusedMatMul` kernel so that the products it would run with
 * float atomics run without them (see above).
 */
export function deterministicMatMul(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, backend, attrs = {} } = args as unknown as Args;
    const env = tf.env();
    const chosen = env.getNumber(PROGRAM_FLAG);
    if (chosen >= 0) return stock(args);
    const flagged = env.getNumber(THRESHOLD_FLAG);
    const threshold =
      flagged > 0
        ? flagged
        : ((backend as { thresholdToIncreaseWorkgroups?: number }).thresholdToIncreaseWorkgroups ?? 8);
    if (
      !matmulWouldSplitK(
        inputs.a.shape,
        inputs.b.shape,
        attrs.transposeA === true,
        attrs.transposeB === true,
        threshold,
      )
    )
      return stock(args);
    env.set(PROGRAM_FLAG, SMALL_OUTPUT_PROGRAM);
    try {
      return stock(args);
    } finally {
      env.set(PROGRAM_FLAG, chosen);
    }
  };
}
