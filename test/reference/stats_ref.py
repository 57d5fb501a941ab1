"""Reference values for lib/results/stats (Student's t, regularized incomplete beta, Welch's t-test), computed
with mpmath at 50 digits: mpmath.betainc is mpmath's own hypergeometric series, independent of the
continued fraction in lib/results/stats/studentT.ts. Welch's t and degrees of freedom are re-typed from
Welch (1947) here. Run: /usr/bin/python3 test/reference/stats_ref.py"""
import json, os
import mpmath as mp

mp.mp.dps = 50


def ibeta(x, a, b):
    return mp.betainc(a, b, 0, x, regularized=True)


def t_two_sided(t, df):
    t, df = mp.mpf(t), mp.mpf(df)
    return ibeta(df / (df + t * t), df / 2, mp.mpf(1) / 2)


def t_cdf(t, df):
    tail = t_two_sided(t, df) / 2
    return 1 - tail if t >= 0 else tail


def welch(a, b):
    a, b = [mp.mpf(str(v)) for v in a], [mp.mpf(str(v)) for v in b]
    ma, mb = mp.fsum(a) / len(a), mp.fsum(b) / len(b)
    va = mp.fsum((v - ma) ** 2 for v in a) / (len(a) - 1) / len(a)
    vb = mp.fsum((v - mb) ** 2 for v in b) / (len(b) - 1) / len(b)
    t = (ma - mb) / mp.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    crit = mp.findroot(lambda q: t_cdf(q, df) - mp.mpf('0.975'), 2)
    return {'a': [float(v) for v in a], 'b': [float(v) for v in b], 'diff': float(ma - mb), 't': float(t), 'df': float(df),
            'p': float(t_two_sided(t, df)), 'threshold': float(crit * mp.sqrt(va + vb)),
            'stdA': float(mp.sqrt(va * len(a))), 'stdB': float(mp.sqrt(vb * len(b)))}


ibeta_cases = [(x, a, b) for (x, a, b) in [
    (0.1, 0.5, 0.5), (0.5, 0.5, 0.5), (0.9, 0.5, 0.5), (0.3, 2, 3), (0.7, 2, 3), (0.2, 1.5, 0.5), (0.95, 1.5, 0.5),
    (0.5, 10, 10), (0.01, 20, 0.5), (0.999, 0.7, 12.3), (0.4, 100, 0.5), (0.8, 50, 60)]]
t_cases = [(t, df) for t in [-6.0, -2.5, -1.0, -0.1, 0.0, 0.3, 1.0, 2.0, 2.776, 4.3, 12.0] for df in [1, 2, 2.37, 3, 4, 7.5, 30, 200]]
quantiles = [(p, df) for p in [0.9, 0.975, 0.995] for df in [1, 2, 2.37, 3, 4, 10, 30]]
welch_cases = [
    # The cpu budget's DINO short-run recipe, 3 seeds (results/cpu/dino-recipe), vs made-up random-init seeds.
    ([38.53, 34.45, 35.43], [31.69, 31.2, 32.05]),
    # The same DINO seeds vs Barlow-like seeds: a difference within the noise.
    ([38.53, 34.45, 35.43], [36.1, 37.0, 38.1]),
    # Unequal sizes and spreads.
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.5, 9.0, 4.1]),
    # Wikipedia "Welch's t-test", example 1 (t = -2.46, df = 24.9, p = 0.021 there).
    ([27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4],
     [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]),
]

out = {
    'ibeta': [{'x': x, 'a': a, 'b': b, 'value': float(ibeta(mp.mpf(x), mp.mpf(a), mp.mpf(b)))} for x, a, b in ibeta_cases],
    'logGamma': [{'x': x, 'value': float(mp.loggamma(mp.mpf(x)))} for x in [1e-3, 0.1, 0.5, 1, 1.5, 2, 3.7, 10, 57.3, 300]],
    'tCdf': [{'t': t, 'df': df, 'cdf': float(t_cdf(mp.mpf(t), df)), 'twoSided': float(t_two_sided(t, df))} for t, df in t_cases],
    'tQuantile': [{'p': p, 'df': df, 'q': float(mp.findroot(lambda q: t_cdf(q, df) - mp.mpf(p), 1.5))} for p, df in quantiles],
    'welch': [welch(a, b) for a, b in welch_cases],
}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stats_ref.json'), 'w') as f:
    json.dump(out, f, indent=1)
    f.write('\n')
