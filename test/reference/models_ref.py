#!/usr/bin/python3
"""Reference values for test/models.test.ts, from PyTorch (float64) definitions written here.

torchvision and timm are not installed, so the networks are defined directly, following
torchvision's resnet.py (BasicBlock / Bottleneck v1.5) with the CIFAR stem, facebookresearch/dino's
vision_transformer.py (VisionTransformer, interpolate_pos_encoding, DINOHead) and
facebookresearch/barlowtwins' projector.

Weights are not stored: every parameter is filled from a formula of (name, flat index in PyTorch's
layout) that the test reproduces, so the JSON stays small and the test also checks the layout
conversion (OIHW -> HWIO, Linear [out, in] -> [in, out]).

Run: /usr/bin/python3 test/reference/models_ref.py  (writes models_ref.json next to this file)
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.set_default_dtype(torch.float64)


# ---------------------------------------------------------------- CIFAR ResNet (torchvision v1.5)
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + idt)


class CifarResNet(nn.Module):
    def __init__(self, depth, width=64):
        super().__init__()
        block, layers = {18: (BasicBlock, [2, 2, 2, 2]), 50: (Bottleneck, [3, 4, 6, 3])}[depth]
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


# ---------------------------------------------------------------- ViT (DINO vision_transformer.py)
class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x), attn


class Block(nn.Module):
    def __init__(self, dim, heads, mlp, qkv_bias):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp)

    def forward(self, x):
        y, attn = self.attn(self.norm1(x))
        x = x + y
        return x + self.mlp(self.norm2(x)), attn


class VisionTransformer(nn.Module):
    def __init__(self, img_size, patch, dim, depth, heads, mlp, qkv_bias=True):
        super().__init__()
        self.patch = patch
        n = (img_size // patch) ** 2

        class PatchEmbed(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Conv2d(3, dim, patch, patch)

        self.patch_embed = PatchEmbed()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp, qkv_bias) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def interpolate_pos_encoding(self, x, w, h):
        # DINO's code: its "w" is the row count (x.shape[-2]) and "h" the column count.
        npatch = x.shape[1] - 1
        N = self.pos_embed.shape[1] - 1
        if npatch == N and w == h:
            return self.pos_embed
        class_pos_embed = self.pos_embed[:, 0]
        patch_pos_embed = self.pos_embed[:, 1:]
        dim = x.shape[-1]
        w0 = w // self.patch
        h0 = h // self.patch
        w0, h0 = w0 + 0.1, h0 + 0.1
        patch_pos_embed = F.interpolate(
            patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2),
            scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)), mode='bicubic')
        assert int(w0) == patch_pos_embed.shape[-2] and int(h0) == patch_pos_embed.shape[-1]
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)

    def forward(self, x):
        B, _, w, h = x.shape
        t = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat((self.cls_token.expand(B, -1, -1), t), dim=1)
        t = t + self.interpolate_pos_encoding(t, w, h)
        attn = None
        for blk in self.blocks:
            t, attn = blk(t)
        return self.norm(t)[:, 0], attn


# ---------------------------------------------------------------- heads
class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, use_bn=False, norm_last_layer=True, nlayers=3, hidden_dim=2048, bottleneck_dim=256):
        super().__init__()
        nlayers = max(nlayers, 1)
        if nlayers == 1:
            self.mlp = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers = [nn.Linear(in_dim, hidden_dim)]
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
            for _ in range(nlayers - 2):
                layers.append(nn.Linear(hidden_dim, hidden_dim))
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden_dim))
                layers.append(nn.GELU())
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        if norm_last_layer:
            self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        x = self.mlp(x)
        x = F.normalize(x, dim=-1, p=2)
        return self.last_layer(x)


def barlow_projector(in_dim, hidden=2048, out=2048, layers=3):
    mods = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        d = hidden
    mods.append(nn.Linear(d, out, bias=False))
    return nn.Sequential(*mods)


# ---------------------------------------------------------------- formula weights and inputs
def name_code(name):
    return sum((k + 1) * ord(c) for k, c in enumerate(name)) % 997


def formula(name, shape):
    n = 1
    for s in shape:
        n *= s
    i = torch.arange(n, dtype=torch.float64)
    base = torch.sin(0.7071 * i + 0.37 * name_code(name) + 0.5)
    if name.endswith('running_mean'):
        v = 0.1 * base
    elif name.endswith('running_var'):
        v = 1 + 0.3 * base
    elif name.endswith('weight_g'):
        v = 1 + 0.2 * base
    elif name.endswith('cls_token') or name.endswith('pos_embed'):
        v = 0.5 * base
    elif name.endswith('bias'):
        v = 0.1 * base
    elif len(shape) == 1:  # BN / LN weight
        v = 1 + 0.2 * base
    else:  # conv / linear weight, weight_v
        fan_in = n // shape[0]
        v = base * math.sqrt(3.0 / fan_in)
    return v.reshape(shape)


def fill(model):
    sd = model.state_dict()
    entries = []
    for name, t in sd.items():
        if name.endswith('num_batches_tracked'):
            continue
        t.copy_(formula(name, list(t.shape)))
        entries.append({'name': name, 'shape': list(t.shape)})
    return entries


def images(b, h, w):
    """NHWC formula images (as the test builds them), returned NCHW for torch."""
    i = torch.arange(b * h * w * 3, dtype=torch.float64)
    x = torch.sin(0.37 * i + 0.1) + 0.3 * torch.cos(1.3 * i)
    return x.reshape(b, h, w, 3).permute(0, 3, 1, 2).contiguous()


def out_weights(n):
    return torch.cos(0.5 * torch.arange(n, dtype=torch.float64))


def flat(t):
    return [round(float(v), 12) for v in t.detach().reshape(-1)]


def nhwc_grad(g):
    """Gradient of a conv weight [O, I, kh, kw] in the test's layout [kh, kw, I, O]."""
    return flat(g.permute(2, 3, 1, 0))


