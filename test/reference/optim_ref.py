"""Reference trajectories for lib/train/optimizers.ts, computed with torch.optim (Adam, AdamW, SGD)
and the LARS of facebookresearch/barlowtwins main.py (re-typed here). Run: /usr/bin/python3 test/reference/optim_ref.py"""
import json, os
import torch

torch.set_num_threads(2)
g = torch.Generator().manual_seed(0)
w0 = torch.randn(3, 4, generator=g, dtype=torch.float64)
b0 = torch.randn(4, generator=g, dtype=torch.float64)
grads = [(torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)) for _ in range(4)]
lr, wd = 0.05, 0.1


class LARS(torch.optim.Optimizer):
    # facebookresearch/barlowtwins main.py, with weight_decay_filter / lars_adaptation_filter for 1-d params
    def __init__(self, params, lr, weight_decay=0, momentum=0.9, eta=0.001):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, eta=eta))

    @torch.no_grad()
    def step(self):
        for gr in self.param_groups:
            for p in gr['params']:
                dp = p.grad
                if p.ndim != 1:
                    dp = dp.add(p, alpha=gr['weight_decay'])
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(param_norm > 0., torch.where(update_norm > 0, (gr['eta'] * param_norm / update_norm), one), one)
                    dp = dp.mul(q)
                st = self.state[p]
                if 'mu' not in st:
                    st['mu'] = torch.zeros_like(p)
                mu = st['mu']
                mu.mul_(gr['momentum']).add_(dp)
                p.add_(mu, alpha=-gr['lr'])


def run(kind):
    w = w0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    groups = [{'params': [w], 'weight_decay': wd}, {'params': [b], 'weight_decay': 0.0}]
    if kind == 'adam':
        opt = torch.optim.Adam(groups, lr=lr)
    elif kind == 'adamw':
        opt = torch.optim.AdamW(groups, lr=lr)
    elif kind == 'sgd':
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9)
    else:
        opt = LARS([w, b], lr=lr, weight_decay=wd)
    for gw, gb in grads:
        w.grad = gw.clone()
        b.grad = gb.clone()
        opt.step()
    return {'w': w.detach().flatten().tolist(), 'b': b.detach().tolist()}


out = {
    'w0': w0.flatten().tolist(), 'b0': b0.tolist(), 'lr': lr, 'wd': wd,
    'grads': [{'w': gw.flatten().tolist(), 'b': gb.tolist()} for gw, gb in grads],
    'final': {k: run(k) for k in ['adam', 'adamw', 'sgd', 'lars']},
}
with open(os.path.join(os.path.dirname(__file__), 'optim_ref.json'), 'w') as f:
    json.dump(out, f)
print('wrote optim_ref.json')
