/**
 * Experiment orchestration shared by the notebooks and the CLI: data for a budget (CIFAR-10 with the
 * validation split taken from the training set and the test set kept for the final report, or an
 * image folder with its own seeded splits), pretraining with a kNN monitor, baselines, and the
 * frozen linear probe of any run record. An image folder's runs live in their own folder under the
 * budget's (`experimentRunsDir`); without labels, kNN, the probe and the supervised baseline say so.
 * Everything a second notebook needs lives here, not in a notebook.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { inspect } from 'util';
import { Budget, budgetDataIdentity, experimentConfig } from '../config/budget';
import { identityDifferences, runName, runsDir, RunIdentityError } from '../train/runName';
import {
  loadCifar10OrFixture,
  trainValSplit,
  balancedSubset,
  LabelledSplit,
  Subset,
  DataIdentity,
  dataIdentityOf,
  IMAGE_SIZE,
  loadImageFolder,
  resolveDataSpec,
  selectFolderData,
  folderRunsName,
  UNLABELLED_EVALUATION,
  type DataSpec,
  type ImageFolderData,
  type ImageFolderSpec,
  type UnlabelledImages,
} from '../data/index';
import { PretrainConfig, BackboneConfig, ConfigLayer, Method } from '../config/config';
import { loadRunModel, pretrain, PretrainResult, StepInfo, TrainCallbacks } from '../train/trainer';
import { RunRecord, readRunRecord, writeRunRecord, gitInfo } from '../train/runRecord';
import { saveCheckpoint, loadCheckpoint, StoredTensor } from '../train/checkpoint';
import { knnMonitor, knnEvaluate, featureMonitor } from '../eval/knnMonitor';
import { extractFeatures } from '../eval/features';
import { linearProbe, ProbeResult } from '../eval/linearProbe';
import { knnAccuracy, KNN_DEFAULTS } from '../eval/knn';
import { trainSupervised, SupervisedResumeState } from '../eval/supervised';
import { acquireRunLock, LOCK_FILE, RunLock } from '../train/runLock';
import { InterruptedError, openInterruptScope } from '../train/interrupt';
import { buildBackbone } from '../models/index';
import { ParamStore } from '../nn/params';
import { Backbone } from '../nn/module';
import { currentBackend } from '../backend/select';
import { deriveSeed } from '../util/rng';
import { buildSslModel, SslModel } from '../methods/index';
import { keep, kept } from '../util/keep';

interface ExperimentDataBase {
  /** Class names in label order (empty for an unlabelled image folder). */
  classNames: string[];
  /** Where the images came from (one line), and whether they are real images (CIFAR-10 or a folder, not the generated fixture). */
  source: string;
  real: boolean;
  /** What the training images are (source, checksum, subset, split): half of each run's identity. */
  identity: DataIdentity;
  /** The protocol, for run records. */
  protocol: Record<string, unknown>;
  /** Side of the square images, in pixels (32 for CIFAR-10; an image folder's store size). */
  imageSize: number;
  /**
   * Where this data's runs go under runs/<budget>/: '' for CIFAR-10 (the results notebooks read those),
   * `folders/<folder name>` for an image folder, so its runs and baselines never mix with CIFAR-10's.
   */
  runsSubdir: string;
  /** The image folder as loaded (manifest, skipped files, cache report; its splits are `train`, `val`, `test` here), when the data is one. */
  folder?: Omit<ImageFolderData, 'train' | 'val' | 'test' | 'labelled' | 'evaluationSkipped'>;
}

/** Labelled data: CIFAR-10, or an image folder with class folders or a labels CSV. */
export interface LabelledExperimentData extends ExperimentDataBase {
  labelled: true;
  /** Class-balanced training subset: pretraining images, kNN bank and linear-probe training set. */
  train: Subset;
  /** Validation split, taken from the training set (disjoint from `train`): model selection and the kNN monitor. */
  val: Subset;
  /** Test images: the final report only. */
  test: LabelledSplit;
}

