/**
 * An encoder exported for PyTorch, with the proof that the file is the encoder: the run's checkpoint
 * is written as .safetensors (exportWeights), read back into a freshly built network (importWeights)
 * and run beside the run's own encoder on the same images; the features must be identical. Also a
 * few tensors of the file beside their shapes here, to show PyTorch's layouts. Notebook 08 shows it.
 */
import { extractFeatures } from '../eval/features';
import { readSafetensors } from './safetensors';
import {
  BackboneWithParams,
  ExportSummary,
  exportWeights,
  importWeights,
  loadRunEncoder,
  WeightsError,
} from './weights';

/** Tensors of a CIFAR ResNet file shown by default: a conv, batch-norm statistics, the counter PyTorch keeps, a strided block. */
export const EXPORT_SHOWN_TENSORS: readonly string[] = Object.freeze([
  'conv1.weight',
  'bn1.running_var',
  'bn1.num_batches_tracked',
  'layer2.0.conv1.weight',
  'layer2.0.downsample.0.weight',
]);

export interface ExportCheckOptions {
  /** Images whose features are compared (the first ones given). */
  images: number;
  /** Tensors of the file to list (those the file lacks are left out). */
  show: readonly string[];
}

export const DEFAULT_EXPORT_CHECK_OPTIONS: Readonly<ExportCheckOptions> = Object.freeze({
  images: 64,
  show: EXPORT_SHOWN_TENSORS,
});

/** One listed tensor: its dtype and shape in the file (PyTorch) and here (tfjs). A type, not an interface, so it is a table row (Record<string, unknown>). */
export type ExportedTensorRow = {
  name: string;
  dtype: string;
  'shape in the file (PyTorch)': string;
  'shape here (tfjs)': string;
};

export interface ExportCheck {
  summary: ExportSummary;
  /** Tensors in the file. */
  count: number;
  tensors: ExportedTensorRow[];
  /** Largest |difference| between the features of the file's encoder and the run's: 0. */
  maxDiff: number;
  /** Feature values compared. */
  values: number;
  /** One line saying what was written and compared. */
  line: string;
}

/**
 * Features of `images` (uint8 NHWC [n, 32, 32, 3]) under the encoder in `file` and under `original`:
 * the largest |difference| over all values. Throws a WeightsError unless they are identical.
 */
export async function compareWithFile(
  file: string,
  original: BackboneWithParams,
  images: Uint8Array,
  n: number,
): Promise<{ maxDiff: number; values: number }> {
  const imported = importWeights(file);
  try {
    const [a, b] = await Promise.all(
      [imported, original].map((m) => extractFeatures(m.backbone, m.params, images.subarray(0, n * 3072), n)),
    );
    if (a.length !== b.length)
      throw new WeightsError(
        `${file}: its encoder gives ${a.length / n} features per image, the original ${b.length / n}`,
      );
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    if (maxDiff !== 0 || Number.isNaN(maxDiff))
      throw new WeightsError(
        `${file} does not reproduce the encoder: features differ by up to ${maxDiff} over ${a.length} values of ${n} images`,
      );
    return { maxDiff, values: a.length };
  } finally {
    imported.params.dispose();
  }
}

/**
 * Exports the encoder of run folder `run` to `file` (atomically) and checks it: read back, it gives
 * the run's own features on the first `images` of `sample`, bit for bit (else a WeightsError).
 */
export async function exportAndCheck(
  run: string,
  file: string,
  sample: { images: Uint8Array; n: number },
  options: Partial<ExportCheckOptions> = {},
): Promise<ExportCheck> {
  const o = { ...DEFAULT_EXPORT_CHECK_OPTIONS, ...options };
  const n = Math.min(o.images, sample.n);
  if (!Number.isInteger(n) || n < 1)
    throw new WeightsError(
      `exportAndCheck: need at least one image to compare, got images=${o.images} of a sample of ${sample.n}`,
    );
  const summary = await exportWeights(run, file);
  const original = loadRunEncoder(run);
  try {
    const { maxDiff, values } = await compareWithFile(file, original, sample.images, n);
    const contents = readSafetensors(file);
    const tensors = o.show
      .filter((name) => contents.tensors.has(name))
      .map((name) => {
        const t = contents.tensors.get(name)!;
        const here = `backbone.${name}`;
        return {
          name,
          dtype: t.dtype,
          'shape in the file (PyTorch)': `[${t.shape.join(', ')}]`,
          'shape here (tfjs)': original.params.has(here)
            ? `[${original.params.get(here).shape.join(', ')}]`
            : '(not a parameter: read and ignored)',
        };
      });
    const line =
      `wrote ${file}: ${summary.tensors} tensors, ${(summary.bytes / 1024).toFixed(0)} KiB, backbone ${JSON.stringify(summary.backbone)}; ` +
      `read back, its features equal the run's (max |difference| ${maxDiff} over ${values} values of ${n} images)`;
    return { summary, count: contents.tensors.size, tensors, maxDiff, values, line };
  } finally {
    original.params.dispose();
  }
}
