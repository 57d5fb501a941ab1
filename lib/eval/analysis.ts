/**
 * Analyses of a trained model for the notebooks: the Barlow cross-correlation matrix on a batch
 * of view pairs, DINO teacher/student output distributions, and ViT CLS attention maps. All run
 * the networks in inference mode (running statistics, nothing updated) on validation images.
 */
import * as tf from '@tensorflow/tfjs';
import { SslModel, PREFIX } from '../methods/method';
import { makeViews } from '../augment/pipeline';
import { crossCorrelationParts } from '../losses/barlow';
import { crossCorrelationSummary, CrossCorrelationStats } from '../losses/stepMonitors';
import { evalImages, RawImageSize } from '../augment/normalize';
import { ForwardContext } from '../nn/layers';
import { imageSizeOf } from './features';
import type { ImageSet } from './knnMonitor';

const EVAL: ForwardContext = { training: false };

/**
 * The images an analysis reads: a split (`data.val`; its height and width are used), or its raw bytes, then
 * 32 x 32 (CIFAR-10). Pass the split for an image folder of another size.
 */
export type AnalysisImages = Uint8Array | ImageSet;

/** The first `n` images of `images`, and their size. */
function firstImages(images: AnalysisImages, n: number): { bytes: Uint8Array; size: RawImageSize } {
  const size = images instanceof Uint8Array ? imageSizeOf({}) : imageSizeOf(images);
  const all = images instanceof Uint8Array ? images : images.images;
  const per = size.height * size.width * 3;
  if (!Number.isInteger(n) || n < 1 || n * per > all.length)
    throw new Error(
      `analysis: asked for ${n} images of ${size.height}x${size.width}x3, there are ${Math.floor(all.length / per)}`,
    );
  return { bytes: all.subarray(0, n * per), size };
}

/** The two global training views of the first `n` images (local views are disposed at once). */
function globalViews(m: SslModel, images: AnalysisImages, n: number, seed: number): tf.Tensor4D[] {
  const { bytes, size } = firstImages(images, n);
  const all = makeViews(bytes, m.views, seed, size);
  tf.dispose(all.slice(2));
  return all.slice(0, 2);
}

/** Barlow cross-correlation C [D, D] between projections of two augmented views of `n` images. */
export async function crossCorrelationMatrix(
  m: SslModel,
  images: AnalysisImages,
  n: number,
  seed = 1234,
): Promise<{ matrix: Float32Array; dim: number; stats: CrossCorrelationStats }> {
  if (!m.projector && !m.head)
    throw new Error('crossCorrelationMatrix: the model has neither a projector nor a DINO head');
  const views = globalViews(m, images, n, seed);
  const [c, summary] = tf.tidy(() => {
    const z = views.map((v) => {
      const f = m.backbone.forward(m.student, v, EVAL, PREFIX.backbone);
      return m.projector
        ? m.projector.forward(m.student, f, EVAL, PREFIX.projector)
        : m.head!.forward(m.student, f, EVAL, PREFIX.head);
    });
    const parts = crossCorrelationParts(z[0], z[1]);
    const s = crossCorrelationSummary(parts.c, parts.diag);
    return [parts.c, tf.stack([s.diagMean, s.offDiagMean, s.offDiagAbsMean])];
  });
  tf.dispose(views);
  const st = await summary.data();
  const out = {
    matrix: (await c.data()) as Float32Array,
    dim: c.shape[0],
    stats: { diagMean: st[0], offDiagMean: st[1], offDiagAbsMean: st[2] },
  };
  tf.dispose([c, summary]);
  return out;
}

export interface DinoDistributions {
  /** Mean over images of the teacher probabilities sorted in decreasing order [K]. */
  teacherSorted: Float32Array;
  /** The same for the student (global view 1). */
  studentSorted: Float32Array;
  /** Per-image maximum teacher probability. */
  teacherMax: Float32Array;
  /** How many prototypes are ever the teacher's argmax, out of K. */
  prototypesUsed: number;
  k: number;
}

