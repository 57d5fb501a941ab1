"""Reference values for lib/losses, lib/methods/schedules.ts, lib/methods/ema.ts, lib/eval/knn.ts and lib/eval/collapseMonitors.ts.

Computed in float64 with PyTorch (1.13 CPU) following the original code:
- Barlow Twins: facebookresearch/barlowtwins main.py (BatchNorm1d(affine=False) on each view, c = bn(z1).T @ bn(z2) / N,
  on_diag = (diag(c) - 1)^2 summed, off_diag = c_ij^2 summed over i != j, loss = on_diag + lambd * off_diag).
- DINO: facebookresearch/dino main_dino.py DINOLoss.forward and update_center, utils.cosine_scheduler, and the teacher
  temperature schedule np.linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs).
- kNN: facebookresearch/dino eval_knn.py knn_classifier (weighted vote exp(sim / T) over the top-k cosine neighbours).
- RankMe (Garrido et al. 2023): p = s / sum(s) + 1e-7, exp(-sum p log p), s = torch.linalg.svdvals(z).
Run: /usr/bin/python3 test/reference/make_refs.py  (writes test/reference/refs.json next to this file)
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from losses_ref import bt_loss, cross_corr, dino_loss, dino_update_center

torch.set_num_threads(2)
torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(20240611)


def randn(*shape, scale=1.0):
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def tolist(t):
    return t.detach().cpu().tolist()


# ---------------------------------------------------------------- Barlow Twins
N, D = 8, 6
z1 = randn(N, D)
z2 = (0.7 * z1 + 0.5 * randn(N, D)) * torch.linspace(0.5, 2.0, D) + torch.linspace(-1, 1, D)
z1r = z1.clone().requires_grad_(True)
z2r = z2.clone().requires_grad_(True)
lam = 0.0051
loss = bt_loss(z1r, z2r, lam)
gz1, gz2 = torch.autograd.grad(loss, [z1r, z2r])
barlow = dict(z1=tolist(z1), z2=tolist(z2), lambda_=lam, cc=tolist(cross_corr(z1, z2)), loss=loss.item(),
              loss_lambda_big=bt_loss(z1, z2, 0.5).item(), grad_z1=tolist(gz1), grad_z2=tolist(gz2))

V = 4
proj = randn(V, N, D)
projr = proj.clone().requires_grad_(True)
pl = []
for i in range(V):
    for j in range(V):
        if i != j:
            pl.append(bt_loss(projr[i], projr[j], 0.005))
pm = torch.stack(pl).mean()
(gproj,) = torch.autograd.grad(pm, [projr])
barlow_pairs = dict(projections=tolist(proj), lambda_=0.005, loss=pm.item(), grad=tolist(gproj))


# ---------------------------------------------------------------- DINO
NV, B, K = 4, 5, 7
student = randn(NV, B, K, scale=2.0)
teacher = randn(2, B, K, scale=2.0)
center = randn(K, scale=0.3)
s_temp, t_temp = 0.1, 0.04
sr = student.clone().requires_grad_(True)
dl = dino_loss(sr.reshape(NV * B, K), teacher.reshape(2 * B, K), center.view(1, K), NV, s_temp, t_temp)
(gs,) = torch.autograd.grad(dl, [sr])
new_center = dino_update_center(center.view(1, K), teacher.reshape(2 * B, K), 0.9).view(K)
# DINO-Twins: dino + beta * mean over ordered pairs of views of the Barlow Twins loss on projections [NV, B, Dp].
projd = randn(NV, B, D)
twins_barlow = torch.stack([bt_loss(projd[i], projd[j], 0.005) for i in range(NV) for j in range(NV) if i != j]).mean()
dino = dict(student=tolist(student), teacher=tolist(teacher), center=tolist(center), student_temp=s_temp,
            teacher_temp=t_temp, loss=dl.item(), grad_student=tolist(gs), center_momentum=0.9,
            new_center=tolist(new_center), projections=tolist(projd), twins_barlow=twins_barlow.item(),
            twins_total=dl.item() + 0.0025 * twins_barlow.item(), twins_lambda=0.005, twins_beta=0.0025)

# Monitors on the teacher (view 0) and student view 1: entropy of the centred, sharpened teacher, KL(teacher || student).
# Milder temperatures than the loss reference: at 0.04 these logits give a near one-hot teacher (entropy ~6e-6),
# which float32 cannot resolve to 1e-4 relative.
mon_t_temp, mon_s_temp = 1.0, 0.5
t0 = teacher[0]
s1 = student[1]
log_pt = F.log_softmax((t0 - center) / mon_t_temp, dim=-1)
pt = log_pt.exp()
log_ps = F.log_softmax(s1 / mon_s_temp, dim=-1)
monitors_dino = dict(teacher_temp=mon_t_temp, student_temp=mon_s_temp, entropy=(-(pt * log_pt).sum(-1)).mean().item(),
                     kl=(pt * (log_pt - log_ps)).sum(-1).mean().item())

# ---------------------------------------------------------------- EMA
ema_t = randn(3, 4)
ema_s = randn(3, 4)
ema = dict(teacher=tolist(ema_t), student=tolist(ema_s), momentum=0.996, out=tolist(0.996 * ema_t + 0.004 * ema_s))


# ---------------------------------------------------------------- schedules (DINO utils.cosine_scheduler)
def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0, start_warmup_value=0):
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / len(iters)))
    schedule = np.concatenate((warmup_schedule, schedule))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


cos_plain = cosine_scheduler(0.5, 0.001, 10, 7)  # 70 steps, no warm-up
ema_sched = cosine_scheduler(0.996, 1.0, 10, 7)
# Warm-up as lightly's CosineWarmupScheduler: base * (step + 1) / warmup, then the cosine over the remaining steps.
warm, total = 12, 70
wc = [0.5 * (s + 1) / warm if s < warm else 0.001 + 0.5 * (0.5 - 0.001) * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
      for s in range(total)]
teacher_temp = np.concatenate((np.linspace(0.04, 0.07, 30), np.ones(100 - 30) * 0.07))
schedules = dict(cosine=dict(start=0.5, end=0.001, total=70, values=cos_plain.tolist()),
                 ema=dict(base=0.996, total=70, values=ema_sched.tolist()),
                 warmup_cosine=dict(base=0.5, final=0.001, warmup=warm, total=total, values=wc),
                 teacher_temp=dict(start=0.04, end=0.07, warmup_epochs=30, values=teacher_temp.tolist()))

# ---------------------------------------------------------------- kNN (facebookresearch/dino eval_knn.py)
def knn_classifier(train_features, train_labels, test_features, k, T, num_classes):
    train_features = F.normalize(train_features, dim=1)
    test_features = F.normalize(test_features, dim=1)
    similarity = test_features @ train_features.T
    distances, indices = similarity.topk(k, largest=True, sorted=True)
    candidates = train_labels.view(1, -1).expand(test_features.shape[0], -1)
    retrieved = torch.gather(candidates, 1, indices)
    one_hot = torch.zeros(test_features.shape[0] * k, num_classes)
    one_hot.scatter_(1, retrieved.view(-1, 1), 1)
    w = distances.div(T).exp()
    probs = torch.sum(one_hot.view(test_features.shape[0], -1, num_classes) * w.view(test_features.shape[0], -1, 1), 1)
    top2 = probs.topk(2, dim=1).values
    assert bool((top2[:, 0] - top2[:, 1] > 1e-3 * top2[:, 0]).all()), 'tie in the kNN reference: change the seed'
    return probs.argmax(1)


NTR, NTE, DF, C = 60, 24, 8, 4
# Overlapping clusters, so that some predictions are wrong and k = 1 differs from k = 7.
centers = randn(C, DF, scale=0.5)
train_labels = torch.arange(NTR) % C
train_feats = centers[train_labels] + randn(NTR, DF)
test_labels = torch.arange(NTE) % C
test_feats = centers[test_labels] + randn(NTE, DF)
knn_k, knn_T = 7, 0.1
pred = knn_classifier(train_feats, train_labels, test_feats, knn_k, knn_T, C)
pred_k1 = knn_classifier(train_feats, train_labels, test_feats, 1, knn_T, C)
knn = dict(train=tolist(train_feats), train_labels=tolist(train_labels), test=tolist(test_feats), test_labels=tolist(test_labels),
           k=knn_k, temperature=knn_T, num_classes=C, pred=tolist(pred), pred_k1=tolist(pred_k1),
           accuracy=(pred == test_labels).double().mean().item())
assert 0.3 < knn['accuracy'] < 1 and (pred != pred_k1).any(), 'kNN reference too easy: change the cluster scale'


# ---------------------------------------------------------------- RankMe and other monitors
def rankme(z, eps=1e-7):
    s = torch.linalg.svdvals(z)
    p = s / torch.sum(s) + eps
    return torch.exp(-torch.sum(p * torch.log(p))).item()


zr_tall = randn(30, 6) @ torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.5, 0.1, 0.01]))
zr_wide = randn(5, 12)
zr_low = randn(20, 2) @ randn(2, 9)  # rank 2
zm1 = randn(12, 5)
zm2 = 0.8 * zm1 + 0.3 * randn(12, 5)
cc = cross_corr(zm1, zm2)
eye = torch.eye(5, dtype=torch.bool)
monitors = dict(tall=tolist(zr_tall), wide=tolist(zr_wide), low=tolist(zr_low),
                rank_tall=rankme(zr_tall), rank_wide=rankme(zr_wide), rank_low=rankme(zr_low),
                sv_tall=tolist(torch.linalg.svdvals(zr_tall)),
                std_tall=torch.std(F.normalize(zr_tall, dim=1), dim=0).mean().item(),
                z1=tolist(zm1), z2=tolist(zm2), diag_mean=cc[eye].mean().item(), off_mean=cc[~eye].mean().item(),
                off_abs_mean=cc[~eye].abs().mean().item(), **monitors_dino)

refs = dict(barlow=barlow, barlow_pairs=barlow_pairs, dino=dino, ema=ema, schedules=schedules, knn=knn, monitors=monitors,
            torch_version=torch.__version__)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'refs.json')
with open(out, 'w') as f:
    json.dump(refs, f)
print(f'wrote {out} ({os.path.getsize(out)} bytes)')
