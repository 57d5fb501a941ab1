"""PyTorch reference for bench/gpu.ts on the same card: the same training steps and kernels, fp32,
channels-last eager. Models mirror lib/models (CIFAR ResNet-18 with a 3x3 stem and no max-pool;
Barlow Twins projector of bias-free Linear-BN-ReLU blocks; DINO head MLP-GELU -> 256 -> L2 ->
weight-normalised 4096; ViT-T/4 with a class token), losses mirror lib/losses (Barlow Twins of
facebookresearch/barlowtwins; DINO of facebookresearch/dino; DINO-Twins = DINO + beta * mean Barlow
over ordered view pairs on a projector). Timing: warm-up, then R repeats of S steps with one
synchronize each; median of repeat time / S. Peak memory from torch.cuda.max_memory_allocated.

  python3 bench/torch_gpu.py [--batch 256] [--width 64] [--steps barlow-r18,dinotwins-r18,barlow-vit]
                             [--what steps,kernels] [--repeats 5] [--per-repeat 3] [--warmup 2]
                             [--iters 10] [--local 4] [--out file.json] [--quick]
Runs on CPU too (slowly) so the script itself can be checked without a GPU.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, k, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.a = conv_bn(cin, planes, 3, stride)
        self.b = conv_bn(planes, planes, 3, 1)
        self.down = conv_bn(cin, planes, 1, stride) if stride != 1 or cin != planes else None

    def forward(self, x):
        y = self.b(F.relu(self.a(x)))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class ResNet18(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.stem = conv_bn(3, width, 3, 1)
        blocks, cin = [], width
        for s in range(4):
            for b in range(2):
                planes = width * 2 ** s
                blocks.append(BasicBlock(cin, planes, 2 if b == 0 and s > 0 else 1))
                cin = planes
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = cin

    def forward(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(self.blocks(F.relu(self.stem(x))), 1), 1)


class ViT(nn.Module):
    def __init__(self, image=32, patch=4, dim=192, depth=12, heads=3, mlp=768):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, mlp, dropout=0.0, activation='gelu', batch_first=True, norm_first=True, layer_norm_eps=1e-6)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.feature_dim = dim

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)  # [B, N, D]
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1)
        if t.shape[1] != self.pos.shape[1]:  # local crops: interpolate patch position embeddings
            n0 = int(math.sqrt(self.pos.shape[1] - 1))
            n1 = int(math.sqrt(t.shape[1] - 1))
            p = self.pos[:, 1:].reshape(1, n0, n0, -1).permute(0, 3, 1, 2)
            p = F.interpolate(p, size=(n1, n1), mode='bicubic', align_corners=False).permute(0, 2, 3, 1).reshape(1, n1 * n1, -1)
            pos = torch.cat([self.pos[:, :1], p], 1)
        else:
            pos = self.pos
        return self.norm(self.encoder(t + pos))[:, 0]


def projector(din, hidden=2048, out=2048, layers=3):
    mods, d = [], din
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, out, bias=False))
    return nn.Sequential(*mods)


class DinoHead(nn.Module):
    def __init__(self, din, out=4096, hidden=2048, bottleneck=256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(din, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, bottleneck))
        self.last = nn.utils.weight_norm(nn.Linear(bottleneck, out, bias=False))
        self.last.weight_g.data.fill_(1)

    def forward(self, x):
        return self.last(F.normalize(self.mlp(x), dim=-1))


def barlow_loss(z1, z2, lam=0.0051):
    b = z1.shape[0]
    c = F.batch_norm(z1, None, None, training=True).T @ F.batch_norm(z2, None, None, training=True) / b
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + lam * off


def dino_loss(student, teacher, center, st=0.1, tt=0.04):
    t = F.softmax((teacher - center) / tt, -1).detach()  # [2, B, K]
    s = F.log_softmax(student / st, -1)  # [V, B, K]
    total, n = 0.0, 0
    for i in range(t.shape[0]):
        for v in range(s.shape[0]):
            if v == i:
                continue
            total = total + (-t[i] * s[v]).sum(-1).mean()
            n += 1
    return total / n


def make_step(name, a, dev):
    cl = torch.channels_last
    if name == 'barlow-r18' or name == 'barlow-vit':
        bb = (ResNet18(a.width) if name == 'barlow-r18' else ViT(depth=a.vit_depth)).to(dev, memory_format=cl)
        proj = projector(bb.feature_dim).to(dev)
        params = list(bb.parameters()) + list(proj.parameters())
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
        views = [torch.randn(a.batch, 3, 32, 32, device=dev).contiguous(memory_format=cl) for _ in range(2)]

        def step():
            opt.zero_grad(set_to_none=True)
            z = [proj(bb(v)) for v in views]
            loss = barlow_loss(z[0], z[1])
            loss.backward()
            opt.step()
            return loss
        return step, 2 * a.batch
    if name == 'dinotwins-r18':
        bb = ResNet18(a.width).to(dev, memory_format=cl)
        head = DinoHead(bb.feature_dim).to(dev)
        proj = projector(bb.feature_dim).to(dev)
        t_bb = ResNet18(a.width).to(dev, memory_format=cl)
        t_head = DinoHead(bb.feature_dim).to(dev)
        t_bb.load_state_dict(bb.state_dict())
        t_head.load_state_dict(head.state_dict())
        for p in list(t_bb.parameters()) + list(t_head.parameters()):
            p.requires_grad_(False)
        center = torch.zeros(1, 4096, device=dev)
        params = list(bb.parameters()) + list(head.parameters()) + list(proj.parameters())
        opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.04)
        views = [torch.randn(a.batch, 3, 32, 32, device=dev).contiguous(memory_format=cl) for _ in range(2)]
        views += [torch.randn(a.batch, 3, 16, 16, device=dev).contiguous(memory_format=cl) for _ in range(a.local)]

        def step():
            nonlocal center
            with torch.no_grad():
                teacher = torch.stack([t_head(t_bb(v)) for v in views[:2]])  # [2, B, K]
            opt.zero_grad(set_to_none=True)
            feats = [bb(v) for v in views]
            student = torch.stack([head(f) for f in feats])
            p = [proj(f) for f in feats]
            pairs = [barlow_loss(p[i], p[j], 0.005) for i in range(len(p)) for j in range(len(p)) if i != j]
            loss = dino_loss(student, teacher, center) + 0.0025 * torch.stack(pairs).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 3.0)
            opt.step()
            with torch.no_grad():
                for ps, pt in zip(list(bb.parameters()) + list(head.parameters()), list(t_bb.parameters()) + list(t_head.parameters())):
                    pt.mul_(0.996).add_(ps.detach(), alpha=0.004)
                center = center * 0.9 + teacher.mean((0, 1)) * 0.1
            return loss
        return step, (2 + a.local) * a.batch
    raise SystemExit(f'unknown step {name}')


def sync(dev):
    if dev.type == 'cuda':
        torch.cuda.synchronize()


def timed(f, a, dev, per):
    for _ in range(a.warmup):
        f()
    sync(dev)
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(per):
            f()
        sync(dev)
        times.append((time.perf_counter() - t0) * 1000 / per)
    return statistics.median(times), times


def kernels(a, dev):
    out = []
    B = a.kernel_batch
    for S, C in a.kernel_shapes:
        x = torch.randn(B, C, S, S, device=dev).contiguous(memory_format=torch.channels_last)
        w = (0.05 * torch.randn(C, C, 3, 3, device=dev)).contiguous(memory_format=torch.channels_last)
        dy = torch.randn(B, C, S, S, device=dev).contiguous(memory_format=torch.channels_last)
        flops = 2 * B * S * S * 9 * C * C
        act = 4 * B * S * S * C
        ops = [
            ('conv3x3 forward', lambda: F.conv2d(x, w, padding=1), flops, 2 * act),
            ('conv3x3 input grad', lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, padding=1), flops, 2 * act),
            ('conv3x3 filter grad', lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, padding=1), flops, 2 * act),
            ('BN moments', lambda: torch.var_mean(x, dim=(0, 2, 3), unbiased=False), 3 * B * S * S * C, act),
            ('BN moments+normalise', lambda: F.batch_norm(x, None, None, training=True), 6 * B * S * S * C, 2 * act),
        ]
        for op, f, fl, by in ops:
            with torch.no_grad():
                ms, _ = timed(f, a, dev, a.iters)
            out.append({'op': op, 'shape': f'{B}x{S}x{S}x{C}', 'mode': 'torch', 'ms': ms, 'flops': fl, 'bytes': by, 'tflops': fl / (ms * 1e9), 'gbps': by / (ms * 1e6)})
            print(f'  torch {op:22s} {B}x{S}x{S}x{C:<6} {ms:9.3f} ms  {fl / (ms * 1e9):7.2f} TFLOP/s  {by / (ms * 1e6):8.1f} GB/s', flush=True)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--width', type=int, default=64)
    p.add_argument('--steps', default='barlow-r18,dinotwins-r18,barlow-vit')
    p.add_argument('--what', default='steps,kernels')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--per-repeat', type=int, default=3)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--local', type=int, default=4)
    p.add_argument('--kernel-batch', type=int, default=256)
    p.add_argument('--vit-depth', type=int, default=12)
    p.add_argument('--out')
    p.add_argument('--quick', action='store_true')
    p.add_argument('--tf32', action='store_true', help='keep PyTorch defaults (cuDNN convs in TF32 on tensor cores); default is strict fp32 like WebGPU')
    a = p.parse_args()
    a.kernel_shapes = [(32, 64), (16, 128), (8, 256), (4, 512)]
    if a.quick:
        a.batch, a.width, a.repeats, a.per_repeat, a.warmup, a.iters, a.local, a.kernel_batch, a.vit_depth = 2, 8, 2, 1, 1, 2, 2, 2, 4
        a.kernel_shapes = [(8, 16), (4, 32)]
    if not a.tf32:  # strict fp32 like WebGPU (PyTorch's default lets cuDNN convolutions use TF32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if dev.type == 'cpu':
        torch.set_num_threads(2)
    name = torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'cpu'
    print(f'torch {torch.__version__} on {name}', flush=True)
    report = {'device': name, 'torch': torch.__version__, 'args': {k: v for k, v in vars(a).items()}, 'steps': [], 'kernels': []}
    what = a.what.split(',')

    def save():  # after every result, so a run stopped by a time limit keeps what it measured
        if a.out:
            with open(a.out + '.tmp', 'w') as f:
                json.dump(report, f, indent=1)
            os.replace(a.out + '.tmp', a.out)
    if 'kernels' in what:
        report['kernels'] = kernels(a, dev)
        save()
    if 'steps' in what:
        for s in a.steps.split(','):
            if dev.type == 'cuda':
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            step, views = make_step(s, a, dev)
            last = {}

            def run():
                last['loss'] = step()
            ms, times = timed(run, a, dev, a.per_repeat)
            peak = torch.cuda.max_memory_allocated() if dev.type == 'cuda' else 0
            loss = float(last['loss'])
            r = {'name': s, 'mode': 'torch', 'batch': a.batch, 'viewsPerStep': views, 'msPerStep': ms, 'viewsPerSec': views * 1000 / ms, 'peakGpuBytes': peak, 'loss': loss, 'repeats': times}
            report['steps'].append(r)
            save()
            print(f'  torch {s:14s} batch {a.batch}: {ms:.1f} ms/step, {r["viewsPerSec"]:.1f} views/s, peak GPU {peak / 2**20:.0f} MiB, loss {loss:.4f}', flush=True)
    save()


if __name__ == '__main__':
    sys.exit(main())