def count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def resnet_case(depth, width, b=2, size=32):
    torch.manual_seed(0)
    m = CifarResNet(depth, width)
    params = fill(m)
    x = images(b, size, size)
    m.eval()
    with torch.no_grad():
        eval_out = m(x)
    m.train()
    y = m(x)  # updates running statistics (momentum 0.1, unbiased variance)
    w = out_weights(y.numel()).reshape(y.shape)
    (y * w).sum().backward()
    last_bn = 'layer4.1.bn2' if depth == 18 else 'layer4.2.bn3'
    stats = {}
    for bn in ['bn1', last_bn]:
        mod = m.get_submodule(bn)
        stats[bn + '.running_mean'] = flat(mod.running_mean)
        stats[bn + '.running_var'] = flat(mod.running_var)
    return {
        'depth': depth, 'width': width, 'input': [b, size, size, 3], 'params': params,
        'eval_out': flat(eval_out), 'train_out': flat(y),
        'stats_after_train': stats,
        'grad_conv1': nhwc_grad(m.conv1.weight.grad),
    }


def vit_case():
    cfg = {'imageSize': 16, 'patch': 4, 'dim': 16, 'depth': 2, 'heads': 2, 'mlpDim': 24, 'qkvBias': True, 'lnEps': 1e-6}
    m = VisionTransformer(16, 4, 16, 2, 2, 24)
    params = fill(m)
    runs = []
    for size in [[16, 16], [8, 8], [12, 12], [8, 12]]:
        m.zero_grad()
        x = images(2, size[0], size[1])
        y, attn = m(x)
        w = out_weights(y.numel()).reshape(y.shape)
        (y * w).sum().backward()
        runs.append({'size': size, 'out': flat(y), 'attn_last': flat(attn), 'attn_shape': list(attn.shape),
                     'grad_pos_embed': flat(m.pos_embed.grad)})
    return {'config': cfg, 'params': params, 'runs': runs}