/** An unlabelled image folder: pretraining, the feature monitors, embeddings and neighbours work; kNN and the probe do not. */
export interface UnlabelledExperimentData extends ExperimentDataBase {
  labelled: false;
  /** Why kNN and the linear probe are skipped (print it where they would run). */
  evaluationSkipped: string;
  train: UnlabelledImages;
  val: UnlabelledImages;
  test: UnlabelledImages;
}

/**
 * What an experiment trains and evaluates on (`loadExperimentData`). Narrow it with `data.labelled === true`
 * (or `=== false`): tslab compiles notebooks and lib/ without strictNullChecks, where `if (data.labelled)` does not narrow.
 */
export type ExperimentData = LabelledExperimentData | UnlabelledExperimentData;

/** Options of `loadExperimentData`. */
export interface ExperimentDataOptions {
  /** Split seed (validation split and subset). Default 0; an image folder's own `seed` wins. */
  seed?: number;
  /** CIFAR-10 only: fall back to the generated fixture when no real data is found. Default: only for the smoke budget (DINOTWINS_DATA=real|fixture overrides). */
  allowFixture?: boolean;
  /** 'cifar10' (default), an image folder's path, or the folder with options (lib/data/dataSpec.ts). */
  data?: DataSpec;
  /** Where a relative folder path starts. Default: the working directory. */
  base?: string;
  /** Where the folder loader's one-line messages go. Default console.log. */
  log?: (line: string) => void;
}

/** `data` if it has labels; otherwise an error saying that `what` needs them and what works without. */
export function requireLabels(data: ExperimentData, what: string): LabelledExperimentData {
  if (data.labelled === true) return data;
  throw new UnlabelledDataError(`${what} needs labels: ${data.evaluationSkipped}`);
}

/** Evaluation that needs labels was asked of an unlabelled image folder. */
export class UnlabelledDataError extends Error {
  override name = 'UnlabelledDataError';

  /** One line when printed in a notebook. */
  [inspect.custom](): string {
    return `${this.name}: ${this.message}`;
  }
}

/**
 * Why the kNN and linear-probe evaluation cannot run on `data`, or null when it can: it needs labels, and
 * validation (model selection) and test images (an image folder loaded with val or test 0 has none).
 */
export function evaluationUnavailable(data: ExperimentData): string | null {
  if (data.labelled === false) return data.evaluationSkipped;
  const empty = [data.val.n === 0 ? 'validation' : '', data.test.n === 0 ? 'test' : ''].filter(Boolean);
  if (empty.length > 0)
    return `the data has no ${empty.join(' and no ')} images (an image folder loaded with ${empty.map((e) => (e === 'test' ? 'test 0' : 'val 0')).join(' and ')}): the linear probe selects on validation images and reports on test images`;
  return null;
}

/** The runs folder of `data` under a budget (or CLI label): runs/<budget>/, or runs/<budget>/folders/<name>/ for an image folder. */
export function experimentRunsDir(budget: string | { name: string }, data: Pick<ExperimentData, 'runsSubdir'>): string {
  return path.join(runsDir(budget), data.runsSubdir);
}

/**
 * The data of an experiment under `budget`: CIFAR-10 by default, or an image folder (`opts.data`).
 *
 * CIFAR-10: real data from the usual sources (see lib/data); if none is found and `allowFixture`
 * (default: only for the smoke budget; DINOTWINS_DATA=real|fixture overrides), the generated fixture,
 * with a loud message. The validation split comes from the training set, then the budget's subset.
 *
 * An image folder: loaded with `loadImageFolder` (cached), its own seeded train/validation/test split,
 * then the budget's training subset (lib/data/folderExperiment.ts).
 */
export async function loadExperimentData(
  budget: Budget,
  opts?: ExperimentDataOptions & { data?: undefined | 'cifar10' },
): Promise<LabelledExperimentData>;
export async function loadExperimentData(budget: Budget, opts: ExperimentDataOptions): Promise<ExperimentData>;
export async function loadExperimentData(budget: Budget, opts: ExperimentDataOptions = {}): Promise<ExperimentData> {
  const spec = resolveDataSpec(opts.data, opts.base);
  if (spec.kind === 'folder') return loadFolderData(budget, spec.folder, opts);
  return loadCifar10Data(budget, opts);
}

