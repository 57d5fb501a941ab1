/**
 * Real CIFAR-10 when it can be found, else the synthetic fixture: what notebooks call, so that they
 * run in CI without the data. Only "not found" (and a failed download) falls back; a corrupt copy
 * is still an error, because silently training on the fixture would hide it.
 */
import { performance } from 'perf_hooks';
import { CIFAR10_ENV, loadCifar10, type Cifar10, type LoadCifar10Options } from './cifar10';
import { DataError } from './errors';
import { FIXTURE_DEFAULTS, generateFixture, type FixtureOptions } from './fixture';
import { digest } from './dataIdentity';

/** Environment variable choosing the data: 'auto' (default), 'real' or 'fixture'. */
export const DATA_MODE_ENV = 'DINOTWINS_DATA';
export const DATA_MODES = ['auto', 'real', 'fixture'] as const;
export type DataMode = (typeof DATA_MODES)[number];

export interface LoadOrFixtureOptions extends LoadCifar10Options {
  /** 'auto': real data, the fixture when none is found; 'real': real data or an error; 'fixture': always the fixture. Default: $DINOTWINS_DATA, else 'auto'. */
  mode?: DataMode;
  /** The fixture to generate (in memory) when it is used. Default FIXTURE_DEFAULTS (100 records per batch file). */
  fixture?: FixtureOptions;
}

export interface Cifar10OrFixture extends Cifar10 {
  /** Why the fixture was used, when it was. */
  fallbackReason?: string;
}

function parseMode(v: string | undefined, from: string): DataMode {
  const m = (v ?? 'auto').trim().toLowerCase() || 'auto';
  if ((DATA_MODES as readonly string[]).includes(m)) return m as DataMode;
  throw new Error(`${from}="${v}" is not a data mode; valid values: ${DATA_MODES.join(', ')}`);
}

/** Loads CIFAR-10 (see loadCifar10) or, per `mode`, the synthetic fixture with source kind 'fixture'. */
export async function loadCifar10OrFixture(opts: LoadOrFixtureOptions = {}): Promise<Cifar10OrFixture> {
  const env = opts.env ?? process.env;
  const mode = opts.mode !== undefined ? parseMode(opts.mode, 'mode') : parseMode(env[DATA_MODE_ENV], DATA_MODE_ENV);
  let reason: string;
  if (mode === 'fixture') {
    reason = opts.mode !== undefined ? "mode 'fixture'" : `${DATA_MODE_ENV}=fixture`;
  } else {
    try {
      return await loadCifar10(opts);
    } catch (e) {
      const notFound = e instanceof DataError && (e.code === 'source' || e.code === 'download');
      if (mode === 'real' || !notFound) throw e;
      reason = `real CIFAR-10 unavailable (${e.message.split('. ')[0]}); set ${CIFAR10_ENV} or allow the download for real data`;
    }
  }
  const t0 = performance.now();
  const f = { ...FIXTURE_DEFAULTS, ...opts.fixture };
  const { train, test, classNames } = generateFixture(f);
  const seconds = (performance.now() - t0) / 1000;
  const line = `cifar10: FIXTURE (synthetic, ${f.recordsPerBatch} records per batch file, seed ${f.seed}) because ${reason}; ${train.n} train + ${test.n} test`;
  return {
    train: { ...train, role: 'train' },
    test: { ...test, role: 'test' },
    classNames,
    source: {
      kind: 'fixture',
      location: 'generated in memory',
      folder: '',
      extracted: false,
      verification: 'none (generated)',
      line,
    },
    identity: { source: 'cifar10-fixture', checksum: digest([train.images, train.labels, test.images, test.labels]) },
    seconds,
    fallbackReason: reason,
  };
}
