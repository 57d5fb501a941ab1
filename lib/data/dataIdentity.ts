/**
 * What a run trained on, as far as it changes the training images: the data set's source and its
 * checksum, and the selection taken from it (the class-balanced subset, the validation split and
 * their seed). It is half of a run's identity (lib/train/runName.ts): other data is another run.
 * Each data source supplies its own `source` and `checksum` through the same fields (CIFAR-10: a
 * digest of its six batch files' MD5s; an image folder: 'folder' and its manifest's hash, which covers
 * every image's content, label and path and the store size, so a changed folder is other data).
 */
import { createHash } from 'crypto';
import { BATCH_FILES, OFFICIAL_MD5, type BatchFile } from './format';

/** A data set before any split: what it is and a digest of its content. */
export interface SourceIdentity {
  /** 'cifar10' (the batch files), 'cifar10-fixture' (the generated stand-in), 'folder' (an image folder), 'memory' (images a caller passed). */
  source: string;
  /** Hex digest of the source's content. */
  checksum: string;
}

/** The training data of a run: its source, and what was selected from it. */
export interface DataIdentity extends SourceIdentity {
  /** Class-balanced training subset, images per class (0: all that remain after the validation split; an unlabelled folder: 10 x this many images). */
  perClass: number;
  /** Validation images per class, taken from the training set before the subset (an image folder: a count, or a fraction of each class). */
  valPerClass: number;
  /** Seed of the validation split and the subset. */
  splitSeed: number;
  /** Test images per class an image folder keeps out of training (a count or a fraction of each class); absent for data sets with their own test set. */
  testPerClass?: number;
}

/** The fields of a DataIdentity, in order (records and error messages list them so). */
export const DATA_IDENTITY_KEYS = [
  'source',
  'checksum',
  'perClass',
  'valPerClass',
  'splitSeed',
  'testPerClass',
] as const satisfies readonly (keyof DataIdentity)[];

/** sha256 over `parts`, 16 hex digits. */
export function digest(parts: Iterable<Uint8Array | string>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}

/** CIFAR-10's checksum: a digest of each batch file's name and MD5, in the layout's order. */
export function cifar10Checksum(md5: Readonly<Record<BatchFile, string>>): string {
  return digest(BATCH_FILES.map((f) => `${f} ${md5[f]}\n`));
}

/** The official CIFAR-10 (what loadCifar10 accepts as real data), without loading it. */
export const CIFAR10_SOURCE: Readonly<SourceIdentity> = Object.freeze({
  source: 'cifar10',
  checksum: cifar10Checksum(OFFICIAL_MD5),
});

/** The identity of `n` images a caller passed as they are (no split): a digest of their bytes. */
export function memoryIdentity(images: Uint8Array): DataIdentity {
  return { source: 'memory', checksum: digest([images]), perClass: 0, valPerClass: 0, splitSeed: 0 };
}

/** `d` with exactly the identity's fields, in order (a record's copy carries nothing else; `testPerClass` only where set). */
export function dataIdentityOf(d: DataIdentity): DataIdentity {
  const out: DataIdentity = {
    source: d.source,
    checksum: d.checksum,
    perClass: d.perClass,
    valPerClass: d.valPerClass,
    splitSeed: d.splitSeed,
  };
  if (d.testPerClass !== undefined) out.testPerClass = d.testPerClass;
  return out;
}