async function loadCifar10Data(budget: Budget, opts: ExperimentDataOptions): Promise<LabelledExperimentData> {
  const seed = opts.seed ?? 0;
  const allow = opts.allowFixture ?? budget.name === 'smoke';
  const c = await loadCifar10OrFixture({ mode: allow ? undefined : 'real', fixture: { recordsPerBatch: 200, seed } });
  const { train, test, classNames } = c;
  const source = c.source.line;
  const real = c.source.kind !== 'fixture';
  if (!real)
    console.warn(
      `WARNING: using the GENERATED FIXTURE (synthetic images): ${c.fallbackReason}. Numbers from this run say nothing about CIFAR-10.`,
    );
  const tv = trainValSplit(train, budget.valPerClass, deriveSeed(seed, 1));
  const numClasses = classNames.length;
  const sub =
    budget.trainPerClass > 0
      ? balancedSubset(
          tv.train,
          Math.min(budget.trainPerClass, Math.floor(tv.train.n / numClasses)),
          deriveSeed(seed, 2),
        )
      : tv.train;
  const testSet =
    budget.testLimit > 0 && budget.testLimit < test.n
      ? balancedSubset(test, Math.floor(budget.testLimit / numClasses), deriveSeed(seed, 3))
      : test;
  return {
    labelled: true,
    train: { ...sub, role: 'train' },
    val: tv.val,
    test: { ...testSet, role: 'test' },
    classNames,
    source,
    real,
    identity: budgetDataIdentity(c.identity, budget, seed),
    imageSize: train.height ?? IMAGE_SIZE,
    runsSubdir: '',
    protocol: {
      source,
      real,
      trainImages: sub.n,
      valImages: tv.val.n,
      testImages: testSet.n,
      split: `train: ${budget.trainPerClass || 'all remaining'} per class (class-balanced); val: ${budget.valPerClass} per class taken from the training set; test: ${testSet.n === test.n ? 'the full test set' : `${testSet.n} class-balanced test images`}`,
      seed,
    },
  };
}

async function loadFolderData(
  budget: Budget,
  spec: ImageFolderSpec,
  opts: ExperimentDataOptions,
): Promise<ExperimentData> {
  const folder = await loadImageFolder({ seed: opts.seed, ...spec, ...(opts.log ? { log: opts.log } : {}) });
  const sel = selectFolderData(folder, budget.trainPerClass);
  const { identity, root, layout, imageSize, classNames, skipped, unsupported, manifest, cache, line, seconds } =
    folder; // not the splits: `sel` holds what is used
  const base = {
    classNames: folder.classNames,
    source: folder.line,
    real: true,
    identity: sel.identity,
    imageSize: folder.imageSize,
    runsSubdir: path.join('folders', folderRunsName(folder.root)),
    folder: { identity, root, layout, imageSize, classNames, skipped, unsupported, manifest, cache, line, seconds },
    protocol: { source: folder.line, real: true, ...sel.protocol, seed: sel.identity.splitSeed },
  };
  if (sel.labelled === true) return { ...base, labelled: true, train: sel.train, val: sel.val, test: sel.test };
  return {
    ...base,
    labelled: false,
    evaluationSkipped: UNLABELLED_EVALUATION,
    train: sel.train,
    val: sel.val,
    test: sel.test,
  };
}

export interface RunOptions {
  /** Run folder name under experimentRunsDir(budget, data). Default `runName(config, data.identity)`. */
  name?: string;
  /** Explicit run folder (overrides `name`). */
  runDir?: string;
  /** Per-logged-step hook (progress bars). */
  onStep?: (info: StepInfo) => void;
  /** Extra epoch hook. */
  onEpochEnd?: TrainCallbacks['onEpochEnd'];
  /** Start over even if a checkpoint exists. Default false (resume). */
  fresh?: boolean;
  /** Stop after this many steps (as if killed). */
  stopAfterSteps?: number;
}

/** The folder of the run of `config` on `data` under `budget`: experimentRunsDir(budget, data)/runName(config, data.identity). */
export function experimentRunDir(
  config: PretrainConfig,
  budget: string | { name: string },
  data: Pick<ExperimentData, 'runsSubdir' | 'identity'>,
): string {
  return path.join(experimentRunsDir(budget, data), runName(config, data.identity));
}

