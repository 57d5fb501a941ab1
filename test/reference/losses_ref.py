"""The Barlow Twins and DINO losses as their authors' code computes them, shared by the reference scripts:
facebookresearch/barlowtwins main.py (BatchNorm1d(affine=False) on each view, c = bn(z1).T @ bn(z2) / N) and
facebookresearch/dino main_dino.py (DINOLoss.forward, update_center)."""
import torch
import torch.nn.functional as F


def off_diagonal(x):
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def bn(z):
    # BatchNorm1d(affine=False) in training mode: batch mean, biased variance, eps 1e-5.
    return F.batch_norm(z, None, None, training=True, momentum=0.0, eps=1e-5)


def cross_corr(z1, z2):
    return bn(z1).T @ bn(z2) / z1.shape[0]


def bt_loss(z1, z2, lambd):
    c = cross_corr(z1, z2)
    on_diag = torch.diagonal(c).add(-1).pow(2).sum()
    off_diag = off_diagonal(c).pow(2).sum()
    return on_diag + lambd * off_diag


def dino_loss(student_output, teacher_output, center, ncrops, student_temp, teacher_temp):
    # facebookresearch/dino DINOLoss.forward; outputs are the views concatenated along the batch.
    student_out = (student_output / student_temp).chunk(ncrops)
    teacher_out = F.softmax((teacher_output - center) / teacher_temp, dim=-1).detach().chunk(2)
    total_loss, n_loss_terms = 0, 0
    for iq, q in enumerate(teacher_out):
        for v in range(len(student_out)):
            if v == iq:
                continue
            loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
            total_loss += loss.mean()
            n_loss_terms += 1
    return total_loss / n_loss_terms


def dino_update_center(center, teacher_output, m):
    batch_center = torch.sum(teacher_output, dim=0, keepdim=True) / len(teacher_output)
    return center * m + batch_center * (1 - m)