def bicubic_case():
    """F.interpolate(bicubic, align_corners=False, scale_factor) as a matrix, per DINO's scale (g+0.1)/G."""
    out = []
    for G, g in [(8, 4), (8, 2), (4, 3), (8, 12)]:
        s = (g + 0.1) / G
        eye = torch.eye(G).reshape(G, 1, G, 1)  # each basis vector as a 1-channel G x 1 image
        r = F.interpolate(eye, scale_factor=(s, 1.0), mode='bicubic')  # [G, 1, g, 1]
        assert r.shape[2] == g
        out.append({'in': G, 'out': g, 'scale': s, 'matrix': flat(r.reshape(G, g).t())})  # [g, G]
    return out


def dino_head_case(use_bn, nlayers, train):
    cfg = {'inDim': 8, 'out': 10, 'hidden': 12, 'bottleneck': 6, 'nlayers': nlayers, 'useBn': use_bn, 'normLastLayer': True}
    m = DINOHead(8, 10, use_bn=use_bn, nlayers=nlayers, hidden_dim=12, bottleneck_dim=6)
    params = fill(m)
    m.train(train)
    i = torch.arange(5 * 8, dtype=torch.float64)
    x = (torch.sin(0.91 * i) + 0.2).reshape(5, 8)
    y = m(x)
    w = out_weights(y.numel()).reshape(y.shape)
    (y * w).sum().backward()
    return {'config': cfg, 'train': train, 'params': params, 'input': flat(x), 'out': flat(y),
            'grad_weight_v': flat(m.last_layer.weight_v.grad.t())}


def barlow_case(train):
    m = barlow_projector(8, hidden=12, out=10, layers=3)
    params = fill(m)
    m.train(train)
    i = torch.arange(6 * 8, dtype=torch.float64)
    x = (torch.sin(0.53 * i) + 0.1).reshape(6, 8)
    with torch.no_grad():
        y = m(x)
    return {'config': {'inDim': 8, 'hidden': 12, 'out': 10, 'layers': 3}, 'train': train, 'params': params,
            'input': flat(x), 'out': flat(y), 'running_mean_after': flat(m[1].running_mean), 'running_var_after': flat(m[1].running_var)}


def main():
    counts = {
        'resnet18_w64': count(CifarResNet(18, 64)),
        'resnet18_w16': count(CifarResNet(18, 16)),
        'resnet50_w64': count(CifarResNet(50, 64)),
        'resnet50_w16': count(CifarResNet(50, 16)),
        'vit_tiny4_seed': count(VisionTransformer(32, 4, 192, 4, 6, 1024)),
        'vit_tiny4': count(VisionTransformer(32, 4, 192, 12, 3, 768)),
        'dino_head_512_default': count(DINOHead(512, 4096)),
        'dino_head_512_default_g_trainable': count(DINOHead(512, 4096, norm_last_layer=False)),
        'dino_head_192_bn': count(DINOHead(192, 4096, use_bn=True)),
        'barlow_projector_512_default': count(barlow_projector(512)),
    }
    assert counts['resnet18_w64'] == 11168832, counts['resnet18_w64']
    ref = {
        'counts': counts,
        'resnet18': resnet_case(18, 4),
        'resnet50': resnet_case(50, 2),
        'vit': vit_case(),
        'bicubic': bicubic_case(),
        'dino_head': [dino_head_case(False, 3, True), dino_head_case(True, 3, True), dino_head_case(True, 3, False), dino_head_case(False, 1, True)],
        'barlow': [barlow_case(True), barlow_case(False)],
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'models_ref.json')
    with open(path, 'w') as f:
        json.dump(ref, f, separators=(',', ':'))
    print('wrote', path, os.path.getsize(path), 'bytes')
    print(json.dumps(counts, indent=1))


if __name__ == '__main__':
    main()