/**
 * Pretrains (or resumes) one method on the budget's data, with the kNN monitor on the validation split
 * (unlabelled data: the feature monitors on the training subset).
 */
export async function runPretraining(
  config: PretrainConfig,
  budget: Budget,
  data: ExperimentData,
  opts: RunOptions = {},
): Promise<PretrainResult> {
  const runDir =
    opts.runDir ??
    (opts.name ? path.join(experimentRunsDir(budget, data), opts.name) : experimentRunDir(config, budget, data));
  // One writer per run folder: taken before a fresh run clears the folder, held until pretrain returns.
  const lock = acquireRunLock(runDir, `pretraining run ${path.basename(runDir)}`);
  try {
    if (opts.fresh)
      for (const f of fs.readdirSync(runDir))
        if (f !== LOCK_FILE) fs.rmSync(path.join(runDir, f), { recursive: true, force: true });
    return await pretrainWithMonitor(config, budget, data, opts, runDir, lock);
  } finally {
    lock.release();
  }
}

async function pretrainWithMonitor(
  config: PretrainConfig,
  budget: Budget,
  data: ExperimentData,
  opts: RunOptions,
  runDir: string,
  lock: RunLock,
): Promise<PretrainResult> {
  const monitor =
    data.labelled === true && data.val.n > 0
      ? knnMonitor({ bank: data.train, val: data.val, every: budget.knnEvery, numClasses: data.classNames.length })
      : featureMonitor({ bank: data.train, every: budget.knnEvery });
  return pretrain({
    lock,
    config,
    data: {
      images: data.train.images,
      n: data.train.n,
      height: data.imageSize,
      width: data.imageSize,
      identity: data.identity,
    },
    runDir,
    budget: budget.name,
    dataInfo: data.protocol,
    stopAfterSteps: opts.stopAfterSteps,
    resume: !opts.fresh,
    callbacks: {
      onStep: opts.onStep,
      onEpochEnd: async (info) => {
        const extra = { ...((await monitor(info)) ?? {}) };
        Object.assign(info.metrics.extra, extra); // the caller's hook sees the monitor's numbers
        const more = await opts.onEpochEnd?.(info);
        return { ...extra, ...(more ?? {}) };
      },
    },
  });
}

/** A finished run, as the cells after the training cell use it. */
export interface TrainedRun {
  record: RunRecord;
  /** Its model, rebuilt from its checkpoint; kept by name (lib/util/keep.ts), so asking again reuses it and a re-run frees it. */
  model: SslModel;
  config: PretrainConfig;
}

/** The run the cells after training ask for has not finished; the message says what to do. */
export class RunNotFinishedError extends Error {
  override name = 'RunNotFinishedError';

  /** One line when printed in a notebook. */
  [inspect.custom](): string {
    return `${this.name}: ${this.message}`;
  }
}

/** Why `rec` cannot be used by the cells after training, or null if it finished. */
function unfinishedMessage(rec: Pick<RunRecord, 'id' | 'status' | 'step' | 'totalSteps' | 'message'>): string | null {
  switch (rec.status) {
    case 'done':
      return null;
    case 'interrupted':
      return `run ${rec.id} was interrupted at step ${rec.step} of ${rec.totalSteps}; re-run the training cell to resume`;
    case 'failed':
      return `run ${rec.id} failed at step ${rec.step} of ${rec.totalSteps} (${rec.message ?? 'no message'}); fix the cause and re-run the training cell (it resumes from the last checkpoint)`;
    case 'stopped':
      return `run ${rec.id} stopped at step ${rec.step} of ${rec.totalSteps} (stopAfterSteps); re-run the training cell without it to finish`;
    default:
      return `run ${rec.id} has not finished (step ${rec.step} of ${rec.totalSteps}; it may still be stopping); wait a moment, then re-run the training cell`;
  }
}

/**
 * The finished run that the training cell trains (`experimentConfig(method, budget, overrides)` on
 * `data`), from its folder: its record, and its model rebuilt from its checkpoint. The same arguments
 * as the training cell, which may have failed (tslab then declares none of its variables): if the run
 * is missing, interrupted, failed or stopped, a one-line RunNotFinishedError says so and how to go on.
 */
