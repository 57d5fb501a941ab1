/**
 * Parameter names and layouts between dinotwins and PyTorch. Our names already follow the
 * PyTorch modules the networks copy (torchvision's resnet.py, DINO's vision_transformer.py and
 * DINOHead, the Barlow Twins projector as an nn.Sequential); only layouts differ:
 *   convolution weight   ours [kh, kw, in, out] (tfjs HWIO)   PyTorch [out, in, kh, kw] (OIHW)
 *   linear weight        ours [in, out]                        PyTorch [out, in]
 *   DINO weight_v        ours [bottleneck, out]                PyTorch [out, bottleneck]
 *   DINO weight_g        ours [out]                            PyTorch [out, 1]
 * Everything else (biases, batch-norm weight/bias/running_mean/running_var, layer norms, cls_token,
 * pos_embed) has the same shape and order in both.
 */

/** A parameter's values with its shape, row-major. */
export interface LaidOut {
  shape: number[];
  values: Float32Array;
}

export class LayoutError extends Error {
  override name = 'LayoutError';
}

function isLinearWeight(name: string, rank: number): boolean {
  return (
    rank === 2 && (name.endsWith('.weight') || name.endsWith('.weight_v') || name === 'weight' || name === 'weight_v')
  );
}

function isWeightG(name: string): boolean {
  return name.endsWith('.weight_g') || name === 'weight_g';
}

/** Generic row-major permutation of `values` with `shape` by `perm` (out axis i = in axis perm[i]). */
export function permute(values: Float32Array, shape: readonly number[], perm: readonly number[]): LaidOut {
  const rank = shape.length;
  if (perm.length !== rank || [...perm].sort().some((p, i) => p !== i))
    throw new LayoutError(`permute: ${JSON.stringify(perm)} is not a permutation of ${rank} axes`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new LayoutError(`permute: ${values.length} values for shape [${shape.join(', ')}]`);
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const strides = perm.map((p) => inStrides[p]); // input stride of each output axis
  const out = new Float32Array(n);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < n; o++) {
    out[o] = values[src];
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]++;
      src += strides[a];
      if (idx[a] < outShape[a]) break;
      src -= strides[a] * outShape[a];
      idx[a] = 0;
    }
  }
  return { shape: outShape, values: out };
}

/** PyTorch's shape of one of our parameters. */
export function torchShape(name: string, shape: readonly number[]): number[] {
  if (shape.length === 4) return [shape[3], shape[2], shape[0], shape[1]];
  if (isLinearWeight(name, shape.length)) return [shape[1], shape[0]];
  if (isWeightG(name) && shape.length === 1) return [shape[0], 1];
  return shape.slice();
}

/** One of our parameters in PyTorch's layout (see the table at the top of this file). */
export function toTorchLayout(name: string, p: LaidOut): LaidOut {
  if (p.shape.length === 4) return permute(p.values, p.shape, [3, 2, 0, 1]); // HWIO -> OIHW
  if (isLinearWeight(name, p.shape.length)) return permute(p.values, p.shape, [1, 0]);
  if (isWeightG(name) && p.shape.length === 1) return { shape: [p.shape[0], 1], values: p.values.slice() };
  return { shape: p.shape.slice(), values: p.values.slice() };
}

/**
 * A parameter in PyTorch's layout converted to ours. With `expected` (our shape), a mismatch is a
 * LayoutError that shows both shapes in PyTorch's layout, as the file holds them.
 */
export function fromTorchLayout(name: string, p: LaidOut, expected?: readonly number[]): LaidOut {
  if (expected && torchShape(name, expected).join(',') !== p.shape.join(',')) {
    throw new LayoutError(
      `${name} has shape [${p.shape.join(', ')}] but this model needs [${torchShape(name, expected).join(', ')}] (PyTorch layout${expected.length === 4 ? ': [out, in, kh, kw]' : isLinearWeight(name, expected.length) ? ': [out, in]' : ''})`,
    );
  }
  if (p.shape.length === 4) return permute(p.values, p.shape, [2, 3, 1, 0]); // OIHW -> HWIO
  if (isLinearWeight(name, p.shape.length)) return permute(p.values, p.shape, [1, 0]);
  if (isWeightG(name) && p.shape.length === 2 && p.shape[1] === 1)
    return { shape: [p.shape[0]], values: p.values.slice() };
  return { shape: p.shape.slice(), values: p.values.slice() };
}

/** The CIFAR ResNet a set of PyTorch parameter shapes describes (torchvision names), or an error saying why not. */
export function inferResnetSpec(
  shapes: ReadonlyMap<string, readonly number[]>,
  source = 'weights',
): { kind: 'resnet'; depth: 18 | 50; width: number } {
  const conv1 = shapes.get('conv1.weight');
  if (!conv1) {
    const some = [...shapes.keys()].slice(0, 5).join(', ');
    throw new LayoutError(
      `${source}: no "conv1.weight", so this is not a torchvision-named ResNet (first names: ${some}${shapes.size > 5 ? ', ...' : ''}); a prefix such as "module." or "encoder." can be given with the prefix option`,
    );
  }
  if (conv1.length !== 4 || conv1[1] !== 3)
    throw new LayoutError(`${source}: conv1.weight has shape [${conv1.join(', ')}], expected [width, 3, 3, 3]`);
  if (conv1[2] === 7)
    throw new LayoutError(
      `${source}: conv1.weight is 7x7, torchvision's ImageNet stem; dinotwins' ResNet has the CIFAR stem (3x3 conv, stride 1, no max-pool)`,
    );
  if (conv1[2] !== 3 || conv1[3] !== 3)
    throw new LayoutError(`${source}: conv1.weight is ${conv1[2]}x${conv1[3]}; the CIFAR stem is a 3x3 conv`);
  const blocks = [1, 2, 3, 4].map((s) => {
    let b = 0;
    while ([...shapes.keys()].some((k) => k.startsWith(`layer${s}.${b}.`))) b++;
    return b;
  });
  const bottleneck = shapes.has('layer1.0.conv3.weight');
  const depth =
    !bottleneck && blocks.join(',') === '2,2,2,2' ? 18 : bottleneck && blocks.join(',') === '3,4,6,3' ? 50 : null;
  if (depth === null) {
    throw new LayoutError(
      `${source}: a ResNet with ${bottleneck ? 'Bottleneck' : 'BasicBlock'} stages of [${blocks.join(', ')}] blocks; dinotwins builds ResNet-18 (BasicBlock [2, 2, 2, 2]) and ResNet-50 (Bottleneck [3, 4, 6, 3])`,
    );
  }
  return { kind: 'resnet', depth, width: conv1[0] };
}
