/**
 * Seeded train/validation/test splits of an image folder, by file and per class when labelled.
 *
 * Within each class the files are ranked by a seeded hash of their relative path; the first `test` files are
 * the test split, the next `val` the validation split, the rest training. The assignment depends only on the
 * seed and the set of paths (not on row or directory-listing order). Adding or removing files can move files
 * near a boundary between splits; such a folder also has another manifest hash, hence another run identity.
 */
import * as crypto from 'crypto';
import { ImageFolderError } from './errors';

export interface FileSplitOptions {
  /** Validation images per class: a fraction in (0, 1) of each class (rounded, at least one), an integer >= 1 (images per class), or 0 for none. */
  val: number;
  /** Test images per class, as `val`. */
  test: number;
  /** Seed of the ranking. */
  seed: number;
}

/** Row numbers (into the rows given) of each split, ascending. */
export interface FileSplit {
  train: Int32Array;
  val: Int32Array;
  test: Int32Array;
}

function checkPart(v: number, name: string): void {
  const ok = v === 0 || (v > 0 && v < 1) || (Number.isInteger(v) && v >= 1);
  if (!ok)
    throw new ImageFolderError(
      'split',
      `${name} must be a fraction in (0, 1), an integer >= 1 (images per class) or 0, got ${v}`,
      { expected: 'a fraction, a count or 0', actual: String(v) },
    );
}

/** Images of a class of `k` taken by `spec` (see FileSplitOptions). */
export function partCount(spec: number, k: number): number {
  if (spec === 0) return 0;
  return spec < 1 ? Math.max(1, Math.round(spec * k)) : spec;
}

/** Checks the options; throws an ImageFolderError('split') that names the bad value. */
export function checkSplitOptions(o: FileSplitOptions): void {
  checkPart(o.val, 'val');
  checkPart(o.test, 'test');
  if (o.val < 1 && o.test < 1 && o.val + o.test >= 1)
    throw new ImageFolderError('split', `val + test must leave images for training, got ${o.val} + ${o.test}`, {
      expected: 'val + test < 1',
      actual: String(o.val + o.test),
    });
  if (!Number.isInteger(o.seed))
    throw new ImageFolderError('split', `seed must be an integer, got ${o.seed}`, {
      expected: 'an integer',
      actual: String(o.seed),
    });
}

/** The seeded rank key of a path. */
function rankKey(seed: number, p: string): string {
  return crypto.createHash('sha256').update(`${seed}\0${p}`).digest('hex').slice(0, 16);
}

/**
 * Splits `rows` (each with its relative path and, when labelled, label in [0, classNames.length)) per class.
 * Unlabelled rows form one group. Throws ImageFolderError('split') when a class would have no training image.
 */
export function splitFiles(
  rows: readonly { path: string; label?: number }[],
  o: FileSplitOptions,
  classNames: readonly string[],
): FileSplit {
  checkSplitOptions(o);
  const labelled = classNames.length > 0;
  const groups: number[][] = Array.from({ length: Math.max(1, classNames.length) }, () => []);
  rows.forEach((r, i) => {
    const g = labelled ? (r.label as number) : 0;
    if (!(g >= 0 && g < groups.length))
      throw new Error(`splitFiles: row ${i} (${r.path}) has label ${r.label}, outside [0, ${classNames.length})`);
    groups[g].push(i);
  });
  const parts = { train: [] as number[], val: [] as number[], test: [] as number[] };
  groups.forEach((g, c) => {
    const nTest = partCount(o.test, g.length);
    const nVal = partCount(o.val, g.length);
    if (nTest + nVal >= g.length) {
      const who = labelled ? `class '${classNames[c]}' has` : 'the folder has';
      throw new ImageFolderError(
        'split',
        `${who} ${g.length} image(s): test ${o.test} and val ${o.val} take ${nTest} + ${nVal}, leaving none for training; add images, or lower val/test (0 turns a split off)`,
        { expected: `more than ${nTest + nVal} images${labelled ? ' per class' : ''}`, actual: `${g.length}` },
      );
    }
    const keyed = g.map((i) => ({ i, key: rankKey(o.seed, rows[i].path) }));
    keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.i - b.i));
    keyed.forEach(({ i }, rank) => (rank < nTest ? parts.test : rank < nTest + nVal ? parts.val : parts.train).push(i));
  });
  const sorted = (a: number[]) => Int32Array.from(a).sort();
  return { train: sorted(parts.train), val: sorted(parts.val), test: sorted(parts.test) };
}
