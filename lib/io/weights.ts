/**
 * Weights out and in as .safetensors with PyTorch's names and layouts (lib/io/torchLayout.ts), so an
 * encoder trained here loads into torchvision's CIFAR ResNet (`model.load_state_dict(load_file(f))`),
 * and a CIFAR ResNet saved from PyTorch loads into ours.
 *
 * An encoder-only file (the default) holds torchvision's state_dict keys exactly: `conv1.weight`,
 * `bn1.running_mean`, `bn1.num_batches_tracked`, `layer2.0.downsample.0.weight`, ... With `heads`
 * the file is the whole model under our own module names: `backbone.*`, `projector.*` (Barlow
 * Twins projector, an nn.Sequential) and `head.*` (DINO head: `head.mlp.0.weight`,
 * `head.last_layer.weight_g` [out, 1], `head.last_layer.weight_v` [out, bottleneck]).
 * `num_batches_tracked` is written as 0: we do not count batches, and PyTorch only reads it when
 * batch norm's momentum is None; reading ignores it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { buildBackbone, BackboneSpec } from '../models/index';
import { Backbone } from '../nn/module';
import { ParamStore, ParamSnapshot } from '../nn/params';
import { loadCheckpoint, StoredTensor } from '../train/checkpoint';
import { readRunRecord, RunRecord } from '../train/runRecord';
import { CIFAR10_MEAN, CIFAR10_STD } from '../augment/normalize';
import {
  readSafetensors,
  writeSafetensors,
  f32Tensor,
  i64Tensor,
  toFloat32,
  toBigInts,
  SafeTensor,
} from './safetensors';
import { toTorchLayout, fromTorchLayout, inferResnetSpec, LaidOut } from './torchLayout';

export class WeightsError extends Error {
  override name = 'WeightsError';
}

/** Name prefixes of our networks inside a model's parameter store. */
export const WEIGHT_PREFIXES = Object.freeze({ backbone: 'backbone.', projector: 'projector.', head: 'head.' });

/** Metadata keys written into (and read from) the file's `__metadata__`. */
export const WEIGHTS_METADATA = Object.freeze({
  backbone: 'dinotwins.backbone',
  prefix: 'dinotwins.prefix',
  network: 'dinotwins.network',
  input: 'dinotwins.input',
  run: 'dinotwins.run',
  method: 'dinotwins.method',
  status: 'dinotwins.status',
  config: 'dinotwins.config',
  /** What the run trained on: its data identity (source, checksum: an image folder's manifest hash, subset, split) and the images' size. */
  data: 'dinotwins.data',
});

/** How our encoders expect their input; written into every file so the numbers travel with the weights. */
export const INPUT_CONVENTION = `float32 RGB in [0, 1], normalised per channel with mean [${CIFAR10_MEAN.join(', ')}] and std [${CIFAR10_STD.join(', ')}]; PyTorch layout NCHW (dinotwins: NHWC)`;

/** A network whose weights can be written: a backbone with its store (as `loadBackbone`/`importWeights` return them) ... */
export interface BackboneWithParams {
  backbone: Backbone;
  params: ParamStore;
}

/** ... or a pretraining model (student, and DINO's EMA teacher). */
export interface ModelWithParams {
  backbone: Backbone;
  student: ParamStore;
  teacher?: ParamStore;
}

/** A run folder (holding record.json), a record.json path, a network in memory. */
export type WeightsSource = string | BackboneWithParams | ModelWithParams;

export interface ExportWeightsOptions {
  /**
   * Also write the heads (Barlow Twins projector, DINO head). Names then keep our module prefixes
   * (`backbone.`, `projector.`, `head.`). Default false: the encoder alone, under torchvision's names.
   */
  heads: boolean;
  /**
   * Which network of a run with an EMA teacher (DINO, DINO-Twins): 'student' (what this project's
   * probes evaluate) or 'teacher' (the network DINO reports). Default 'student'.
   */
  network: 'student' | 'teacher';
  /** Extra `__metadata__` strings. */
  metadata: Record<string, string>;
}

export const DEFAULT_EXPORT_WEIGHTS_OPTIONS: Readonly<ExportWeightsOptions> = Object.freeze({
  heads: false,
  network: 'student' as const,
  metadata: {},
});

export interface ExportSummary {
  file: string;
  bytes: number;
  /** Tensors written (num_batches_tracked included). */
  tensors: number;
  backbone: BackboneSpec;
  /** The names in the file, in our parameter order. */
  names: string[];
  metadata: Record<string, string>;
}

interface Collected {
  spec: BackboneSpec;
  params: Map<string, LaidOut>; // our names (with prefixes), our layouts
  info: Record<string, string>;
}

