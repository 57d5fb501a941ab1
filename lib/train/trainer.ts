/**
 * The pretraining loop, readable top to bottom:
 *   schedule -> batch -> augment -> teacher forward -> student loss + gradients -> optimizer step
 *   -> EMA teacher / center -> log (read back every logEvery steps) -> checkpoint -> epoch hooks.
 * In three phases: `planRun` (check the data, count the steps, name the files and the run's
 * identity), `openRun` (build the model; start a new record, or resume from the checkpoint of the
 * same run: a record or checkpoint of another run is an error naming the differences), and
 * `TrainingLoop` (the steps, the read-backs, checkpoints and epoch ends, then finish or fail).
 *
 * Every random draw is a pure function of (seed, epoch or step), so a run resumed from a
 * checkpoint reproduces an uninterrupted run exactly (bit for bit on the cpu backend).
 * Checkpoints and run records are written atomically; a non-finite loss stops the run with a
 * clear error and leaves the last good checkpoint in place.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { PretrainConfig, ConfigError } from '../config/config';
import { Optimizer } from './optimizers';
import { stepSchedule, StepSchedule } from '../methods/schedules';
import { makeTrainStep, TrainStep } from './trainStep';
import { saveCheckpoint, loadCheckpoint, CheckpointError, StoredTensor } from './checkpoint';
import { RunRecord, EpochMetrics, gitInfo, writeRunRecord, readRunRecord } from './runRecord';
import { InterruptedError, InterruptScope, openInterruptScope } from './interrupt';
import { acquireRunLock, RunLock } from './runLock';
import { assertSameRun, runIdentity, RunIdentity } from './runName';
import { DeviceError, deviceErrorMessage, takeDeviceErrors } from '../backend/deviceErrors';
import { buildSslModel, SslModel } from '../methods/index';
import { deriveSeed, Rng } from '../util/rng';
import { BackendReport, currentBackend } from '../backend/select';
import { makeViews } from '../augment/pipeline';
import { CIFAR10_IMAGE_SIZE, type RawImageSize } from '../augment/normalize';
import { VIT_PRESETS } from '../models/index';
import { DataIdentity, dataIdentityOf, memoryIdentity } from '../data/dataIdentity';
import { backendCapabilities } from '../kernels/capabilities';

/** Training images: uint8 NHWC [n, height, width, 3] (labels are never used by pretraining). */
export interface PretrainData {
  images: Uint8Array;
  n: number;
  /** Image height and width in pixels. Default 32 (CIFAR-10); an image folder gives its store size. */
  height?: number;
  width?: number;
  /**
   * What the images are (lib/data/dataIdentity.ts): with the config, the run's identity. Default: the
   * identity of the images as given (`memoryIdentity`, a digest of their bytes).
   */
  identity?: DataIdentity;
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
  /** The run's data identity (absent from checkpoints written before runs recorded it). */
  data?: DataIdentity;
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

/** Loads student, teacher and center from a checkpoint of the run `identity` into `m`. Returns the metadata. */
function restoreModel(
  file: string,
  m: SslModel,
  identity: RunIdentity,
): { meta: CheckpointMeta; groups: Record<string, Map<string, StoredTensor>> } {
  const { meta, groups } = loadCheckpoint<CheckpointMeta>(file);
  assertSameRun(`the checkpoint ${file}`, { config: meta.config, data: meta.data }, identity);
  const asSnap = (g: Map<string, StoredTensor> | undefined, label: string) => {
    if (!g) throw new CheckpointError(`${file} has no ${label} tensors`);
    return [...g].map(([name, s]) => ({
      name,
      shape: s.shape,
      values: s.values,
      kind: 'weight' as const,
      trainable: true,
    }));
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

/** Rebuilds the model of a pretraining run of `config` on `data` from its checkpoint (another run's is an error). Caller disposes. */
export function loadRunModel(config: PretrainConfig, data: DataIdentity, checkpointFile: string): SslModel {
  const m = buildSslModel(config);
  try {
    restoreModel(checkpointFile, m, runIdentity(config, data));
    return m;
  } catch (e) {
    m.dispose();
    throw e;
  }
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
  const plan = planRun(opts);
  const state = openRun(plan, opts);
  const loop = new TrainingLoop(plan, state, opts, stop);
  try {
    await loop.finishInterruptedEpochEnd();
    for (let step = state.startStep; step < plan.stopAt; step++) {
      if (await stop.poll()) await loop.stopHere(step);
      await loop.trainStep(step);
    }
    return await loop.finish();
  } catch (e) {
    loop.fail(e as Error);
    throw e;
  } finally {
    // A backend that caches freed device memory (WebGPU keeps every buffer for reuse at its exact
    // size, forever) gives the run's activations back, so a later run of another model (or a
    // linear probe) does not stack its cache on this one.
    backendCapabilities().releaseCachedMemory();
  }
}

/** What a run will do, settled before anything is built. */
interface RunPlan {
  cfg: PretrainConfig;
  images: Uint8Array;
  n: number;
  /** Height and width of the training images. */
  size: RawImageSize;
  /** The run's identity: its config (without cadence) and data. */
  identity: RunIdentity;
  stepsPerEpoch: number;
  totalSteps: number;
  /** The step this call stops before: totalSteps, or stopAfterSteps. */
  stopAt: number;
  ckptFile: string;
  recordFile: string;
}

/** Phase 1: the data checked against the config, the step counts, the files and the identity. */
function planRun(opts: PretrainOptions): RunPlan {
  const cfg = opts.config;
  const { images, n } = opts.data;
  const size: RawImageSize = {
    height: opts.data.height ?? CIFAR10_IMAGE_SIZE.height,
    width: opts.data.width ?? CIFAR10_IMAGE_SIZE.width,
  };
  const per = size.height * size.width * 3;
  if (images.length !== n * per)
    throw new ConfigError(
      `data: expected ${n} images of ${size.height}x${size.width}x3 uint8 (${n * per} bytes), got ${images.length} bytes`,
    );
  checkBackboneFitsData(cfg, size);
  const stepsPerEpoch = Math.floor(n / cfg.batchSize);
  if (stepsPerEpoch < 1) throw new ConfigError(`batchSize ${cfg.batchSize} is larger than the data set (${n} images)`);
  const totalSteps = cfg.epochs * stepsPerEpoch;
  fs.mkdirSync(opts.runDir, { recursive: true });
  return {
    cfg,
    images,
    n,
    size,
    identity: runIdentity(cfg, opts.data.identity ?? memoryIdentity(images)),
    stepsPerEpoch,
    totalSteps,
    stopAt: Math.min(totalSteps, opts.stopAfterSteps ?? totalSteps),
    ckptFile: path.join(opts.runDir, CKPT),
    recordFile: path.join(opts.runDir, 'record.json'),
  };
}

/**
 * A ViT's position embeddings are learnt for `imageSize` (its preset's 32 unless the backbone sets it): data of
 * another size is refused, naming the fix, rather than trained at one size and evaluated at another. A ResNet
 * pools globally and takes any size.
 */
export function checkBackboneFitsData(cfg: PretrainConfig, size: RawImageSize): void {
  const b = cfg.backbone;
  if (b.kind !== 'vit') return;
  const vitSize = Number(b.imageSize ?? VIT_PRESETS[b.preset as keyof typeof VIT_PRESETS]?.imageSize);
  if (size.height === vitSize && size.width === vitSize) return;
  throw new ConfigError(
    `backbone: the ViT's position embeddings are for ${vitSize}x${vitSize} images (imageSize ${vitSize}), but the data is ${size.height}x${size.width}: ` +
      `give the backbone imageSize: ${size.height} (e.g. { kind: 'vit', preset: '${String(b.preset)}', imageSize: ${size.height} }; a multiple of its patch size), or load the images at ${vitSize} (--image-size ${vitSize}, or imageSize in DATA)`,
  );
}

/** The model, optimizer and record of a run, and where it stands. */
interface RunState {
  model: SslModel;
  opt: Optimizer;
  record: RunRecord;
  startStep: number;
  /** Sums of the logged values over the current epoch, and how many steps they cover. */
  epochSums: Record<string, number>;
  epochCount: number;
  epochSeconds: number;
  /** Epoch whose end-of-epoch hooks an interrupt cut short: they run again first. */
  epochEndPending?: number;
}

/**
 * Phase 2: the model and optimizer, and the record: a new one, or the folder's own when this is
 * the same run (a checkpoint to resume from, or a finished run to reload). A folder whose record
 * or checkpoint is of another run is an error naming each differing field.
 */
function openRun(plan: RunPlan, opts: PretrainOptions): RunState {
  const model = buildSslModel(plan.cfg);
  takeDeviceErrors(); // GPU errors from earlier work belong to it, not to this run
  const opt = new Optimizer(plan.cfg.optimizer);
  try {
    const resume = opts.resume !== false;
    const old = resume && fs.existsSync(plan.recordFile) ? readRunRecord(plan.recordFile) : null;
    if (old)
      assertSameRun(
        `the run folder ${opts.runDir} (its record.json)`,
        { config: old.config, data: old.dataIdentity },
        plan.identity,
      );
    const state =
      resume && fs.existsSync(plan.ckptFile)
        ? resumedRun(plan, model, opt, () => old ?? readRunRecord(plan.recordFile))
        : { model, opt, record: newRecord(plan, opts), startStep: 0, epochSums: {}, epochCount: 0, epochSeconds: 0 };
    writeRunRecord(plan.recordFile, state.record);
    return state;
  } catch (e) {
    model.dispose();
    opt.dispose();
    throw e;
  }
}

function newRecord(plan: RunPlan, opts: PretrainOptions): RunRecord {
  const backend = opts.backend ?? currentBackend() ?? null;
  return {
    format: 'dinotwins-run/1',
    id: path.basename(opts.runDir),
    kind: 'pretrain',
    status: 'running',
    method: plan.cfg.method,
    budget: opts.budget ?? 'custom',
    config: plan.cfg as unknown as Record<string, unknown>,
    backend: backend && {
      chosen: backend.chosen,
      tfBackend: backend.tfBackend,
      line: backend.line,
      details: backend.details,
    },
    git: gitInfo(),
    seed: plan.cfg.seed,
    data: { n: plan.n, ...opts.dataInfo },
    dataIdentity: dataIdentityOf(plan.identity.data),
    startedAt: new Date().toISOString(),
    updatedAt: '',
    seconds: 0,
    step: 0,
    totalSteps: plan.totalSteps,
    epochs: [],
    steps: [],
    results: {},
    checkpoint: null,
    resumedFrom: [],
  };
}

/** The same run, from its checkpoint (checked first): weights, optimizer, epoch sums, and its record cut back to the checkpoint's step. */
function resumedRun(plan: RunPlan, model: SslModel, opt: Optimizer, readRecord: () => RunRecord): RunState {
  const { meta, groups } = restoreModel(plan.ckptFile, model, plan.identity);
  opt.setState(meta.optimizerStep, groups.optimizer ?? new Map());
  const record = readRecord();
  const startStep = meta.step;
  record.epochs = record.epochs.filter((e) => (e.epoch + 1) * plan.stepsPerEpoch <= startStep);
  record.steps = record.steps.filter((s) => s.step < startStep);
  // Finished or not by the record's own plan (the same run plans the same steps).
  if (record.status === 'done' && startStep >= record.totalSteps) {
    console.log(
      `loaded finished run ${record.id}: ${record.totalSteps} steps, ${(record.seconds / 60).toFixed(1)} min`,
    );
  } else {
    record.resumedFrom.push(startStep);
    console.log(
      `resuming run ${record.id} from step ${startStep} of ${record.totalSteps}${record.status === 'interrupted' ? ' (where it was interrupted)' : ''}`,
    );
  }
  record.status = 'running';
  delete record.message;
  // The same run; the cadence knobs (log and checkpoint intervals) may be new.
  record.config = plan.cfg as unknown as Record<string, unknown>;
  record.seconds = meta.recordSeconds;
  return {
    model,
    opt,
    record,
    startStep,
    epochSums: meta.epochSums,
    epochCount: meta.epochCount,
    epochSeconds: meta.epochSeconds,
    epochEndPending: meta.epochEndPending,
  };
}

/** Scalars of a step not read back yet (a read forces a device sync). */
interface PendingStep {
  step: number;
  s: StepSchedule;
  tensors: Record<string, tf.Scalar>;
}

/** Phase 3: the steps of a run, their read-backs, checkpoints and epoch ends, then finish or fail. */
class TrainingLoop {
  private readonly step: TrainStep;
  private readonly batch: Uint8Array;
  private perm: Int32Array | undefined;
  private pending: PendingStep[] = [];
  private lastGood: number;
  private t0 = Date.now();
  private stepsSinceT0 = 0;

  constructor(
    private readonly plan: RunPlan,
    private readonly st: RunState,
    private readonly opts: PretrainOptions,
    private readonly stop: InterruptScope,
  ) {
    this.step = makeTrainStep(st.model, st.opt);
    this.batch = new Uint8Array(plan.cfg.batchSize * plan.size.height * plan.size.width * 3);
    this.lastGood = st.startStep;
  }

  /** The end-of-epoch hooks (kNN monitor) an interrupt cut short, run again before the next step. */
  async finishInterruptedEpochEnd(): Promise<void> {
    const pendingEpoch = this.st.epochEndPending;
    if (pendingEpoch === undefined) return;
    const metrics = this.st.record.epochs.find((e) => e.epoch === pendingEpoch);
    if (metrics && !(await this.epochHooks(metrics))) await this.stopHere(this.st.startStep, pendingEpoch);
    await this.checkpoint(this.st.startStep);
  }

  /** One step: schedule, batch, views, the method's step; then the read-back, epoch end and checkpoint it is due. */
  async trainStep(step: number): Promise<void> {
    const { cfg, stepsPerEpoch, images, n, size } = this.plan;
    const st = this.st;
    const tStep = Date.now();
    const s = stepSchedule(cfg, step, stepsPerEpoch);
    const inEpoch = step % stepsPerEpoch;
    if (!this.perm || inEpoch === 0 || step === st.startStep)
      this.perm = new Rng(deriveSeed(cfg.seed, 7, s.epoch)).permutation(n);
    const per = size.height * size.width * 3;
    for (let i = 0; i < cfg.batchSize; i++) {
      const src = this.perm[inEpoch * cfg.batchSize + i] * per;
      this.batch.set(images.subarray(src, src + per), i * per);
    }
    const views = makeViews(this.batch, st.model.views, deriveSeed(cfg.seed, 11, step), size);
    const { loss, gradNorm, parts } = this.step(views, s);
    tf.dispose(views);
    this.pending.push({ step, s, tensors: { loss, gradNorm, ...parts } });
    this.stepsSinceT0 += 1;
    st.epochSeconds += (Date.now() - tStep) / 1000;
    st.record.seconds += (Date.now() - tStep) / 1000;

    const done = step + 1;
    if (done % cfg.logEvery === 0) await this.flush();
    if (done % stepsPerEpoch === 0) await this.endEpoch(done, s);
    else if (done % cfg.checkpointEvery === 0) await this.checkpoint(done);
  }

  /** The epoch's means into the record, the epoch hooks (kNN monitor), then a checkpoint. */
  private async endEpoch(done: number, s: StepSchedule): Promise<void> {
    const st = this.st;
    await this.flush();
    const means = Object.fromEntries(Object.entries(st.epochSums).map(([k, v]) => [k, v / Math.max(1, st.epochCount)]));
    const metrics: EpochMetrics = { epoch: s.epoch, means, extra: {}, seconds: st.epochSeconds, lr: s.lr };
    st.record.epochs.push(metrics);
    st.epochSums = {};
    st.epochCount = 0;
    st.epochSeconds = 0;
    const hooksDone = await this.epochHooks(metrics);
    this.t0 = Date.now();
    this.stepsSinceT0 = 0;
    if (!hooksDone) await this.stopHere(done, s.epoch);
    await this.checkpoint(done);
  }

  /**
   * The last read-back, then the record says done (or stopped, with stopAfterSteps), judged by the
   * record's own plan: a finished run reloaded stays finished. The caller owns the model.
   */
  async finish(): Promise<PretrainResult> {
    const { record, startStep } = this.st;
    const { stopAt, recordFile } = this.plan;
    await this.flush();
    record.step = Math.max(stopAt, startStep);
    record.status = record.step >= record.totalSteps ? 'done' : 'stopped';
    if (record.status === 'stopped')
      record.message = `stopped after step ${record.step} of ${record.totalSteps} (stopAfterSteps); resume to continue`;
    writeRunRecord(recordFile, record);
    this.st.opt.dispose();
    return { record, model: this.st.model, recordFile };
  }

  /** The run failed (or was interrupted, which stopHere recorded): free everything, and say so in the record. */
  fail(e: Error): void {
    const { record, model, opt } = this.st;
    this.disposePending(this.pending);
    if (!(e instanceof InterruptedError && record.status === 'interrupted')) {
      record.status = 'failed';
      record.message = e.message;
      writeRunRecord(this.plan.recordFile, record);
    }
    model.dispose();
    opt.dispose();
  }

  /** Interrupted at a step boundary: checkpoint, mark the record, then throw (fail() frees the model). */
  async stopHere(step: number, pendingEpoch?: number): Promise<never> {
    const { record } = this.st;
    const { totalSteps, recordFile } = this.plan;
    await this.checkpoint(step, pendingEpoch);
    const during =
      pendingEpoch !== undefined
        ? ` (in the evaluation after epoch ${pendingEpoch + 1}, which runs again on resume)`
        : '';
    record.status = 'interrupted';
    record.message = `interrupted at step ${step} of ${totalSteps}${during}; re-run to resume`;
    writeRunRecord(recordFile, record);
    throw new InterruptedError(
      `run ${record.id} was interrupted at step ${step} of ${totalSteps}${during}; checkpoint written, memory freed. Re-run this cell (or the same command) to resume.`,
    );
  }

  /** End-of-epoch hooks (kNN monitor); false when an interrupt stopped them (feature extraction checks it). */
  private async epochHooks(metrics: EpochMetrics): Promise<boolean> {
    const { model, record } = this.st;
    try {
      const extra = await this.opts.callbacks?.onEpochEnd?.({
        epoch: metrics.epoch,
        totalEpochs: this.plan.cfg.epochs,
        metrics,
        model,
        record,
      });
      if (extra) Object.assign(metrics.extra, extra);
      return true;
    } catch (e) {
      if (e instanceof InterruptedError) return false;
      throw e;
    }
  }

  /** The read-back, then the weights, optimizer state and epoch sums at `step`, and the record pointing at them. */
  private async checkpoint(step: number, pendingEpoch?: number): Promise<void> {
    const st = this.st;
    await this.flush();
    // GPU error events can arrive just after the read-back: give them a turn before writing.
    await new Promise((r) => setImmediate(r));
    this.checkDevice([]);
    const cfg = this.plan.cfg;
    const meta: CheckpointMeta = {
      step,
      config: cfg,
      data: this.plan.identity.data,
      rng: { seed: cfg.seed, step },
      epochSums: st.epochSums,
      epochCount: st.epochCount,
      epochSeconds: st.epochSeconds,
      optimizerStep: 0,
      recordSeconds: st.record.seconds,
    };
    if (pendingEpoch !== undefined) meta.epochEndPending = pendingEpoch;
    await writeCheckpoint(this.plan.ckptFile, st.model, st.opt, meta);
    this.lastGood = step;
    st.record.checkpoint = this.plan.ckptFile;
    st.record.step = step;
    writeRunRecord(this.plan.recordFile, st.record);
  }

  /** Reads back the pending scalars, checks them, adds them to the epoch sums and logs every logEvery-th. */
  private async flush(): Promise<void> {
    const st = this.st;
    const items = this.pending;
    this.pending = [];
    for (const it of items) {
      const values: Record<string, number> = {};
      for (const [k, t] of Object.entries(it.tensors)) {
        values[k] = (await t.data())[0];
        t.dispose();
      }
      this.checkDevice(items);
      const bad = Object.entries(values).filter(([k, v]) => (k === 'loss' || k === 'gradNorm') && !Number.isFinite(v));
      if (bad.length > 0) {
        this.disposePending(items);
        throw new NonFiniteLossError(
          `non-finite ${bad.map(([k, v]) => `${k}=${v}`).join(', ')} at step ${it.step} (epoch ${it.s.epoch}, lr ${it.s.lr.toExponential(2)}); ` +
            `the last good checkpoint (step ${this.lastGood}) is kept in ${this.plan.ckptFile}. Lower the learning rate or the teacher temperature, or enable gradient clipping.`,
        );
      }
      for (const [k, v] of Object.entries(values)) st.epochSums[k] = (st.epochSums[k] ?? 0) + v;
      st.epochCount += 1;
      if (it.step % this.plan.cfg.logEvery === 0 || it === items[items.length - 1]) {
        st.record.steps.push({ step: it.step, lr: it.s.lr, ...values });
        const sps = this.stepsSinceT0 > 0 ? (this.stepsSinceT0 * 1000) / Math.max(1, Date.now() - this.t0) : 0;
        await this.opts.callbacks?.onStep?.({
          step: it.step,
          totalSteps: this.plan.totalSteps,
          epoch: it.s.epoch,
          values,
          schedule: it.s,
          stepsPerSecond: sps,
        });
      }
    }
  }

  /** Throws a DeviceError if the GPU reported errors (dropped work) since the last check. */
  private checkDevice(items: PendingStep[]): void {
    const errs = takeDeviceErrors();
    if (errs.length === 0) return;
    this.disposePending(items);
    throw new DeviceError(
      `${deviceErrorMessage(errs)} The last good checkpoint (step ${this.lastGood}) is kept in ${this.plan.ckptFile}.`,
    );
  }

  private disposePending(items: PendingStep[]): void {
    for (const it of items) for (const t of Object.values(it.tensors)) if (!t.isDisposed) t.dispose();
  }
}
