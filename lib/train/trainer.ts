/**
 * The pretraining loop, readable top to bottom:
 *   schedule -> batch -> augment -> teacher forward -> student loss + gradients -> optimizer step
 *   -> EMA teacher / center -> log (read back every logEvery steps) -> checkpoint -> epoch hooks.
 *
 * Every random draw is a pure function of (seed, epoch or step), so a run resumed from a
 * checkpoint reproduces an uninterrupted run exactly (bit for bit on the cpu backend).
 * Checkpoints and run records are written atomically; a non-finite loss stops the run with a
 * clear error and leaves the last good checkpoint in place.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { PretrainConfig, ConfigError } from '../config';
import { Optimizer } from './optimizers';
import { stepSchedule, StepSchedule } from '../schedules';
import { makeTrainStep } from './step';
import { saveCheckpoint, loadCheckpoint, CheckpointError, StoredTensor } from './checkpoint';
import { RunRecord, EpochMetrics, gitInfo, writeRunRecord, readRunRecord } from './runRecord';
import { InterruptedError, InterruptScope, openInterruptScope } from './interrupt';
import { acquireRunLock, RunLock } from './runLock';
import { noteRun } from './lastRun';
import { DeviceError, deviceErrorMessage, takeDeviceErrors } from '../deviceErrors';
import { buildSslModel, SslModel } from '../methods/index';
import { deriveSeed, Rng } from '../rng';
import { BackendReport, currentBackend } from '../backend';
import { makeViews } from '../augment/views';
import { backendCapabilities } from '../kernels/capabilities';

/** Training images: uint8 NHWC [n, 32, 32, 3] (labels are never used by pretraining). */
export interface PretrainData {
  images: Uint8Array;
  n: number;
}

export interface StepInfo {
  step: number;
  totalSteps: number;
  epoch: number;
  values: Record<string, number>;
  schedule: StepSchedule;
  stepsPerSecond: number;
}

export interface EpochInfo {
  epoch: number;
  totalEpochs: number;
  metrics: EpochMetrics;
  model: SslModel;
  record: RunRecord;
}

export interface TrainCallbacks {
  /** After each logged step (values already read back). */
  onStep?(info: StepInfo): void | Promise<void>;
  /** After each epoch; may return extra metrics (e.g. kNN accuracy) for the run record. */
  onEpochEnd?(info: EpochInfo): void | Record<string, number> | Promise<void | Record<string, number>>;
}

export interface PretrainOptions {
  config: PretrainConfig;
  data: PretrainData;
  /** Folder of this run: record.json and checkpoint.ckpt live there. */
  runDir: string;
  /** Budget name for the record. Default 'custom'. */
  budget?: string;
  /** Resume from runDir/checkpoint.ckpt when it exists. Default true. */
  resume?: boolean;
  /** Stop (as if killed) after this many global steps; for fault tests and step-limited runs. */
  stopAfterSteps?: number;
  callbacks?: TrainCallbacks;
  /** Described data (source, subset) for the record. */
  dataInfo?: Record<string, unknown>;
  /** Backend report for the record (default: the current selection). */
  backend?: BackendReport;
  /** The lock of runDir when the caller already holds it (runPretraining takes it before clearing a fresh run's folder); default: taken and released here. */
  lock?: RunLock;
}

