#!/usr/bin/python3
"""PyTorch CPU reference for bench/cpu.ts: the same Barlow Twins training steps (two views through
backbone + 3-layer projector, Barlow Twins loss, Adam) on the same models, timed the same way
(warm-up, then the median of repeated steps). Run with /usr/bin/python3 (Debian's python3-torch);
prints one JSON object per line.

Models follow lib/models: ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no max-pool;
torchvision BasicBlock layout) at widths 16/32/64, and the ViT 'tiny4-seed' preset (patch 4,
dim 192, depth 4, 6 heads, MLP 1024, qkv bias, LayerNorm eps 1e-6). The loss follows
facebookresearch/barlowtwins main.py (BN-standardised cross-correlation, lambda 0.0051).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time


def _threads_from_argv(default=2):
    for i, a in enumerate(sys.argv):
        if a == '--threads' and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith('--threads='):
            return a.split('=', 1)[1]
    return str(default)


# torch.set_num_threads governs OpenMP (ATen, oneDNN) but not Debian's OpenBLAS (pthreads build),
# which PyTorch uses for matmuls (the 2048-wide projector) and which otherwise starts one thread
# per core: fix both before torch loads them.
for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
    os.environ.setdefault(_var, _threads_from_argv())

import torch  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F

MODELS = {
    'r18w16': ('resnet18', 16, 2048),
    'r18w16p512': ('resnet18', 16, 512),
    'r18w32': ('resnet18', 32, 2048),
    'r18w32p512': ('resnet18', 32, 512),
    'r18w64': ('resnet18', 64, 2048),
    'vitt4': ('vit', None, 2048),
}


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.down = None
        if stride != 1 or cin != planes:
            self.down = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class ResNet18Cifar(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers = []
        cin = width
        for i, planes in enumerate([width, 2 * width, 4 * width, 8 * width]):
            for j in range(2):
                layers.append(BasicBlock(cin, planes, 2 if (i > 0 and j == 0) else 1))
                cin = planes
        self.layers = nn.Sequential(*layers)
        self.feature_dim = cin

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        b, t, c = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class VitTiny4Seed(nn.Module):
    def __init__(self, dim=192, depth=4, heads=6, mlp=1024, patch=4, image=32):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        n = (image // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.feature_dim = dim

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.norm(self.blocks(x))[:, 0]


def projector(din, width):
    return nn.Sequential(
        nn.Linear(din, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
        nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
        nn.Linear(width, width, bias=False))


def barlow_loss(z1, z2, lam=0.0051):
    n = z1.shape[0]
    bn = lambda z: (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)
    c = bn(z1).T @ bn(z2) / n
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + lam * off


def bench(model_id, batch, warmup, steps, max_seconds):
    kind, width, proj = MODELS[model_id]
    torch.manual_seed(0)
    backbone = ResNet18Cifar(width) if kind == 'resnet18' else VitTiny4Seed()
    head = projector(backbone.feature_dim, proj)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    views = [torch.randn(batch, 3, 32, 32), torch.randn(batch, 3, 32, 32)]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = barlow_loss(head(backbone(views[0])), head(backbone(views[1])))
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    wall, cpu = [], []
    t0 = time.perf_counter()
    for _ in range(steps):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        if time.perf_counter() - t0 > max_seconds:
            break
    wall_ms = statistics.median(wall)
    return {
        'impl': 'torch', 'model': model_id, 'batch': batch, 'threads': torch.get_num_threads(),
        'params': sum(p.numel() for p in params), 'wallMs': wall_ms, 'cpuMs': statistics.median(cpu),
        'steps': len(wall), 'viewsPerSec': 2 * batch * 1000 / wall_ms,
        'rssMaxMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default='r18w16', help='comma-separated ids: ' + ', '.join(MODELS))
    ap.add_argument('--batches', default='32', help='comma-separated batch sizes (per view)')
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--max-seconds', type=float, default=60, help='stop timing a combo after this long')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for m in a.models.split(','):
        if m not in MODELS:
            raise SystemExit(f"unknown model '{m}'; known: {', '.join(MODELS)}")
        for b in a.batches.split(','):
            print(json.dumps(bench(m, int(b), a.warmup, a.steps, a.max_seconds)), flush=True)


if __name__ == '__main__':
    main()