export function trainedRun(
  method: Method,
  budget: Budget,
  data: ExperimentData,
  overrides: ConfigLayer = {},
): TrainedRun {
  const config = experimentConfig(method, budget, overrides);
  const dir = experimentRunDir(config, budget, data);
  const file = path.join(dir, 'record.json');
  if (!fs.existsSync(file))
    throw new RunNotFinishedError(`no run of this config in ${dir} yet: run the training cell above first`);
  const record = readRunRecord(file);
  const why = unfinishedMessage(record);
  if (why) throw new RunNotFinishedError(why);
  if (!record.checkpoint || !fs.existsSync(record.checkpoint))
    throw new RunNotFinishedError(
      `run ${record.id} finished but its checkpoint ${record.checkpoint ?? '(none recorded)'} is gone; re-run the training cell with a fresh run`,
    );
  // One model per finished run and checkpoint: asking again (the next cell) reuses it.
  const name = `trained ${record.id}`;
  const stamp = String(fs.statSync(record.checkpoint).mtimeMs);
  const held = kept<KeptModel>(name);
  const model =
    held?.stamp === stamp
      ? held.model
      : keep(name, new KeptModel(loadRunModel(config, data.identity, record.checkpoint), stamp)).model;
  return { record, model, config };
}

/** A model in the keep registry with the checkpoint write it was loaded from. */
class KeptModel {
  constructor(
    readonly model: SslModel,
    readonly stamp: string,
  ) {}

  dispose(): void {
    this.model.dispose();
  }
}

function newRecord(
  id: string,
  method: string,
  budget: Budget,
  config: Record<string, unknown>,
  data: ExperimentData,
  seed: number,
): RunRecord {
  const be = currentBackend();
  return {
    format: 'dinotwins-run/1',
    id,
    kind: 'baseline',
    status: 'running',
    method,
    budget: budget.name,
    config,
    backend: be ? { chosen: be.chosen, tfBackend: be.tfBackend, line: be.line, details: be.details } : null,
    git: gitInfo(),
    seed,
    data: data.protocol,
    dataIdentity: dataIdentityOf(data.identity),
    startedAt: new Date().toISOString(),
    updatedAt: '',
    seconds: 0,
    step: 0,
    totalSteps: 0,
    epochs: [],
    steps: [],
    results: {},
    checkpoint: null,
    resumedFrom: [],
  };
}

async function saveBackboneCheckpoint(file: string, ps: ParamStore, meta: Record<string, unknown>): Promise<void> {
  const student = new Map<string, StoredTensor>();
  for (const s of await ps.snapshot())
    if (s.name.startsWith('backbone.')) student.set(s.name, { shape: s.shape, values: s.values });
  saveCheckpoint(file, { meta, groups: { student } });
}

/**
 * Baseline encoders on the same protocol: 'random-init' (the backbone as initialised, never
 * trained) and 'supervised' (trained with labels on the same training subset). Each writes a run
 * record and a checkpoint of its backbone, so `probeRun` treats it like any pretraining run. Its
 * folder is one per kind and seed: a record there of another config or other data is trained anew
 * (with a line naming what differs), never reused.
 */