function isModel(s: BackboneWithParams | ModelWithParams): s is ModelWithParams {
  return (s as ModelWithParams).student instanceof ParamStore;
}

async function fromStore(ps: ParamStore): Promise<Map<string, LaidOut>> {
  return new Map((await ps.snapshot()).map((s) => [s.name, { shape: s.shape, values: s.values }]));
}

/** Finds the record of a run folder or record.json path. */
function runRecordFile(p: string): string {
  const file = fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, 'record.json') : p;
  if (!fs.existsSync(file))
    throw new WeightsError(
      `${p}: no run record (expected a run folder holding record.json, or the record.json itself)`,
    );
  return file;
}

function collectRun(p: string, network: 'student' | 'teacher'): Collected {
  const file = runRecordFile(p);
  const record: RunRecord = readRunRecord(file);
  const spec = (record.config as { backbone?: BackboneSpec }).backbone;
  if (!spec) throw new WeightsError(`${file}: the run's config has no backbone`);
  // The recorded path, or the checkpoint beside the record when the run folder was moved.
  const beside = path.join(path.dirname(file), 'checkpoint.ckpt');
  const ckpt =
    record.checkpoint && fs.existsSync(record.checkpoint) ? record.checkpoint : fs.existsSync(beside) ? beside : null;
  if (!ckpt)
    throw new WeightsError(
      `run ${record.id} has no checkpoint (recorded: ${record.checkpoint ?? 'none'}; not beside ${file} either): nothing to export`,
    );
  const { groups } = loadCheckpoint(ckpt);
  const g = groups[network];
  if (!g)
    throw new WeightsError(
      `run ${record.id} (${record.method}) has no ${network} network in ${ckpt}${network === 'teacher' ? ': only DINO runs with an EMA teacher have one' : ''}`,
    );
  const params = new Map<string, LaidOut>(
    [...g].map(([n, t]: [string, StoredTensor]) => [n, { shape: t.shape, values: t.values }]),
  );
  const info: Record<string, string> = {
    [WEIGHTS_METADATA.run]: record.id,
    [WEIGHTS_METADATA.method]: record.method,
    [WEIGHTS_METADATA.status]: `${record.status}, step ${record.step} of ${record.totalSteps}`,
    [WEIGHTS_METADATA.config]: JSON.stringify(record.config),
    [WEIGHTS_METADATA.data]: JSON.stringify({
      identity: record.dataIdentity ?? null,
      imageSize: record.data.imageSize ?? 32,
      ...(record.data.folder ? { folder: record.data.folder } : {}),
    }),
  };
  return { spec, params, info };
}

/**
 * The encoder of a run folder (or its record.json), built and loaded from the run's checkpoint: the
 * run's own network, to compare an exported file with. The caller disposes `params`.
 */
export function loadRunEncoder(run: string, network: 'student' | 'teacher' = 'student'): BackboneWithParams {
  const { spec, params } = collectRun(run, network);
  const backbone = buildBackbone(spec);
  const ps = new ParamStore(`run-${path.basename(path.dirname(runRecordFile(run)))}`);
  backbone.init(ps, 0, WEIGHT_PREFIXES.backbone);
  ps.load(
    [...params]
      .filter(([n]) => n.startsWith(WEIGHT_PREFIXES.backbone))
      .map(([name, t]) => ({ name, shape: t.shape, values: t.values, kind: 'weight' as const, trainable: true })),
  );
  return { backbone, params: ps };
}

async function collect(source: WeightsSource, network: 'student' | 'teacher'): Promise<Collected> {
  if (typeof source === 'string') return collectRun(source, network);
  if (source == null || typeof source !== 'object' || !source.backbone)
    throw new WeightsError(
      `exportWeights: expected a run folder, {backbone, params} or a pretraining model, got ${String(source)}`,
    );
  const spec = source.backbone.spec as unknown as BackboneSpec;
  if (isModel(source)) {
    const ps = network === 'teacher' ? source.teacher : source.student;
    if (!ps)
      throw new WeightsError(
        'exportWeights: this model has no EMA teacher (network: "teacher" needs a DINO run with one)',
      );
    return { spec, params: await fromStore(ps), info: {} };
  }
  if (network === 'teacher')
    throw new WeightsError(
      'exportWeights: network "teacher" needs a run or a pretraining model; {backbone, params} holds one network',
    );
  if (!(source.params instanceof ParamStore))
    throw new WeightsError('exportWeights: {backbone, params}: params must be a ParamStore');
  return { spec, params: await fromStore(source.params), info: {} };
}

/**
 * Writes the encoder (and with `heads`, the heads) of a run or a network to `file` as .safetensors,
 * in PyTorch's layouts, atomically. Returns what was written.
 */