/** Teacher (centred, teacher temperature) and student (student temperature) output distributions on two global views. */
export async function dinoDistributions(
  m: SslModel,
  images: AnalysisImages,
  n: number,
  temps: { teacherTemp: number; studentTemp: number },
  seed = 1234,
): Promise<DinoDistributions> {
  if (!m.head || !m.center) throw new Error('dinoDistributions: the model has no DINO head');
  const views = globalViews(m, images, n, seed);
  const [pt, ps] = tf.tidy(() => {
    const teacherPs = m.teacher ?? m.student;
    const t = m.head!.forward(
      teacherPs,
      m.backbone.forward(teacherPs, views[0], EVAL, PREFIX.backbone),
      EVAL,
      PREFIX.head,
    );
    const s = m.head!.forward(
      m.student,
      m.backbone.forward(m.student, views[1], EVAL, PREFIX.backbone),
      EVAL,
      PREFIX.head,
    );
    const c = m.center!; // 0 throughout without centering
    return [tf.softmax(tf.div(tf.sub(t, c), temps.teacherTemp)), tf.softmax(tf.div(s, temps.studentTemp))];
  });
  tf.dispose(views);
  const k = pt.shape[1]!;
  const [tv, sv] = [(await pt.data()) as Float32Array, (await ps.data()) as Float32Array];
  tf.dispose([pt, ps]);
  const meanSorted = (v: Float32Array) => {
    const acc = new Float64Array(k);
    const row = new Float32Array(k);
    for (let i = 0; i < n; i++) {
      row.set(v.subarray(i * k, (i + 1) * k));
      row.sort().reverse();
      for (let j = 0; j < k; j++) acc[j] += row[j] / n;
    }
    return Float32Array.from(acc);
  };
  const teacherMax = new Float32Array(n);
  const used = new Set<number>();
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (tv[i * k + j] > tv[i * k + best]) best = j;
    teacherMax[i] = tv[i * k + best];
    used.add(best);
  }
  return { teacherSorted: meanSorted(tv), studentSorted: meanSorted(sv), teacherMax, prototypesUsed: used.size, k };
}

/**
 * ViT CLS-token attention of the last block, per head, for `n` images (no augmentation), as
 * [n][heads] maps of gridSize x gridSize patches (values sum to 1 over patches).
 */
export async function clsAttentionMaps(
  m: SslModel,
  images: AnalysisImages,
  n: number,
  useTeacher = true,
): Promise<{ maps: Float32Array[][]; grid: number; heads: number }> {
  if (m.backbone.kind !== 'vit') throw new Error(`clsAttentionMaps: needs a ViT backbone, got ${m.backbone.kind}`);
  const ps = useTeacher && m.teacher ? m.teacher : m.student;
  const attn: tf.Tensor4D[] = [];
  const first = firstImages(images, n);
  const x = evalImages(first.bytes, first.size);
  tf.tidy(() => {
    m.backbone.forward(ps, x, { training: false, attention: attn }, PREFIX.backbone);
  });
  x.dispose();
  if (attn.length === 0) throw new Error('clsAttentionMaps: the backbone reported no attention weights');
  const last = attn[attn.length - 1]; // [n, heads, T, T]
  const [, heads, T] = last.shape;
  const grid = Math.round(Math.sqrt(T - 1));
  const cls = tf.tidy(() => {
    const a = tf.slice(last, [0, 0, 0, 1], [-1, -1, 1, -1]); // CLS row, patch columns: [n, heads, 1, T-1]
    return tf.div(a, tf.sum(a, -1, true));
  });
  const v = (await cls.data()) as Float32Array;
  tf.dispose([cls, ...attn]);
  const maps: Float32Array[][] = [];
  const P = T - 1;
  for (let i = 0; i < n; i++) {
    const row: Float32Array[] = [];
    for (let h = 0; h < heads; h++) row.push(v.slice((i * heads + h) * P, (i * heads + h + 1) * P));
    maps.push(row);
  }
  return { maps, grid, heads };
}