export async function runBaseline(
  kind: 'random-init' | 'supervised',
  backboneCfg: BackboneConfig,
  budget: Budget,
  data: ExperimentData,
  opts: {
    seed?: number;
    epochs?: number;
    batchSize?: number;
    onStep?: (step: number, total: number, values: Record<string, number>) => void;
  } = {},
): Promise<RunRecord> {
  const seed = opts.seed ?? 0;
  if (kind === 'supervised') requireLabels(data, 'the supervised baseline');
  const dir = baselineDir(kind, budget, seed, data);
  fs.mkdirSync(dir, { recursive: true });
  const config = {
    method: kind,
    backbone: backboneCfg,
    seed,
    epochs: kind === 'supervised' ? (opts.epochs ?? budget.supervisedEpochs) : 0,
    batchSize: opts.batchSize ?? budget.pretrain.batchSize,
  };
  const recordFile = path.join(dir, 'record.json');
  const old = fs.existsSync(recordFile) ? readRunRecord(recordFile) : null;
  const differences = old
    ? identityDifferences(
        { config: old.config, data: old.dataIdentity },
        { config, data: dataIdentityOf(data.identity) },
      )
    : [];
  const sameConfig = old !== null && differences.length === 0;
  if (old && old.status === 'done' && sameConfig) return old; // re-running a cell does not retrain
  if (old && !sameConfig)
    console.log(
      `${path.basename(dir)}: its record is of another baseline (${differences.map((d) => `${d.field}: recorded ${JSON.stringify(d.recorded) ?? '(none)'}, now ${JSON.stringify(d.now)}`).join('; ')}); training it anew`,
    );
  // One writer per run folder; an interrupt stops the supervised training at its next step with a checkpoint.
  const lock = acquireRunLock(dir, `${kind} baseline`);
  const stop = openInterruptScope(`the ${kind} baseline`);
  try {
    return await trainBaseline(kind, backboneCfg, budget, data, config, sameConfig ? old : null, opts.onStep);
  } finally {
    stop.close();
    lock.release();
  }
}

/** A baseline's run folder: one per kind and seed (runs/<budget>/<kind>-s<seed>; an image folder's under its own runs folder), so seeds sit side by side. */
export function baselineDir(
  kind: 'random-init' | 'supervised',
  budget: Budget,
  seed: number,
  data: Pick<ExperimentData, 'runsSubdir'> = { runsSubdir: '' },
): string {
  return path.join(experimentRunsDir(budget, data), `${kind}-s${seed}`);
}

interface BaselineConfig {
  method: string;
  backbone: BackboneConfig;
  seed: number;
  epochs: number;
  batchSize: number;
}

/** What an interrupted supervised baseline keeps in its checkpoint's metadata (tensors: student, optimizer). */
type SupervisedResumeMeta = Omit<SupervisedResumeState, 'params' | 'optimizer'>;

async function trainBaseline(
  kind: 'random-init' | 'supervised',
  backboneCfg: BackboneConfig,
  budget: Budget,
  data: ExperimentData,
  config: BaselineConfig,
  old: RunRecord | null,
  onStep?: (step: number, total: number, values: Record<string, number>) => void,
): Promise<RunRecord> {
  const dir = baselineDir(kind, budget, config.seed, data);
  const recordFile = path.join(dir, 'record.json');
  const ckpt = path.join(dir, 'checkpoint.ckpt');
  const total = kind === 'supervised' ? config.epochs * Math.floor(data.train.n / config.batchSize) : 0;
  let rec = newRecord(
    path.basename(dir),
    kind,
    budget,
    config as unknown as Record<string, unknown>,
    data,
    config.seed,
  );
  let resume: SupervisedResumeState | undefined;
  if (kind === 'supervised' && old?.status === 'interrupted' && fs.existsSync(ckpt)) {
    const { meta, groups } = loadCheckpoint<{ config: unknown; supervisedResume?: SupervisedResumeMeta }>(ckpt);
    if (meta.supervisedResume && JSON.stringify(meta.config) === JSON.stringify(config)) {
      const params = [...(groups.student ?? new Map())].map(([name, t]) => ({
        name,
        shape: t.shape,
        values: t.values,
        kind: 'weight' as const,
        trainable: true,
      }));
      resume = { ...meta.supervisedResume, params, optimizer: groups.optimizer ?? new Map() };
      rec = { ...old, status: 'running', resumedFrom: [...old.resumedFrom, resume.step] };
      delete rec.message;
      console.log(`resuming the supervised baseline from step ${resume.step} of ${total}`);
    }
  }
  rec.totalSteps = total;
  const backbone = buildBackbone(backboneCfg);
  const t0 = Date.now();
  const priorSeconds = rec.seconds;
  let ps: ParamStore;
  if (kind === 'random-init') {
    ps = new ParamStore('random-init');
    backbone.init(ps, deriveSeed(config.seed, 1), 'backbone.');
  } else {
    const onInterrupt = async (st: SupervisedResumeState): Promise<void> => {
      const meta: { config: BaselineConfig; supervisedResume: SupervisedResumeMeta } = {
        config,
        supervisedResume: {
          step: st.step,
          history: st.history,
          lossSum: st.lossSum,
          correct: st.correct,
          optimizerStep: st.optimizerStep,
        },
      };
      saveCheckpoint(ckpt, {
        meta,
        groups: {
          student: new Map(st.params.map((p) => [p.name, { shape: p.shape, values: p.values }])),
          optimizer: st.optimizer,
        },
      });
      rec.status = 'interrupted';
      rec.step = st.step;
      rec.checkpoint = ckpt;
      rec.seconds = priorSeconds + (Date.now() - t0) / 1000;
      rec.message = `interrupted at step ${st.step} of ${total}; re-run to resume`;
      writeRunRecord(recordFile, rec);
    };
    try {
      const labelled = requireLabels(data, 'the supervised baseline');
      const r = await trainSupervised(
        backbone,
        labelled.train,
        {
          epochs: config.epochs,
          batchSize: config.batchSize,
          seed: config.seed,
          numClasses: labelled.classNames.length,
        },
        onStep,
        { resume, onInterrupt },
      );
      ps = r.params;
      rec.epochs = r.history.map((h) => ({
        epoch: h.epoch,
        means: { loss: h.loss, trainTop1: h.trainTop1 },
        extra: {},
        seconds: 0,
        lr: 0,
      }));
    } catch (e) {
      if (e instanceof InterruptedError && rec.status === 'interrupted') {
        throw new InterruptedError(
          `the supervised baseline was interrupted at step ${rec.step} of ${total}; checkpoint written, memory freed. Re-run this cell (or the same command) to resume.`,
        );
      }
      throw e;
    }
  }
  try {
    await saveBackboneCheckpoint(ckpt, ps, { config });
    rec.checkpoint = ckpt;
    rec.step = total;
    rec.seconds = priorSeconds + (Date.now() - t0) / 1000;
    rec.status = 'done';
    writeRunRecord(recordFile, rec);
    return rec;
  } finally {
    ps.dispose();
  }
}