export interface PretrainResult {
  record: RunRecord;
  /** The trained model; the caller owns it and must dispose it. */
  model: SslModel;
  /** Path of the record file. */
  recordFile: string;
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

export interface CheckpointMeta {
  step: number;
  config: PretrainConfig;
  rng: { seed: number; step: number };
  epochSums: Record<string, number>;
  epochCount: number;
  epochSeconds: number;
  optimizerStep: number;
  recordSeconds: number;
  /** Epoch whose end-of-epoch hooks (kNN monitor) were interrupted: they run again on resume. */
  epochEndPending?: number;
}

const CKPT = 'checkpoint.ckpt';

function toStored(t: { shape: number[]; values: Float32Array }): StoredTensor {
  return { shape: t.shape, values: t.values };
}

async function readTensor(t: tf.Tensor): Promise<StoredTensor> {
  return { shape: t.shape.slice(), values: (await t.data()) as Float32Array };
}

async function writeCheckpoint(file: string, m: SslModel, opt: Optimizer, meta: CheckpointMeta): Promise<void> {
  const groups: Record<string, Map<string, StoredTensor>> = {};
  groups.student = new Map((await m.student.snapshot()).map((s) => [s.name, toStored(s)]));
  if (m.teacher) groups.teacher = new Map((await m.teacher.snapshot()).map((s) => [s.name, toStored(s)]));
  const os = opt.getState();
  groups.optimizer = new Map();
  for (const [k, v] of os.tensors) groups.optimizer.set(k, await readTensor(v));
  if (m.center) groups.center = new Map([['center', await readTensor(m.center)]]);
  saveCheckpoint(file, { meta: { ...meta, optimizerStep: os.step }, groups });
}

/** Loads student, teacher and center from a checkpoint into `m` (config must match). Returns the metadata. */
export function restoreModel(file: string, m: SslModel, config: PretrainConfig): { meta: CheckpointMeta; groups: Record<string, Map<string, StoredTensor>> } {
  const { meta, groups } = loadCheckpoint<CheckpointMeta>(file);
  if (JSON.stringify(meta.config) !== JSON.stringify(config)) {
    throw new CheckpointError(`${file} was written with a different config; resume with the same config, or start a new run folder`);
  }
  const asSnap = (g: Map<string, StoredTensor> | undefined, label: string) => {
    if (!g) throw new CheckpointError(`${file} has no ${label} tensors`);
    return [...g].map(([name, s]) => ({ name, shape: s.shape, values: s.values, kind: 'weight' as const, trainable: true }));
  };
  try {
    m.student.load(asSnap(groups.student, 'student'));
    if (m.teacher) m.teacher.load(asSnap(groups.teacher, 'teacher'));
  } catch (e) {
    throw new CheckpointError(`${file} does not fit this model: ${(e as Error).message}`);
  }
  if (m.center) {
    const c = groups.center?.get('center');
    if (!c) throw new CheckpointError(`${file} has no DINO center`);
    tf.tidy(() => m.center!.assign(tf.tensor(c.values, c.shape)));
  }
  return { meta, groups };
}

/** Rebuilds the model of a finished (or stopped) pretraining run from its checkpoint. Caller disposes. */
export function loadRunModel(config: PretrainConfig, checkpointFile: string): SslModel {
  const m = buildSslModel(config);
  try {
    restoreModel(checkpointFile, m, config);
    return m;
  } catch (e) {
    m.dispose();
    throw e;
  }
}

function restoreCheckpoint(file: string, m: SslModel, opt: Optimizer, config: PretrainConfig): CheckpointMeta {
  const { meta, groups } = restoreModel(file, m, config);
  opt.setState(meta.optimizerStep, groups.optimizer ?? new Map());
  return meta;
}

/**
 * Runs (or resumes) one pretraining run. Holds the run folder's lock throughout (a second writer
 * fails at once); an interrupt (Ctrl-C, Kernel > Interrupt) stops it at the next step boundary
 * with a checkpoint, the record marked `interrupted`, the model freed and an InterruptedError.
 */
export async function pretrain(opts: PretrainOptions): Promise<PretrainResult> {
  const what = `pretraining run ${path.basename(opts.runDir)}`;
  const lock = opts.lock ?? acquireRunLock(opts.runDir, what);
  const stop = openInterruptScope(what);
  try {
    return await pretrainLocked(opts, stop);
  } finally {
    stop.close();
    if (!opts.lock) lock.release();
  }
}

async function pretrainLocked(opts: PretrainOptions, stop: InterruptScope): Promise<PretrainResult> {
  const cfg = opts.config;
  const { images, n } = opts.data;
  if (images.length !== n * 32 * 32 * 3) throw new ConfigError(`data: expected ${n} images of 32x32x3 uint8 (${n * 3072} bytes), got ${images.length} bytes`);
  const stepsPerEpoch = Math.floor(n / cfg.batchSize);
  if (stepsPerEpoch < 1) throw new ConfigError(`batchSize ${cfg.batchSize} is larger than the data set (${n} images)`);
  const totalSteps = cfg.epochs * stepsPerEpoch;
  fs.mkdirSync(opts.runDir, { recursive: true });
  const ckptFile = path.join(opts.runDir, CKPT);
  const recordFile = path.join(opts.runDir, 'record.json');

  const model = buildSslModel(cfg);
  takeDeviceErrors(); // GPU errors from earlier work belong to it, not to this run
  const opt = new Optimizer(cfg.optimizer);
  const trainStep = makeTrainStep(model, opt);
  let startStep = 0;
  let epochSums: Record<string, number> = {};
  let epochCount = 0;
  let epochSeconds = 0;
  let priorSeconds = 0;
  let epochEndPending: number | undefined;
  const backend = opts.backend ?? currentBackend() ?? null;
  let record: RunRecord;
  try {
    if (opts.resume !== false && fs.existsSync(ckptFile)) {
      const meta = restoreCheckpoint(ckptFile, model, opt, cfg);
      startStep = meta.step;
      epochSums = meta.epochSums;
      epochCount = meta.epochCount;
      epochSeconds = meta.epochSeconds;
      priorSeconds = meta.recordSeconds;
      epochEndPending = meta.epochEndPending;
      record = readRunRecord(recordFile);
      record.epochs = record.epochs.filter((e) => (e.epoch + 1) * stepsPerEpoch <= startStep);
      record.steps = record.steps.filter((s) => s.step < startStep);
      if (record.status === 'done' && startStep >= totalSteps) {
        console.log(`loaded finished run ${record.id}: ${totalSteps} steps, ${(record.seconds / 60).toFixed(1)} min`);
      } else {
        record.resumedFrom.push(startStep);
        console.log(`resuming run ${record.id} from step ${startStep} of ${totalSteps}${record.status === 'interrupted' ? ' (where it was interrupted)' : ''}`);
      }
      record.status = 'running';
      delete record.message;
    } else {
      record = {
        format: 'dinotwins-run/1', id: path.basename(opts.runDir), kind: 'pretrain', status: 'running', method: cfg.method,
        budget: opts.budget ?? 'custom', config: cfg as unknown as Record<string, unknown>,
        backend: backend && { chosen: backend.chosen, tfBackend: backend.tfBackend, line: backend.line, details: backend.details },
        git: gitInfo(), seed: cfg.seed, data: { n, ...opts.dataInfo }, startedAt: new Date().toISOString(), updatedAt: '',
        seconds: 0, step: 0, totalSteps, epochs: [], steps: [], results: {}, checkpoint: null, resumedFrom: [],
      };
    }
  } catch (e) {
    model.dispose();
    opt.dispose();
    throw e;
  }
  record.seconds = priorSeconds;
  writeRunRecord(recordFile, record);
  noteRun({ record, model: null });

  const batch = new Uint8Array(cfg.batchSize * 3072);
  let perm: Int32Array | undefined;
  let pending: Array<{ step: number; s: StepSchedule; tensors: Record<string, tf.Scalar> }> = [];
  let lastGood = startStep;
  let t0 = Date.now();
  let stepsSinceT0 = 0;
  const stopAt = Math.min(totalSteps, opts.stopAfterSteps ?? totalSteps);

  const disposeItems = (items: typeof pending): void => {
    for (const it of items) for (const t of Object.values(it.tensors)) if (!t.isDisposed) t.dispose();
  };
  /** Throws a DeviceError if the GPU reported errors (dropped work) since the last check. */
  const checkDevice = (items: typeof pending): void => {
    const errs = takeDeviceErrors();
    if (errs.length === 0) return;
    disposeItems(items);
    throw new DeviceError(`${deviceErrorMessage(errs)} The last good checkpoint (step ${lastGood}) is kept in ${ckptFile}.`);
  };
  /** Reads back pending scalars, checks them, logs them. */
  const flush = async (): Promise<void> => {
    const items = pending;
    pending = [];
    for (const it of items) {
      const values: Record<string, number> = {};
      for (const [k, t] of Object.entries(it.tensors)) {
        values[k] = (await t.data())[0];
        t.dispose();
      }
      checkDevice(items);
      const bad = Object.entries(values).filter(([k, v]) => (k === 'loss' || k === 'gradNorm') && !Number.isFinite(v));
      if (bad.length > 0) {
        disposeItems(items);
        throw new NonFiniteLossError(`non-finite ${bad.map(([k, v]) => `${k}=${v}`).join(', ')} at step ${it.step} (epoch ${it.s.epoch}, lr ${it.s.lr.toExponential(2)}); ` +
          `the last good checkpoint (step ${lastGood}) is kept in ${ckptFile}. Lower the learning rate or the teacher temperature, or enable gradient clipping.`);
      }
      for (const [k, v] of Object.entries(values)) epochSums[k] = (epochSums[k] ?? 0) + v;
      epochCount += 1;
      if (it.step % cfg.logEvery === 0 || it === items[items.length - 1]) {
        record.steps.push({ step: it.step, lr: it.s.lr, ...values });
        const now = Date.now();
        const sps = stepsSinceT0 > 0 ? (stepsSinceT0 * 1000) / Math.max(1, now - t0) : 0;
        await opts.callbacks?.onStep?.({ step: it.step, totalSteps, epoch: it.s.epoch, values, schedule: it.s, stepsPerSecond: sps });
      }
    }
  };

  const checkpoint = async (step: number, pendingEpoch?: number): Promise<void> => {
    await flush();
    // GPU error events can arrive just after the read-back: give them a turn before writing.
    await new Promise((r) => setImmediate(r));
    checkDevice([]);
    const meta: CheckpointMeta = { step, config: cfg, rng: { seed: cfg.seed, step }, epochSums, epochCount, epochSeconds, optimizerStep: 0, recordSeconds: record.seconds };
    if (pendingEpoch !== undefined) meta.epochEndPending = pendingEpoch;
    await writeCheckpoint(ckptFile, model, opt, meta);
    lastGood = step;
    record.checkpoint = ckptFile;
    record.step = step;
    writeRunRecord(recordFile, record);
  };

  /** Interrupted at a step boundary: checkpoint, mark the record, then throw (the catch below frees the model). */
  const stopHere = async (step: number, pendingEpoch?: number): Promise<never> => {
    await checkpoint(step, pendingEpoch);
    const during = pendingEpoch !== undefined ? ` (in the evaluation after epoch ${pendingEpoch + 1}, which runs again on resume)` : '';
    record.status = 'interrupted';
    record.message = `interrupted at step ${step} of ${totalSteps}${during}; re-run to resume`;
    writeRunRecord(recordFile, record);
    throw new InterruptedError(`run ${record.id} was interrupted at step ${step} of ${totalSteps}${during}; checkpoint written, memory freed. Re-run this cell (or the same command) to resume.`);
  };
  /** End-of-epoch hooks (kNN monitor); false when an interrupt stopped them (feature extraction checks it). */
  const epochHooks = async (metrics: EpochMetrics): Promise<boolean> => {
    try {
      const extra = await opts.callbacks?.onEpochEnd?.({ epoch: metrics.epoch, totalEpochs: cfg.epochs, metrics, model, record });
      if (extra) Object.assign(metrics.extra, extra);
      return true;
    } catch (e) {
      if (e instanceof InterruptedError) return false;
      throw e;
    }
  };

  try {
    if (epochEndPending !== undefined) {
      const metrics = record.epochs.find((e) => e.epoch === epochEndPending);
      if (metrics && !(await epochHooks(metrics))) await stopHere(startStep, epochEndPending);
      await checkpoint(startStep);
    }
    for (let step = startStep; step < stopAt; step++) {
      if (await stop.poll()) await stopHere(step);
      const tStep = Date.now();
      const s = stepSchedule(cfg, step, stepsPerEpoch);
      const inEpoch = step % stepsPerEpoch;
      if (!perm || inEpoch === 0 || step === startStep) perm = new Rng(deriveSeed(cfg.seed, 7, s.epoch)).permutation(n);
      for (let i = 0; i < cfg.batchSize; i++) {
        const src = perm[inEpoch * cfg.batchSize + i] * 3072;
        batch.set(images.subarray(src, src + 3072), i * 3072);
      }
      const views = makeViews(batch, model.views, deriveSeed(cfg.seed, 11, step));
      const { loss, gradNorm, parts } = trainStep(views, s);
      tf.dispose(views);
      pending.push({ step, s, tensors: { loss, gradNorm, ...parts } });
      stepsSinceT0 += 1;
      epochSeconds += (Date.now() - tStep) / 1000;
      record.seconds += (Date.now() - tStep) / 1000;

      const done = step + 1;
      const endOfEpoch = done % stepsPerEpoch === 0;
      if (done % cfg.logEvery === 0) await flush();
      if (endOfEpoch) {
        await flush();
        const epoch = s.epoch;
        const means = Object.fromEntries(Object.entries(epochSums).map(([k, v]) => [k, v / Math.max(1, epochCount)]));
        const metrics: EpochMetrics = { epoch, means, extra: {}, seconds: epochSeconds, lr: s.lr };
        record.epochs.push(metrics);
        epochSums = {};
        epochCount = 0;
        epochSeconds = 0;
        const hooksDone = await epochHooks(metrics);
        t0 = Date.now();
        stepsSinceT0 = 0;
        if (!hooksDone) await stopHere(done, epoch);
        await checkpoint(done);
      } else if (done % cfg.checkpointEvery === 0) {
        await checkpoint(done);
      }
    }
    await flush();
    record.step = stopAt;
    record.status = stopAt >= totalSteps ? 'done' : 'stopped';
    if (record.status === 'stopped') record.message = `stopped after step ${stopAt} of ${totalSteps} (stopAfterSteps); resume to continue`;
    writeRunRecord(recordFile, record);
    noteRun({ record, model });
    return { record, model, recordFile };
  } catch (e) {
    for (const it of pending) tf.dispose(Object.values(it.tensors));
    if (!(e instanceof InterruptedError && record.status === 'interrupted')) {
      record.status = 'failed';
      record.message = (e as Error).message;
      writeRunRecord(recordFile, record);
    }
    noteRun({ record, model: null });
    model.dispose();
    opt.dispose();
    throw e;
  } finally {
    if (record.status !== 'failed' && record.status !== 'interrupted') opt.dispose();
    // A backend that caches freed device memory (WebGPU keeps every buffer for reuse at its exact
    // size, forever) gives the run's activations back, so a later run of another model (or a
    // linear probe) does not stack its cache on this one.
    backendCapabilities().releaseCachedMemory();
  }
}
