#!/usr/bin/python3
"""PyTorch side of test/export-torch.test.ts: dinotwins' .safetensors weights against the reference
networks of test/reference/models_ref.py (torchvision's CIFAR ResNet, DINO's ViT and DINOHead, the
Barlow Twins projector), with a safetensors reader and writer written here from the format's spec
(huggingface/safetensors README), independently of lib/io/safetensors.ts.

  export_check.py check WEIGHTS IO [WEIGHTS IO ...]
      WEIGHTS: written by dinotwins' exportWeights. IO: inputs and dinotwins' outputs (x NHWC, features,
      optionally projector_out / head_out) and, in its metadata, the network to build ("network").
      Loads WEIGHTS into the reference network with load_state_dict(strict=True), runs x in eval mode in
      float64 and in float32, prints one JSON line per pair: the largest differences to dinotwins.
  export_check.py save OUTDIR
      Builds CIFAR ResNets in PyTorch (float32, batch-norm statistics from a few training-mode passes,
      then randomised affine parameters), saves each state_dict as OUTDIR/<name>.safetensors (no dinotwins
      metadata: as any PyTorch user would save it), and OUTDIR/<name>-io.safetensors with fixed inputs x
      (NHWC) and the eval-mode features computed in float64. Prints the names as JSON.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models_ref  # noqa: E402  (sets float64 as the default dtype)

torch.set_num_threads(2)

DTYPES = {'F32': (np.float32, 4), 'F64': (np.float64, 8), 'F16': (np.float16, 2), 'I64': (np.int64, 8),
          'I32': (np.int32, 4), 'U8': (np.uint8, 1)}
NP_TO_ST = {np.dtype(np.float32): 'F32', np.dtype(np.float64): 'F64', np.dtype(np.int64): 'I64'}


def read_safetensors(path):
    with open(path, 'rb') as f:
        buf = f.read()
    (n,) = struct.unpack('<Q', buf[:8])
    header = json.loads(buf[8:8 + n].decode('utf-8'))
    data = buf[8 + n:]
    meta = header.pop('__metadata__', {})
    out = {}
    end_max = 0
    for name, e in header.items():
        np_dtype, size = DTYPES[e['dtype']]
        begin, end = e['data_offsets']
        count = int(np.prod(e['shape'])) if e['shape'] else 1
        assert end - begin == count * size, (name, e)
        end_max = max(end_max, end)
        arr = np.frombuffer(data[begin:end], dtype=np.dtype(np_dtype).newbyteorder('<')).reshape(e['shape'])
        out[name] = torch.from_numpy(arr.astype(np_dtype, copy=True))
    assert end_max == len(data), 'the tensors must cover the data exactly'
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header['__metadata__'] = metadata
    chunks = []
    offset = 0
    for name, t in tensors.items():
        arr = t.detach().cpu().contiguous().numpy()
        raw = arr.astype(arr.dtype.newbyteorder('<'), copy=False).tobytes()
        header[name] = {'dtype': NP_TO_ST[arr.dtype], 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode('utf-8')
    h += b' ' * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(chunks))


def build(net):
    kind = net['kind']
    if kind == 'resnet':
        return models_ref.CifarResNet(net['depth'], net['width'])
    if kind == 'vit':
        return models_ref.VisionTransformer(net['imageSize'], net['patch'], net['dim'], net['depth'], net['heads'],
                                            net['mlpDim'], net.get('qkvBias', True))
    raise ValueError('unknown network kind %r' % kind)


def backbone_out(model, x):
    y = model(x)
    return y[0] if isinstance(y, tuple) else y


def sub_state(weights, prefix):
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


def diff(ours, ref):
    ours = ours.double()
    return {'max_abs': float((ours - ref).abs().max()), 'max_ref': float(ref.abs().max()), 'n': int(ref.numel())}


def check(weights_path, io_path):
    weights, meta = read_safetensors(weights_path)
    io, io_meta = read_safetensors(io_path)
    net = json.loads(io_meta['network'])
    prefix = meta.get('dinotwins.prefix', '')
    model = build(net)
    # strict=True: the file must hold exactly the module's state_dict keys, with its shapes.
    model.load_state_dict(sub_state(weights, prefix) if prefix else weights, strict=True)
    heads = {}
    if 'projector' in net:
        p = net['projector']
        heads['projector'] = models_ref.barlow_projector(p['in'], hidden=p['hidden'], out=p['out'], layers=p['layers'])
        heads['projector'].load_state_dict(sub_state(weights, 'projector.'), strict=True)
    if 'head' in net:
        h = net['head']
        heads['head'] = models_ref.DINOHead(h['in'], h['out'], use_bn=h['useBn'], nlayers=h['nlayers'],
                                            hidden_dim=h['hidden'], bottleneck_dim=h['bottleneck'])
        heads['head'].load_state_dict(sub_state(weights, 'head.'), strict=True)
    result = {'weights': os.path.basename(weights_path), 'network': net, 'tensors': len(weights)}
    x = io['x'].permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    for dtype, tag in ((torch.float64, ''), (torch.float32, '_torch_f32')):
        model.to(dtype).eval()
        for m in heads.values():
            m.to(dtype).eval()
        with torch.no_grad():
            f = backbone_out(model, x.to(dtype))
            result['features' + tag] = diff(io['features'], f.double())
            for name, m in heads.items():
                # Our heads' outputs on our features; the reference head on the same features isolates the head.
                result[name + tag] = diff(io[name + '_out'], m(io['features'].to(dtype)).double())
    return result


def save(outdir):
    torch.set_default_dtype(torch.float32)
    names = []
    for depth, width, b in ((18, 8, 3), (50, 2, 2)):
        torch.manual_seed(depth)
        model = models_ref.CifarResNet(depth, width)
        model.train()
        with torch.no_grad():
            for _ in range(3):  # running statistics away from their 0 / 1 start
                model(torch.randn(8, 3, 32, 32) * 1.5 + 0.3)
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.2, 0.2)
        model.eval()
        name = 'torch-r%dw%d' % (depth, width)
        write_safetensors(os.path.join(outdir, name + '.safetensors'), model.state_dict())
        g = torch.Generator().manual_seed(7)
        x = torch.randn(b, 32, 32, 3, generator=g)  # NHWC, like normalised images
        with torch.no_grad():
            f = model.double()(x.double().permute(0, 3, 1, 2))
        write_safetensors(os.path.join(outdir, name + '-io.safetensors'), {'x': x, 'features': f},
                          {'network': json.dumps({'kind': 'resnet', 'depth': depth, 'width': width})})
        names.append(name)
    return names


def main(argv):
    if len(argv) >= 3 and argv[0] == 'check' and len(argv) % 2 == 1:
        for i in range(1, len(argv), 2):
            print(json.dumps(check(argv[i], argv[i + 1])))
        return 0
    if len(argv) == 2 and argv[0] == 'save':
        print(json.dumps(save(argv[1])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