/** Rebuilds the backbone of a run record and loads its weights from the run's checkpoint (student backbone). Caller disposes the store. */
export function loadBackbone(record: RunRecord): { backbone: Backbone; params: ParamStore } {
  if (!record.checkpoint || !fs.existsSync(record.checkpoint))
    throw new Error(
      `run ${record.id} has no checkpoint (${record.checkpoint ?? 'none recorded'}); re-run its pretraining`,
    );
  const backboneCfg = (record.config as { backbone: BackboneConfig }).backbone;
  const backbone = buildBackbone(backboneCfg);
  const params = new ParamStore(`probe-${record.id}`);
  backbone.init(params, 0, 'backbone.');
  const { groups } = loadCheckpoint(record.checkpoint);
  const snap = [...(groups.student ?? new Map())]
    .filter(([n]) => n.startsWith('backbone.'))
    .map(([name, s]) => ({ name, shape: s.shape, values: s.values, kind: 'weight' as const, trainable: true }));
  params.load(snap);
  return { backbone, params };
}

export interface ProbeOutcome {
  linear: ProbeResult;
  /** kNN top-1 (%) on the test set, evaluated once at the end (bank = training subset). */
  knnTestTop1: number;
}

/**
 * The frozen-encoder evaluation of one run: features extracted once (inference mode), linear probe
 * with validation-based selection, then the test set once; kNN on test as well. Results are written
 * into the run record (atomically). Needs labels (an unlabelled folder: UnlabelledDataError, saying
 * why); a run trained on an image folder is probed on that folder only.
 */
