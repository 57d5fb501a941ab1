#!/usr/bin/python3
"""Reference values for test/steps.test.ts: two training steps of DINO, with each of its four components removed in
turn, and of DINO-Twins, restated in PyTorch (float64) from facebookresearch/dino main_dino.py; and two of Barlow
Twins, restated from facebookresearch/barlowtwins main.py.

- Networks: the CIFAR ResNet-18, DINOHead and the Barlow Twins projector of models_ref.py, with its formula weights
  (no weights are stored). The student is backbone + head (+ projector); the teacher starts as a copy.
- Multi-crop as MultiCropWrapper: views of the same size go through the backbone together (batch norm sees them
  jointly), the head sees all views at once. The teacher sees the 2 global views.
- DINOLoss.forward / update_center, cancel_gradients_last_layer for freeze_last_layer epochs, the teacher temperature
  np.linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs) per epoch, the EMA with
  cosine_scheduler(momentum_teacher, 1, epochs, niter_per_ep) over the teacher's parameters (not its buffers).
- Plain SGD (lr 0.1, no momentum, no weight decay, no clipping), one step per epoch, 2 epochs.
- Ablations, as lib/config/config.ts defines them:
  centering off: the center is 0 and never updated; teacherTempWarmup off: teacher_temp from step 0;
  sharpening off: the teacher's temperature is the student's; emaTeacher off: the teacher outputs are the student's
  on the global views under no_grad, and that extra pass leaves the student's running statistics alone.
- DINO-Twins (the original project): DINO loss + beta * the mean over ordered pairs of views of the Barlow Twins loss
  (facebookresearch/barlowtwins, BatchNorm1d(affine=False) per view) of the projector outputs, each view through the
  projector on its own (its batch norm sees one view at a time).
- Barlow Twins (main.py BarlowTwins.forward): each of the two global views through backbone and projector on its own
  (two passes: each updates the running statistics once), c = bn(z1).T @ bn(z2) / N with BatchNorm1d(affine=False),
  loss = sum((diag(c) - 1)^2) + lambd * sum(offdiag(c)^2), lambd 0.0051 (the paper's); plain SGD at lr 1e-3 (its gradient
  norm here is ~500: at DINO's 0.1 the first step kills the features and the second has nothing to compare).
Run: /usr/bin/python3 test/reference/steps_ref.py  (writes steps_ref.json next to this file)
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from losses_ref import bt_loss, dino_loss, dino_update_center  # noqa: E402
from models_ref import CifarResNet, DINOHead, barlow_projector, fill, flat  # noqa: E402

torch.set_num_threads(2)
torch.set_default_dtype(torch.float64)

B, G, L, N_LOCAL = 4, 16, 8, 2
K, HIDDEN, BOTTLENECK = 16, 8, 4
LR, STUDENT_TEMP, TEACHER_TEMP, WARMUP_TEMP, WARMUP_EPOCHS = 0.1, 0.1, 0.07, 0.04, 2
CENTER_M, EMA_BASE, FREEZE_EPOCHS, EPOCHS = 0.9, 0.9, 1, 2
TWINS_LAMBDA, TWINS_BETA, PROJ = 0.005, 1.0, (8, 6)
BARLOW_LAMBDA, BARLOW_LR = 0.0051, 1e-3


class Student(nn.Module):
    def __init__(self, twins):
        super().__init__()
        self.backbone = CifarResNet(18, 2)
        self.head = DINOHead(16, K, nlayers=3, hidden_dim=HIDDEN, bottleneck_dim=BOTTLENECK)
        if twins:
            self.projector = barlow_projector(16, hidden=PROJ[0], out=PROJ[1], layers=3)

    def multicrop(self, views):
        """MultiCropWrapper: the backbone over each run of same-size views, the head over all. [V*B, K], feats per view."""
        feats, i = [], 0
        while i < len(views):
            j = i
            while j < len(views) and views[j].shape[-1] == views[i].shape[-1]:
                j += 1
            feats += list(torch.chunk(self.backbone(torch.cat(views[i:j])), j - i))
            i = j
        return self.head(torch.cat(feats)), feats


class BarlowStudent(nn.Module):
    """BarlowTwins in main.py: backbone and projector (its bn(affine=False) has no parameters: bt_loss applies it)."""
    def __init__(self):
        super().__init__()
        self.backbone = CifarResNet(18, 2)
        self.projector = barlow_projector(16, hidden=PROJ[0], out=PROJ[1], layers=3)


def view(v, size):
    """NHWC formula images, distinct per view, returned NCHW (the test builds the same)."""
    i = torch.arange(B * size * size * 3, dtype=torch.float64)
    x = torch.sin(0.37 * i + 0.1 + 0.9 * v) + 0.3 * torch.cos(1.3 * i + 0.5 * v)
    return x.reshape(B, size, size, 3).permute(0, 3, 1, 2).contiguous()


def cosine(base, final, step, total):
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * step / total))


# Parameters whose whole update is compared; every other one by the norm of its update.
FULL = ('backbone.conv1.', 'backbone.bn1.', 'backbone.layer1.0.conv1.', 'backbone.layer4.1.conv2.', 'backbone.layer4.1.bn2.', 'head.', 'projector.')


def ours(n, t):
    """A tensor in our layout: conv OIHW -> HWIO, Linear weight [out, in] -> [in, out]."""
    if t.dim() == 4:
        return t.permute(2, 3, 1, 0)
    if t.dim() == 2 and (n.endswith('weight') or n.endswith('weight_v')):
        return t.t()
    return t


def run(method, off):
    torch.manual_seed(0)
    ablations = {'centering': True, 'teacherTempWarmup': True, 'sharpening': True, 'emaTeacher': True}
    if off:
        ablations[off] = False
    twins = method == 'dino-twins'
    student = Student(twins)
    params = fill(student)
    teacher = None
    if ablations['emaTeacher']:  # a copy of the backbone and head (deepcopy cannot copy weight_norm's derived weight)
        teacher = Student(False)
        teacher.load_state_dict({n: t for n, t in student.state_dict().items() if not n.startswith('projector.')})
        for p in teacher.parameters():
            p.requires_grad = False
    trainable = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    center = torch.zeros(1, K)
    views = [view(0, G), view(1, G)] + [view(2 + k, L) for k in range(N_LOCAL)]
    out = {'method': method, 'off': off, 'ablations': ablations, 'params': params, 'steps': []}
    for step in range(EPOCHS):  # one step per epoch
        epoch = step
        if not ablations['sharpening']:
            t_temp = STUDENT_TEMP
        elif ablations['teacherTempWarmup']:
            t_temp = float(torch.linspace(WARMUP_TEMP, TEACHER_TEMP, WARMUP_EPOCHS)[epoch]) if epoch < WARMUP_EPOCHS else TEACHER_TEMP
        else:
            t_temp = TEACHER_TEMP
        with torch.no_grad():
            if teacher is not None:
                t_out, _ = teacher.multicrop(views[:2])
            else:
                saved = {n: b.clone() for n, b in student.named_buffers()}
                t_out, _ = student.multicrop(views[:2])
                for n, b in student.named_buffers():
                    b.copy_(saved[n])
        s_out, feats = student.multicrop(views)
        c = center if ablations['centering'] else torch.zeros(1, K)
        loss = dino_loss(s_out, t_out, c, len(views), STUDENT_TEMP, t_temp)
        if twins:
            proj = [student.projector(f) for f in feats]
            pairs = [bt_loss(proj[i], proj[j], TWINS_LAMBDA) for i in range(len(proj)) for j in range(len(proj)) if i != j]
            loss = loss + TWINS_BETA * torch.stack(pairs).mean()
        before = {n: p.detach().clone() for n, p in trainable}
        student.zero_grad()
        loss.backward()
        if epoch < FREEZE_EPOCHS:  # cancel_gradients_last_layer
            for n, p in trainable:
                if 'last_layer' in n:
                    p.grad = None
        # The norm of the gradients the step applies (the frozen last layer's is discarded, as in main_dino.py,
        # where it never enters another parameter's clipping): what our gradNorm reports.
        grad_norm = math.sqrt(sum(float((p.grad ** 2).sum()) for _, p in trainable if p.grad is not None))
        with torch.no_grad():
            for _, p in trainable:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-LR)
            if teacher is not None:
                m = cosine(EMA_BASE, 1.0, step, EPOCHS)
                tp = dict(teacher.named_parameters())
                for n, ps in student.named_parameters():
                    if n in tp:
                        tp[n].mul_(m).add_((1 - m) * ps.detach())
            if ablations['centering']:
                center = dino_update_center(center, t_out, CENTER_M)
        rec = {
            'loss': loss.item(), 'gradNorm': grad_norm, 'teacherTemp': t_temp,
            'delta': {n: flat(ours(n, p.detach() - before[n])) for n, p in trainable if n.startswith(FULL)},
            'deltaNorm': {n: float((p.detach() - before[n]).norm()) for n, p in trainable},
            'center': flat(center),
            'running': {n: flat(b) for n, b in student.named_buffers() if 'running' in n and n.startswith(FULL)},
        }
        if teacher is not None:
            rec['teacher'] = {n: flat(ours(n, p)) for n, p in teacher.named_parameters() if n.startswith(('head.', 'backbone.conv1.', 'backbone.layer4.1.bn2.'))}
        out['steps'].append(rec)
    return out


def run_barlow():
    torch.manual_seed(0)
    student = BarlowStudent()
    params = fill(student)
    trainable = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    y1, y2 = view(0, G), view(1, G)
    out = {'method': 'barlow', 'off': None, 'params': params, 'steps': []}
    for _ in range(EPOCHS):  # one step per epoch
        z1 = student.projector(student.backbone(y1))
        z2 = student.projector(student.backbone(y2))
        loss = bt_loss(z1, z2, BARLOW_LAMBDA)
        before = {n: p.detach().clone() for n, p in trainable}
        student.zero_grad()
        loss.backward()
        grad_norm = math.sqrt(sum(float((p.grad ** 2).sum()) for _, p in trainable))
        with torch.no_grad():
            for _, p in trainable:
                p.add_(p.grad, alpha=-BARLOW_LR)
        out['steps'].append({
            'loss': loss.item(), 'gradNorm': grad_norm,
            'delta': {n: flat(ours(n, p.detach() - before[n])) for n, p in trainable if n.startswith(FULL)},
            'deltaNorm': {n: float((p.detach() - before[n]).norm()) for n, p in trainable},
            'running': {n: flat(b) for n, b in student.named_buffers() if 'running' in n and n.startswith(FULL)},
        })
    return out


def main():
    cases = [run('dino', off) for off in [None, 'centering', 'teacherTempWarmup', 'sharpening', 'emaTeacher']]
    cases.append(run('dino-twins', None))
    cases.append(run_barlow())
    ref = {
        'config': {'batch': B, 'globalSize': G, 'localSize': L, 'nLocal': N_LOCAL, 'headOut': K, 'headHidden': HIDDEN,
                   'bottleneck': BOTTLENECK, 'lr': LR, 'studentTemp': STUDENT_TEMP, 'teacherTemp': TEACHER_TEMP,
                   'warmupTeacherTemp': WARMUP_TEMP, 'warmupTeacherTempEpochs': WARMUP_EPOCHS, 'centerMomentum': CENTER_M,
                   'emaMomentum': EMA_BASE, 'freezeLastLayerEpochs': FREEZE_EPOCHS, 'epochs': EPOCHS,
                   'twinsLambda': TWINS_LAMBDA, 'twinsBeta': TWINS_BETA, 'projHidden': PROJ[0], 'projOut': PROJ[1],
                   'barlowLambda': BARLOW_LAMBDA, 'barlowLr': BARLOW_LR},
        'cases': cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'steps_ref.json')
    with open(path, 'w') as f:
        json.dump(ref, f, separators=(',', ':'))
    print('wrote', path, os.path.getsize(path), 'bytes')


if __name__ == '__main__':
    main()
