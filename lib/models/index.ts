/** Backbones and heads from serialisable specs (what configs, run records and checkpoints store). */
import { ParamStore } from '../nn/params';
import { Backbone, Head } from '../nn/module';
import { resnet, ResNetDepth } from './resnet';
import { vit, VIT_PRESETS, VitOptions } from './vit';

export { resnet, RESNET_DEFAULTS } from './resnet';
export type { ResNetOptions, ResNetDepth } from './resnet';
export { vit, VIT_PRESETS, bicubicMatrix } from './vit';
export type { VitOptions, VitPresetName } from './vit';
export { mlpHead, barlowProjector, barlowProjectorBlocks, dinoHead, lastLayerParamNames } from './heads';
export type { MlpBlock, MlpHeadOptions, BarlowProjectorOptions, DinoHeadOptions } from './heads';

/** Serialisable backbone description. */
export type BackboneSpec =
  { kind: 'resnet'; depth: ResNetDepth; width?: number } | ({ kind: 'vit'; preset: string } & Partial<VitOptions>);

const VIT_KEYS: ReadonlyArray<keyof VitOptions> = [
  'imageSize',
  'patch',
  'dim',
  'depth',
  'heads',
  'mlpDim',
  'qkvBias',
  'lnEps',
];

/** Builds the backbone a spec describes; its `spec` is the given spec (so it round-trips through JSON). */
export function buildBackbone(spec: BackboneSpec): Backbone {
  if (spec === null || typeof spec !== 'object')
    throw new Error(`buildBackbone: expected a spec object, got ${JSON.stringify(spec)}`);
  const s = spec as { kind?: unknown } & Record<string, unknown>;
  if (s.kind === 'resnet') {
    const extra = Object.keys(s).filter((k) => !['kind', 'depth', 'width'].includes(k));
    if (extra.length)
      throw new Error(`buildBackbone: unknown resnet option(s) ${extra.join(', ')} (expected depth, width)`);
    const b = resnet({ depth: s.depth as ResNetDepth, width: s.width as number | undefined });
    return { ...b, spec: { ...s } };
  }
  if (s.kind === 'vit') {
    const preset = s.preset;
    if (typeof preset !== 'string' || !(preset in VIT_PRESETS)) {
      throw new Error(
        `buildBackbone: unknown vit preset ${JSON.stringify(preset)} (known: ${Object.keys(VIT_PRESETS).join(', ')})`,
      );
    }
    const overrides: Partial<VitOptions> = {};
    for (const [k, v] of Object.entries(s)) {
      if (k === 'kind' || k === 'preset') continue;
      if (!(VIT_KEYS as readonly string[]).includes(k))
        throw new Error(`buildBackbone: unknown vit option "${k}" (expected ${VIT_KEYS.join(', ')})`);
      (overrides as Record<string, unknown>)[k] = v;
    }
    const b = vit({ ...VIT_PRESETS[preset as keyof typeof VIT_PRESETS], ...overrides });
    return { ...b, spec: { ...s } };
  }
  throw new Error(`buildBackbone: unknown backbone kind ${JSON.stringify(s.kind)} (expected "resnet" or "vit")`);
}

/**
 * Trainable parameters of a network, counted by building it in a scratch store (the same code path
 * training uses) and disposing it; or, given a store, its trainable parameters under `prefix`.
 */
export function countParams(net: Backbone | Head | ParamStore, prefix = ''): number {
  if (net instanceof ParamStore) return net.trainableNames(prefix).reduce((n, name) => n + net.get(name).size, 0);
  const ps = new ParamStore('count');
  try {
    net.init(ps, 0, prefix);
    return ps.numParams(true);
  } finally {
    ps.dispose();
  }
}