export async function probeRun(
  recordFile: string,
  data: ExperimentData,
  probeEpochs: number,
  onProgress?: (label: string, done: number, total: number) => void,
): Promise<ProbeOutcome> {
  const record = readRunRecord(recordFile);
  const id = record.id;
  const labelled = requireLabels(data, `the linear probe and kNN of run ${id}`);
  const why = evaluationUnavailable(labelled);
  if (why) throw new UnlabelledDataError(`the linear probe and kNN of run ${id} cannot run: ${why}`);
  const trainedOn = record.dataIdentity;
  if (
    trainedOn &&
    (trainedOn.source === 'folder' || data.identity.source === 'folder') &&
    (trainedOn.source !== data.identity.source || trainedOn.checksum !== data.identity.checksum)
  ) {
    throw new RunIdentityError(
      `run ${id} was trained on other data (${trainedOn.source} ${trainedOn.checksum}) than the probe's (${data.identity.source} ${data.identity.checksum}: ${data.source}); probe it with the data it trained on`,
    );
  }
  const lock = acquireRunLock(path.dirname(recordFile), `linear probe of ${id}`);
  const stop = openInterruptScope(`the linear probe of ${id}`);
  try {
    return await probeLocked(recordFile, labelled, probeEpochs, onProgress);
  } catch (e) {
    if (e instanceof InterruptedError)
      throw new InterruptedError(
        `the probe of run ${id} was interrupted (${e.message}); its record is unchanged. Re-run this cell to probe it again.`,
      );
    throw e;
  } finally {
    stop.close();
    lock.release();
  }
}

async function probeLocked(
  recordFile: string,
  data: LabelledExperimentData,
  probeEpochs: number,
  onProgress?: (label: string, done: number, total: number) => void,
): Promise<ProbeOutcome> {
  const record = readRunRecord(recordFile);
  const { backbone, params } = loadBackbone(record);
  try {
    const dim = backbone.featureDim;
    const size = { height: data.imageSize, width: data.imageSize };
    const fx = async (label: string, s: { images: Uint8Array; n: number }) =>
      extractFeatures(backbone, params, s.images, s.n, {
        size,
        onProgress: (d, t) => onProgress?.(`features ${label}`, d, t),
      });
    const ftrain = await fx('train', data.train);
    const fval = await fx('val', data.val);
    const ftest = await fx('test', data.test);
    const linear = await linearProbe({
      dim,
      numClasses: data.classNames.length,
      train: { features: ftrain, labels: data.train.labels, n: data.train.n },
      val: { features: fval, labels: data.val.labels, n: data.val.n },
      test: { features: ftest, labels: data.test.labels, n: data.test.n },
      config: { epochs: probeEpochs },
      onProgress: (d, t) => onProgress?.('linear probe', d, t),
    });
    const tb = tf.tensor2d(ftrain, [data.train.n, dim]);
    const tt = tf.tensor2d(ftest, [data.test.n, dim]);
    const knnTestTop1 =
      100 *
      (await knnAccuracy(tb, Array.from(data.train.labels), tt, Array.from(data.test.labels), {
        k: Math.min(KNN_DEFAULTS.k, data.train.n),
        temperature: KNN_DEFAULTS.temperature,
        numClasses: data.classNames.length,
      }));
    tf.dispose([tb, tt]);
    const fresh = readRunRecord(recordFile);
    fresh.results.linearProbe = {
      valTop1: linear.valTop1,
      testTop1: linear.testTop1,
      selected: linear.selected,
      protocol: { ...linear.protocol, data: data.protocol },
    };
    fresh.results.knnTest = {
      top1: knnTestTop1,
      k: Math.min(KNN_DEFAULTS.k, data.train.n),
      temperature: KNN_DEFAULTS.temperature,
    };
    writeRunRecord(recordFile, fresh);
    return { linear, knnTestTop1 };
  } finally {
    params.dispose();
  }
}

export { knnEvaluate };

/**
 * The kNN monitor of a run's encoder before its first step (the weights `config.seed` initialises):
 * the untrained reference a short run's monitor must beat. Validation split only, as the monitor.
 */
export async function untrainedKnn(
  config: PretrainConfig,
  data: ExperimentData,
): Promise<{ knnTop1: number; effectiveRank: number; featureStd: number }> {
  const labelled = requireLabels(data, 'kNN');
  const model = buildSslModel(config);
  try {
    const r = await knnEvaluate(
      { model },
      { bank: labelled.train, val: labelled.val, numClasses: labelled.classNames.length },
    );
    return { knnTop1: r.knnTop1, effectiveRank: r.effectiveRank, featureStd: r.featureStd };
  } finally {
    model.dispose();
  }
}