export async function exportWeights(
  source: WeightsSource,
  file: string,
  options: Partial<ExportWeightsOptions> = {},
): Promise<ExportSummary> {
  const o = { ...DEFAULT_EXPORT_WEIGHTS_OPTIONS, ...options };
  if (o.network !== 'student' && o.network !== 'teacher')
    throw new WeightsError(`exportWeights: network must be "student" or "teacher", got ${JSON.stringify(o.network)}`);
  if (!file) throw new WeightsError('exportWeights: no output file given');
  const { spec, params, info } = await collect(source, o.network);
  const keepPrefixes = o.heads
    ? [WEIGHT_PREFIXES.backbone, WEIGHT_PREFIXES.projector, WEIGHT_PREFIXES.head]
    : [WEIGHT_PREFIXES.backbone];
  const names = [...params.keys()].filter((n) => keepPrefixes.some((p) => n.startsWith(p)));
  if (!names.some((n) => n.startsWith(WEIGHT_PREFIXES.backbone))) {
    throw new WeightsError(
      `exportWeights: no "${WEIGHT_PREFIXES.backbone}*" parameters to export (have: ${[...params.keys()].slice(0, 4).join(', ')}...)`,
    );
  }
  if (o.heads && names.every((n) => n.startsWith(WEIGHT_PREFIXES.backbone)))
    throw new WeightsError(
      'exportWeights: heads were asked for, but this network has none (a baseline or a loaded encoder)',
    );
  const prefix = o.heads ? '' : WEIGHT_PREFIXES.backbone; // stripped from the names in the file
  const tensors: Array<[string, SafeTensor]> = [];
  const written: string[] = [];
  for (const name of names) {
    const outName = name.slice(prefix.length);
    const t = toTorchLayout(name, params.get(name)!);
    tensors.push([outName, f32Tensor(t.shape, t.values)]);
    written.push(outName);
    if (name.endsWith('.running_mean')) {
      const nbt = `${outName.slice(0, -'running_mean'.length)}num_batches_tracked`;
      tensors.push([nbt, i64Tensor([], [0])]);
      written.push(nbt);
    }
  }
  const metadata: Record<string, string> = {
    format: 'pt',
    [WEIGHTS_METADATA.backbone]: JSON.stringify(spec),
    [WEIGHTS_METADATA.prefix]: o.heads ? WEIGHT_PREFIXES.backbone : '',
    [WEIGHTS_METADATA.network]: o.network,
    [WEIGHTS_METADATA.input]: INPUT_CONVENTION,
    ...info,
    ...o.metadata,
  };
  const bytes = writeSafetensors(file, tensors, metadata);
  return { file, bytes, tensors: tensors.length, backbone: spec, names: written, metadata };
}

export interface ImportWeightsOptions {
  /**
   * Prefix of the encoder's tensor names in the file ('' = torchvision's names, 'backbone.' = a
   * dinotwins model file, 'module.' = a DataParallel state_dict ...). Default: the file's
   * dinotwins metadata, else ''.
   */
  prefix: string;
  /** The backbone to build. Default: the file's dinotwins metadata, else inferred from the names and shapes (CIFAR ResNet-18/50). */
  backbone: BackboneSpec;
}

export interface ImportedWeights {
  backbone: Backbone;
  /** The encoder's parameters under `backbone.*` (as `loadBackbone` returns them); the caller disposes it. */
  params: ParamStore;
  spec: BackboneSpec;
  /** The file's `__metadata__`. */
  metadata: Record<string, string>;
  /** Tensors outside the encoder (`projector.*`, `head.*` of a file written with heads), in our layouts. */
  heads: Map<string, LaidOut>;
  file: string;
}

function parseSpec(file: string, metadata: Record<string, string>): BackboneSpec | null {
  const raw = metadata[WEIGHTS_METADATA.backbone];
  if (raw === undefined) return null;
  try {
    return JSON.parse(raw) as BackboneSpec;
  } catch (e) {
    throw new WeightsError(`${file}: metadata ${WEIGHTS_METADATA.backbone} is not JSON: ${(e as Error).message}`);
  }
}

function listNames(names: readonly string[], max = 6): string {
  return names.slice(0, max).join(', ') + (names.length > max ? `, ... (${names.length} in all)` : '');
}

/**
 * Reads a .safetensors file of an encoder (written by `exportWeights`, or saved from a
 * torchvision-layout CIFAR ResNet in PyTorch) into a freshly built backbone. Every parameter of
 * the backbone must be in the file with PyTorch's shape and a floating-point dtype; a name the
 * backbone does not have is an error (heads of a dinotwins model file are returned in `heads`).
 */
