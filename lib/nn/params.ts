/**
 * A named store of tf.Variables: the weights of one network (student, teacher, head, probe).
 *
 * Forward passes are plain functions of (store, input, ctx), so a teacher is just a second
 * store with the same names, EMA is a loop over matching names, and a checkpoint is the
 * list of (name, shape, values).
 */
import * as tf from '@tensorflow/tfjs';

/** What a parameter is, which decides weight decay (none for biases, norms and buffers). */
export type ParamKind = 'weight' | 'bias' | 'norm' | 'embedding' | 'buffer';

/** Whether a parameter of this kind takes weight decay (weights and embeddings only). */
export function takesWeightDecay(kind: ParamKind): boolean {
  return kind === 'weight' || kind === 'embedding';
}

export interface ParamInfo {
  kind: ParamKind;
  trainable: boolean;
}

export interface ParamSnapshot {
  name: string;
  shape: number[];
  kind: ParamKind;
  trainable: boolean;
  values: Float32Array;
}

let storeCounter = 0;

export class ParamStore {
  /** Unique prefix for tfjs's global variable registry (names must not collide across stores). */
  readonly uid: string;
  private readonly vars = new Map<string, tf.Variable>();
  private readonly info = new Map<string, ParamInfo>();
  private disposed = false;

  constructor(readonly label = 'params') {
    this.uid = `${label}#${storeCounter++}`;
  }

  /** Adds a parameter, taking ownership of `init` (it is disposed). */
  add(name: string, init: tf.Tensor, kind: ParamKind, trainable = kind !== 'buffer'): tf.Variable {
    this.checkAlive();
    if (this.vars.has(name)) throw new Error(`ParamStore(${this.label}): parameter "${name}" already exists`);
    const v = tf.variable(init, trainable, `${this.uid}/${name}`, 'float32');
    init.dispose();
    this.vars.set(name, v);
    this.info.set(name, { kind, trainable });
    return v;
  }

  /** Adds a parameter from raw values (initialisers run in JS with our seeded RNG). */
  addValues(
    name: string,
    shape: number[],
    values: Float32Array,
    kind: ParamKind,
    trainable = kind !== 'buffer',
  ): tf.Variable {
    return this.add(name, tf.tensor(values, shape, 'float32'), kind, trainable);
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v)
      throw new Error(
        `ParamStore(${this.label}): no parameter "${name}" (have ${this.vars.size}: ${[...this.vars.keys()].slice(0, 6).join(', ')}...)`,
      );
    return v;
  }

  infoOf(name: string): ParamInfo {
    const i = this.info.get(name);
    if (!i) throw new Error(`ParamStore(${this.label}): no parameter "${name}"`);
    return i;
  }

  names(): string[] {
    return [...this.vars.keys()];
  }

  /** Names of trainable parameters, optionally restricted to a prefix. */
  trainableNames(prefix = ''): string[] {
    return this.names().filter((n) => this.info.get(n)!.trainable && n.startsWith(prefix));
  }

  /** Number of scalar values (trainable only by default; buffers such as running stats excluded). */
  numParams(trainableOnly = true): number {
    let n = 0;
    for (const [name, v] of this.vars) if (!trainableOnly || this.info.get(name)!.trainable) n += v.size;
    return n;
  }

  /** Deep copy with fresh variables (e.g. the DINO teacher); the copy is frozen if `trainable` is false. */
  clone(label = `${this.label}-copy`, trainable?: boolean): ParamStore {
    const c = new ParamStore(label);
    for (const [name, v] of this.vars) {
      const i = this.info.get(name)!;
      c.add(name, v.clone(), i.kind, trainable === undefined ? i.trainable : trainable && i.kind !== 'buffer');
    }
    return c;
  }

  /** Copies values from another store with the same names and shapes. */
  copyFrom(other: ParamStore): void {
    for (const [name, v] of this.vars) v.assign(other.get(name));
  }

  /** Reads every parameter back (async: works on GPU backends). */
  async snapshot(): Promise<ParamSnapshot[]> {
    const out: ParamSnapshot[] = [];
    for (const [name, v] of this.vars) {
      const i = this.info.get(name)!;
      out.push({
        name,
        shape: v.shape.slice(),
        kind: i.kind,
        trainable: i.trainable,
        values: (await v.data()) as Float32Array,
      });
    }
    return out;
  }

  /** Loads values saved by `snapshot`; names and shapes must match exactly. */
  load(snap: ParamSnapshot[]): void {
    const byName = new Map(snap.map((s) => [s.name, s]));
    for (const [name, v] of this.vars) {
      const s = byName.get(name);
      if (!s) throw new Error(`ParamStore(${this.label}).load: snapshot has no "${name}"`);
      if (s.shape.join(',') !== v.shape.join(','))
        throw new Error(
          `ParamStore(${this.label}).load: "${name}" has shape [${s.shape}] in the snapshot, [${v.shape}] here`,
        );
      if (s.values.length !== v.size)
        throw new Error(`ParamStore(${this.label}).load: "${name}" has ${s.values.length} values, expected ${v.size}`);
      tf.tidy(() => v.assign(tf.tensor(s.values, v.shape, 'float32')));
    }
    if (byName.size !== this.vars.size) {
      const extra = [...byName.keys()].filter((n) => !this.vars.has(n));
      throw new Error(
        `ParamStore(${this.label}).load: snapshot has parameters this model lacks: ${extra.slice(0, 5).join(', ')}`,
      );
    }
  }

  dispose(): void {
    if (this.disposed) return;
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.disposed = true;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error(`ParamStore(${this.label}) was disposed`);
  }
}
