"""Reference values for test/augment-reference.test.ts (run: /usr/bin/python3 test/reference/augment_ref.py).

PyTorch 1.13, float64. Resizing uses torch.nn.functional.interpolate (bilinear and bicubic, align_corners=False,
with and without antialias) on the cropped region, i.e. torchvision's F.resized_crop; the colour and
blur operations restate torchvision 0.14's tensor functional code (torchvision is not installed here):
adjust_brightness/contrast/saturation/hue, rgb_to_grayscale, _rgb2hsv/_hsv2rgb, gaussian_blur, solarize.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(1234)
dt = torch.float64

B, H, W = 3, 12, 10
img = torch.rand(B, 3, H, W, dtype=dt)
# Make a few exact ties and greys, which exercise the hue edge cases.
img[0, :, 0, 0] = torch.tensor([0.5, 0.5, 0.2])
img[0, :, 0, 1] = torch.tensor([0.3, 0.3, 0.3])
img[1, :, 1, 1] = torch.tensor([0.1, 0.7, 0.7])


def gray(x):
    r, g, b = x.unbind(dim=-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def blend(a, b, ratio):
    return (ratio * a + (1.0 - ratio) * b).clamp(0, 1.0)


def brightness(x, f):
    return blend(x, torch.zeros_like(x), f)


def contrast(x, f):
    mean = torch.mean(gray(x), dim=(-3, -2, -1), keepdim=True)
    return blend(x, mean, f)


def saturation(x, f):
    return blend(x, gray(x), f)


def rgb2hsv(img):
    r, g, b = img.unbind(dim=-3)
    maxc = torch.max(img, dim=-3).values
    minc = torch.min(img, dim=-3).values
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    cr_divisor = torch.where(eqc, ones, cr)
    rc = (maxc - r) / cr_divisor
    gc = (maxc - g) / cr_divisor
    bc = (maxc - b) / cr_divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = hr + hg + hb
    h = torch.fmod((h / 6.0 + 1.0), 1.0)
    return torch.stack((h, s, maxc), dim=-3)


def hsv2rgb(img):
    h, s, v = img.unbind(dim=-3)
    i = torch.floor(h * 6.0)
    f = (h * 6.0) - i
    i = i.to(dtype=torch.int32)
    p = torch.clamp((v * (1.0 - s)), 0.0, 1.0)
    q = torch.clamp((v * (1.0 - s * f)), 0.0, 1.0)
    t = torch.clamp((v * (1.0 - s * (1.0 - f))), 0.0, 1.0)
    i = i % 6
    mask = i.unsqueeze(dim=-3) == torch.arange(6).view(-1, 1, 1)
    a1 = torch.stack((v, q, p, p, t, v), dim=-3)
    a2 = torch.stack((t, v, v, q, p, p), dim=-3)
    a3 = torch.stack((p, p, t, v, v, q), dim=-3)
    a4 = torch.stack((a1, a2, a3), dim=-4)
    return torch.einsum("...ijk, ...xijk -> ...xjk", mask.to(dtype=img.dtype), a4)


def hue(x, shift):
    hsv = rgb2hsv(x)
    h, s, v = hsv.unbind(dim=-3)
    h = (h + shift) % 1.0
    return hsv2rgb(torch.stack((h, s, v), dim=-3))


def gaussian_blur(x, k, sigma):
    half = (k - 1) * 0.5
    xs = torch.linspace(-half, half, steps=k, dtype=dt)
    pdf = torch.exp(-0.5 * (xs / sigma).pow(2))
    k1 = pdf / pdf.sum()
    k2 = torch.mm(k1[:, None], k1[None, :])
    k2 = k2.expand(3, 1, k, k)
    xp = F.pad(x.unsqueeze(0), [k // 2, k // 2, k // 2, k // 2], mode="reflect")
    return F.conv2d(xp, k2, groups=3)[0]


def solarize(x, threshold):
    return torch.where(x >= threshold, 1.0 - x, x)


def flat(t):
    return [round(float(v), 9) for v in t.reshape(-1).tolist()]


out = {"B": B, "H": H, "W": W, "image": flat(img)}  # [B, 3, H, W]

# Resized crops: (top, left, height, width, outH, outW, antialias, flip), one per image.
crops = [
    [(2, 1, 7, 5, 16, 16, False, False), (0, 0, 12, 10, 12, 10, False, True), (5, 4, 3, 6, 9, 7, False, False)],
    [(1, 0, 11, 9, 4, 5, True, False), (0, 2, 12, 8, 6, 3, True, True), (3, 3, 6, 6, 8, 8, True, False)],
    [(1, 0, 11, 9, 4, 5, False, True), (0, 0, 12, 10, 5, 5, False, False), (4, 2, 8, 8, 3, 3, False, False)],
]
out["crops"] = []
for case in crops:
    res = []
    for b, (top, left, h, w, oh, ow, aa, flip) in enumerate(case):
        c = img[b : b + 1, :, top : top + h, left : left + w]
        y = F.interpolate(c, size=(oh, ow), mode="bilinear", align_corners=False, antialias=aa)[0]
        if flip:
            y = y.flip(-1)
        res.append({"box": [top, left, h, w], "out": [oh, ow], "antialias": aa, "flip": flip, "y": flat(y)})
    out["crops"].append(res)

# Bicubic (torchvision InterpolationMode.BICUBIC on tensors; PIL-like with antialias), same layout.
crops_bicubic = [
    [(2, 1, 7, 5, 9, 8, False, False), (0, 0, 12, 10, 6, 5, False, True), (5, 4, 3, 6, 7, 7, False, False)],
    [(2, 1, 7, 5, 9, 8, True, False), (0, 2, 12, 8, 6, 3, True, True), (1, 0, 11, 9, 4, 5, True, False)],
]
out["crops_bicubic"] = []
for case in crops_bicubic:
    res = []
    for b, (top, left, h, w, oh, ow, aa, flip) in enumerate(case):
        c = img[b : b + 1, :, top : top + h, left : left + w]
        y = F.interpolate(c, size=(oh, ow), mode="bicubic", align_corners=False, antialias=aa)[0]
        if flip:
            y = y.flip(-1)
        res.append({"box": [top, left, h, w], "out": [oh, ow], "antialias": aa, "flip": flip, "y": flat(y)})
    out["crops_bicubic"].append(res)

bf, cf, sf, hf = [0.6, 1.0, 1.4], [0.6, 1.3, 1.0], [0.0, 0.8, 1.2], [-0.1, 0.0, 0.37]
out["factors"] = {"brightness": bf, "contrast": cf, "saturation": sf, "hue": hf}
out["brightness"] = flat(torch.stack([brightness(img[b], bf[b]) for b in range(B)]))
out["contrast"] = flat(torch.stack([contrast(img[b], cf[b]) for b in range(B)]))
out["saturation"] = flat(torch.stack([saturation(img[b], sf[b]) for b in range(B)]))
out["hue"] = flat(torch.stack([hue(img[b], hf[b]) for b in range(B)]))
out["hsv"] = flat(rgb2hsv(img))
out["gray"] = flat(gray(img).expand(B, 3, H, W))

# Full jitter with a per-image order: fns indexed as torchvision's fn_idx.
orders = [[3, 0, 2, 1], [1, 2, 0, 3], [0, 1, 2, 3]]
jb, jc, js, jh = [1.2, 0.7, 0.9], [0.8, 1.35, 1.1], [1.3, 0.65, 0.0], [0.05, -0.08, 0.1]
jit = []
for b in range(B):
    y = img[b]
    for fn in orders[b]:
        y = [lambda t: brightness(t, jb[b]), lambda t: contrast(t, jc[b]), lambda t: saturation(t, js[b]), lambda t: hue(t, jh[b])][fn](y)
    jit.append(y)
out["jitter"] = {"order": orders, "brightness": jb, "contrast": jc, "saturation": js, "hue": jh, "y": flat(torch.stack(jit))}

sig = [0.3, 1.1, 2.0]
out["blur"] = {"kernelSize": 3, "sigma": sig, "y": flat(torch.stack([gaussian_blur(img[b], 3, sig[b]) for b in range(B)]))}
out["blur5"] = {"kernelSize": 5, "sigma": sig, "y": flat(torch.stack([gaussian_blur(img[b], 5, sig[b]) for b in range(B)]))}
out["solarize"] = flat(solarize(img, 0.5))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "augment_ref.json")
with open(path, "w") as fh:
    json.dump(out, fh)
print(path, os.path.getsize(path), "bytes")