export function importWeights(file: string, options: Partial<ImportWeightsOptions> = {}): ImportedWeights {
  const { tensors, metadata } = readSafetensors(file);
  const prefix = options.prefix ?? metadata[WEIGHTS_METADATA.prefix] ?? '';
  const mine = new Map<string, SafeTensor>(); // encoder tensors, names without the prefix
  const others = new Map<string, SafeTensor>();
  for (const [name, t] of tensors) {
    if (name.startsWith(prefix)) mine.set(name.slice(prefix.length), t);
    else others.set(name, t);
  }
  const spec =
    options.backbone ??
    parseSpec(file, metadata) ??
    (() => {
      if (mine.has('patch_embed.proj.weight'))
        throw new WeightsError(
          `${file}: a ViT without dinotwins metadata: its number of heads is not in its weights; pass the backbone option, e.g. {kind: 'vit', preset: 'tiny4'}`,
        );
      try {
        return inferResnetSpec(
          new Map([...mine].map(([n, t]) => [n, t.shape])),
          prefix ? `${file} (prefix "${prefix}")` : file,
        );
      } catch (e) {
        throw new WeightsError((e as Error).message);
      }
    })();
  let backbone: Backbone;
  try {
    backbone = buildBackbone(spec);
  } catch (e) {
    throw new WeightsError(`${file}: cannot build the backbone ${JSON.stringify(spec)}: ${(e as Error).message}`);
  }
  const heads = new Map<string, LaidOut>();
  const unknown: string[] = [];
  for (const [name, t] of others) {
    if (![WEIGHT_PREFIXES.projector, WEIGHT_PREFIXES.head].some((p) => name.startsWith(p))) {
      unknown.push(name);
      continue;
    }
    if (name.endsWith('.num_batches_tracked')) continue;
    heads.set(name, fromTorchLayout(name, { shape: t.shape, values: toFloat32(t, `${file}: ${name}`) }));
  }
  const params = new ParamStore('imported');
  try {
    backbone.init(params, 0, WEIGHT_PREFIXES.backbone);
    const wanted = new Map(params.names().map((n) => [n.slice(WEIGHT_PREFIXES.backbone.length), n]));
    for (const name of mine.keys()) {
      if (wanted.has(name)) continue;
      if (
        name.endsWith('.num_batches_tracked') &&
        wanted.has(`${name.slice(0, -'num_batches_tracked'.length)}running_mean`)
      ) {
        toBigInts(mine.get(name)!, `${file}: ${prefix}${name}`); // must be an integer counter; its value is not used
        continue;
      }
      unknown.push(`${prefix}${name}`);
    }
    if (unknown.length > 0) {
      throw new WeightsError(
        `${file}: ${unknown.length} tensor(s) that this ${describe(spec)} does not have: ${listNames(unknown)}` +
          (unknown.some((n) => n.startsWith('fc.'))
            ? ' (a classifier head: drop "fc.*" from the state_dict before saving)'
            : '') +
          (prefix === '' &&
          unknown.every((n) => n.includes('.')) &&
          new Set(unknown.map((n) => n.split('.')[0])).size === 1
            ? ` (if the encoder is under "${unknown[0].split('.')[0]}.", pass prefix: "${unknown[0].split('.')[0]}.")`
            : ''),
      );
    }
    const missing = [...wanted.keys()].filter((n) => !mine.has(n));
    if (missing.length > 0)
      throw new WeightsError(
        `${file}: ${missing.length} parameter(s) of this ${describe(spec)} are missing from the file: ${listNames(missing.map((n) => prefix + n))}`,
      );
    const snap: ParamSnapshot[] = [];
    for (const [name, full] of wanted) {
      const t = mine.get(name)!;
      const expected = params.get(full).shape;
      let values: Float32Array;
      try {
        values = toFloat32(t, `${prefix}${name}`);
      } catch (e) {
        throw new WeightsError(`${file}: wrong dtype: ${(e as Error).message}`);
      }
      let laid: LaidOut;
      try {
        laid = fromTorchLayout(name, { shape: t.shape, values }, expected);
      } catch (e) {
        throw new WeightsError(
          `${file}: wrong shape: ${(e as Error).message}; the file holds a different network than this ${describe(spec)}`,
        );
      }
      const info = params.infoOf(full);
      snap.push({ name: full, shape: laid.shape, values: laid.values, kind: info.kind, trainable: info.trainable });
    }
    params.load(snap);
  } catch (e) {
    params.dispose();
    throw e;
  }
  return { backbone, params, spec, metadata, heads, file };
}

function describe(spec: BackboneSpec): string {
  return spec.kind === 'resnet' ? `ResNet-${spec.depth} (width ${spec.width ?? 64})` : `ViT (${JSON.stringify(spec)})`;
}
