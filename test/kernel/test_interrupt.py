#!/usr/bin/python3
"""Drives a real tslab kernel with Debian's jupyter_client, as Kernel > Interrupt does in the UI.

Runs notebook 01's set-up and training cells (smoke budget, more epochs than usual) and checks:
  1. an uninterrupted reference run;
  2. Kernel > Interrupt (km.interrupt_kernel(), SIGINT) after some steps: the step stops advancing
     within about one step, the cell ends with one line saying how to resume, the record says
     `interrupted` with a checkpoint at that step, the run's tensors are freed, the kernel is alive
     and idle, and the plot cell explains instead of throwing a TypeError;
  3. re-running the cell resumes there and finishes with the reference run's weights, bit for bit;
  4. re-running it again reloads the finished run in one line, with no empty progress bar;
  5. two writers on one run folder: a second kernel running the same cell is refused at once,
     naming the first kernel, and the first run finishes intact;
  6. a kernel killed mid-run leaves its lock behind; the next kernel takes it over with a message,
     resumes from the last checkpoint and again ends with the reference weights.

Usage (from the repository root; needs scripts/setup.sh):
  /usr/bin/python3 test/kernel/test_interrupt.py            # exit 0 when every check passes
  /usr/bin/python3 test/kernel/test_interrupt.py --report   # record what happens, do not stop at a failed check
Environment: DINOTWINS_KERNEL_TEST_EPOCHS (default 6), DINOTWINS_BACKEND (default wasm).
"""
import json
import os
import re
import shutil
import signal
import struct
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = '--report' in sys.argv
EPOCHS = int(os.environ.get('DINOTWINS_KERNEL_TEST_EPOCHS', '6'))
FAILED = []


def log(msg):
    print(msg, flush=True)


class section:
    """A numbered part of the test; in --report mode an exception in it is recorded and the next part runs."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        log(f'# --- {self.name}')

    def __exit__(self, kind, exc, tb):
        if exc is None or not REPORT or kind in (SystemExit, KeyboardInterrupt):
            return False
        log(f'not ok - {self.name}: {kind.__name__}: {str(exc)[:600]}')
        FAILED.append(self.name)
        return True


def check(cond, what, detail=''):
    if cond:
        log(f'ok - {what}')
        return True
    log(f'not ok - {what}' + (f'\n    {detail}' if detail else ''))
    FAILED.append(what)
    if not REPORT:
        raise SystemExit(1)
    return False


try:
    from jupyter_client.manager import start_new_kernel
except ImportError:
    print('SKIP test/kernel/test_interrupt.py: jupyter_client is not importable by /usr/bin/python3 '
          '(apt-get install python3-jupyter-client, or run bash scripts/setup.sh)', flush=True)
    sys.exit(0)

PROGRESS = re.compile(r'(\d+)/(\d+) \[')
# The project's tslab kernel (registered by scripts/setup.sh), for this process's kernel-spec lookup too.
KERNELS = os.path.join(ROOT, '.jupyter/share/jupyter')
os.environ['JUPYTER_PATH'] = KERNELS + (os.pathsep + os.environ['JUPYTER_PATH'] if os.environ.get('JUPYTER_PATH') else '')


class Kernel:
    """A tslab kernel started in notebooks/, with output of each execution collected."""

    def __init__(self, env):
        self.km, self.kc = start_new_kernel(kernel_name='tslab', cwd=os.path.join(ROOT, 'notebooks'), env=env, startup_timeout=120)
        self.pid = self.km.provisioner.pid if getattr(self.km, 'provisioner', None) else self.km.kernel.pid

    def start(self, code):
        return {'id': self.kc.execute(code, stop_on_error=False), 'stdout': '', 'stderr': '', 'errors': [], 'displays': 0,
                'progress': [], 'reply': None, 'reply_at': None, 'value': None}

    def pump(self, ex, until=lambda ex: ex['reply'] is not None, timeout=600):
        """Reads iopub and shell messages of `ex` until `until(ex)` or the timeout."""
        t_end = time.time() + timeout
        while not until(ex):
            if time.time() > t_end:
                raise TimeoutError(f'kernel: timed out; stderr so far:\n{ex["stderr"][-2000:]}')
            try:
                m = self.kc.get_iopub_msg(timeout=0.05)
                if m['parent_header'].get('msg_id') == ex['id']:
                    self._iopub(ex, m)
            except Exception:  # queue.Empty
                pass
            if ex['reply'] is None:
                try:
                    r = self.kc.get_shell_msg(timeout=0.01)
                    if r['parent_header'].get('msg_id') == ex['id']:
                        ex['reply'], ex['reply_at'] = r['content'], time.time()
                except Exception:
                    pass
        return ex

    def _iopub(self, ex, m):
        t, c = m['msg_type'], m['content']
        if t == 'stream':
            ex[c['name']] += c['text']
        elif t == 'error':
            ex['errors'].append(f"{c['ename']}: {c['evalue']}")
        elif t in ('display_data', 'update_display_data'):
            html = c['data'].get('text/html', '')
            if 'dinotwins-progress' in html:
                g = PROGRESS.search(c['data'].get('text/plain', ''))
                if g:
                    ex['progress'].append((time.time(), int(g.group(1)), int(g.group(2))))
            elif t == 'display_data':
                ex['displays'] += 1
        elif t == 'execute_result':
            ex['value'] = c['data'].get('text/plain')

    def run(self, code, timeout=600):
        ex = self.start(code)
        self.pump(ex, timeout=timeout)
        # Outputs can trail the reply by a moment; tslab also refuses requests for 200 ms after an error.
        return self.drain(ex, 0.4)

    def drain(self, ex, seconds):
        """Keeps collecting output of `ex` (for instance after its reply) for `seconds`."""
        t_end = time.time() + seconds
        return self.pump(ex, until=lambda ex: time.time() > t_end, timeout=seconds + 5)

    def value(self, expr):
        """The JSON value of a TypeScript expression, evaluated in the kernel."""
        ex = self.run(f'console.log(JSON.stringify({expr}));')
        if ex['reply']['status'] != 'ok' or not ex['stdout'].strip():
            raise RuntimeError(f'evaluating {expr!r} in the kernel failed: {ex["errors"]} {ex["stderr"][-1000:]}')
        return json.loads(ex['stdout'])

    def stop(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def read_checkpoint(path):
    """The tensors of a dinotwins checkpoint as {group/name: bytes} and its metadata."""
    with open(path, 'rb') as f:
        buf = f.read()
    assert buf[:8] == b'DTCKPT01', path
    (hlen,) = struct.unpack('<I', buf[8:12])
    header = json.loads(buf[12:12 + hlen])
    payload = buf[12 + hlen:]
    tensors = {f"{e['group']}/{e['name']}": payload[4 * e['offset']:4 * (e['offset'] + e['length'])] for e in header['entries']}
    return tensors, header['meta']


def same_weights(a, b):
    ta, _ = read_checkpoint(a)
    tb, _ = read_checkpoint(b)
    diff = [k for k in ta if ta[k] != tb.get(k)]
    return len(ta) > 0 and ta.keys() == tb.keys() and not diff, f'{len(diff)} of {len(ta)} tensors differ, e.g. {diff[:3]}'


def main():
    nb = json.load(open(os.path.join(ROOT, 'notebooks/01-barlow-twins.ipynb'), encoding='utf-8'))
    code = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']
    find = lambda needle: next((c for c in code if needle in c), None)
    config_cell, setup_cell, train_cell, plot_cell = find('const OVERRIDES'), find("import * as dt from"), find('runPretraining('), find('plotTraining(')
    assert None not in (config_cell, setup_cell, train_cell, plot_cell), 'notebook 01 changed: config, set-up, training or plot cell not found'
    if not os.path.exists(os.path.join(KERNELS, 'kernels/tslab/kernel.json')):
        log(f'not ok - the tslab kernel is not registered in {KERNELS}: run bash scripts/setup.sh')
        return 1
    work = tempfile.mkdtemp(prefix='dt-kernel-')
    env = dict(os.environ, DINOTWINS_BUDGET='smoke',
               DINOTWINS_BACKEND=os.environ.get('DINOTWINS_BACKEND', 'wasm'), DINOTWINS_RUNS=os.path.join(work, 'ref'))
    overrides = f'const OVERRIDES = {{ epochs: {EPOCHS} }}; // many epochs: time to interrupt'
    runs_for = lambda name: f"process.env.DINOTWINS_RUNS = {json.dumps(os.path.join(work, name))};"

    # The notebook no longer imports tfjs itself; the test's tensor counts need it (the same module lib/ uses).
    tf_import = "import * as tf from '@tensorflow/tfjs';"

    def prepare(k):
        for code in (config_cell, overrides, setup_cell, tf_import):
            ex = k.run(code)
            if ex['reply']['status'] != 'ok':
                raise RuntimeError(f'set-up cell failed: {ex["stderr"][-2000:]}')

    def run_dir(name):
        base = os.path.join(work, name, 'smoke')
        dirs = [d for d in os.listdir(base) if d.startswith('barlow-')] if os.path.isdir(base) else []
        return os.path.join(base, dirs[0]) if dirs else None

    def record(name):
        d = run_dir(name)
        return json.load(open(os.path.join(d, 'record.json'))) if d and os.path.exists(os.path.join(d, 'record.json')) else None

    t_start = time.time()
    log(f'# kernel test: notebook 01 cells, smoke budget, {EPOCHS} epochs, backend {env["DINOTWINS_BACKEND"]}, runs in {work}')
    k1 = Kernel(env)
    kernels = [k1]
    try:
        prepare(k1)
        # 1. Reference: uninterrupted.
        with section('1. reference run'):
            k1.run(runs_for('ref'))
            ref = k1.run(train_cell)
            check(ref['reply']['status'] == 'ok', 'reference run finishes', ref['stderr'][-1500:])
            ref_rec = record('ref')
            total = ref_rec['totalSteps']
            times = [p for p in ref['progress']]
            step_s = (times[-1][0] - times[0][0]) / max(1, times[-1][1] - times[0][1]) if len(times) > 1 else 1.0
            log(f'# reference: {total} steps, about {step_s:.2f} s per step (with the kNN monitor each epoch)')

        # 2. Interrupt after some steps.
        with section('2. Kernel > Interrupt'):
            k1.run(runs_for('int'))
            tensors_before = k1.value('tf.memory().numTensors')
            ex = k1.start(train_cell)
            spe = total // EPOCHS
            stop_after = 2 * spe + spe // 2  # mid-epoch, away from the end-of-epoch kNN evaluation
            k1.pump(ex, until=lambda ex: (ex['progress'] and ex['progress'][-1][1] >= stop_after) or ex['reply'] is not None, timeout=600)
            seen = ex['progress'][-1][1] if ex['progress'] else 0
            t_int = time.time()
            k1.km.interrupt_kernel()
            k1.pump(ex, timeout=120)
            k1.drain(ex, 0.5)  # the cell's output can trail its reply (as in run())
            stop_s = ex['reply_at'] - t_int
            rec = record('int')
            log(f'# interrupted when the bar showed step {seen}; the cell ended {stop_s:.2f} s later; record: {rec["status"]} at step {rec["step"]}')
            # The notice printed when the signal arrives ("interrupt: stopping … at the next step boundary")
            # is a stream line: tslab flushes streams in batches, so it can reach the client after the
            # cell's error. The cell's own last line is the error's.
            lines = [l for l in ex['stderr'].strip().splitlines() if not l.startswith('interrupt: stopping ')]
            last_line = lines[-1] if lines else ''
            log(f'# the cell\'s last line: {last_line}')
            lag = 1 + int(0.25 / step_s + 0.999)  # the bar redraws at most 4 times a second
            check(ex['reply']['status'] == 'error', 'the interrupted cell ends (status error: Run All stops there)')
            check(rec['status'] == 'interrupted', 'the record says interrupted', json.dumps({k: rec[k] for k in ('status', 'step', 'message') if k in rec}))
            check(seen <= rec['step'] <= seen + lag, f'the step stopped advancing within one step (bar {seen}, stopped at {rec["step"]}, allowed {seen + lag})')
            check(stop_s <= step_s + 5, f'the cell ended {stop_s:.2f} s after the interrupt (one step: {step_s:.2f} s, plus the checkpoint)')
            _, meta = read_checkpoint(os.path.join(run_dir('int'), 'checkpoint.ckpt'))
            check(meta['step'] == rec['step'], f'a checkpoint at the interrupted step ({meta["step"]})')
            check(re.fullmatch(r'InterruptedError: run \S+ was interrupted at step \d+ of \d+( \(.*\))?; checkpoint written, memory freed\. '
                               r'Re-run this cell \(or the same command\) to resume\.', last_line) is not None, 'the cell ends with one line saying how to resume', last_line)
            mtime = os.path.getmtime(os.path.join(run_dir('int'), 'record.json'))
            time.sleep(max(2.0, 3 * step_s))
            k1.drain(ex, 1)
            # The bar's last redraw (its final state, drawn however the run ends) is a display update that
            # tslab can flush a moment after the reply, like streams: one at the recorded step within
            # 1 s is that redraw. Anything later, or past the recorded step, is training running on.
            late = [p for p in ex['progress'] if p[0] > ex['reply_at'] and (p[1] > rec['step'] or p[0] > ex['reply_at'] + 1.0)]
            check(not late and os.path.getmtime(os.path.join(run_dir('int'), 'record.json')) == mtime, 'nothing runs on behind the kernel (no progress, no writes)',
                  f'{len(late)} progress updates after the cell ended: ' + ', '.join(f'step {p[1]} at +{p[0] - ex["reply_at"]:.2f} s' for p in late))
            check(k1.km.is_alive(), 'the kernel is alive')
            alive = k1.run('1 + 1')
            check(alive['reply']['status'] == 'ok' and alive['stdout'].strip() == '2', 'the kernel answers the next cell', str(alive))
            check(k1.value('tf.memory().numTensors') == tensors_before, f'the run\'s tensors are freed ({tensors_before} before the cell)')
            check(not os.path.exists(os.path.join(run_dir('int'), 'run.lock')), 'the run lock is released')
            plots = k1.run(plot_cell)
            plot_err = plots['stderr'].strip().splitlines()[-1] if plots['stderr'].strip() else ''
            log(f'# the plot cell after the interrupt: {plot_err}')
            check('TypeError' not in plots['stderr'] and re.search(r'run \S+ was interrupted at step \d+ of \d+; re-run the training cell to resume', plot_err) is not None,
                  'the plot cell explains the unfinished run instead of a TypeError', plots['stderr'][-500:])

        # 2b. Interrupting twice gives the kernel back at once; the run still stops at its next step.
        with section('2b. a second interrupt'):
            k1.run(runs_for('twice'))
            ex2 = k1.start(train_cell)
            k1.pump(ex2, until=lambda ex: (ex['progress'] and ex['progress'][-1][1] >= stop_after) or ex['reply'] is not None, timeout=600)
            k1.km.interrupt_kernel()
            k1.pump(ex2, until=lambda ex: 'interrupt: stopping' in ex['stderr'] or ex['reply'] is not None, timeout=60)
            t_second = time.time()
            k1.km.interrupt_kernel()
            k1.pump(ex2, timeout=60)
            k1.drain(ex2, 0.4)  # tslab refuses requests for 200 ms after an error
            first_lines = ' | '.join(l for l in ex2['stderr'].strip().splitlines() if l.strip() and 'interrupt: stopping' not in l)[:200]
            log(f'# second interrupt: the cell ended {ex2["reply_at"] - t_second:.2f} s later with: {first_lines}')
            check(ex2['reply']['status'] == 'error', 'a second interrupt ends the cell')
            t0 = time.time()
            while (record('twice') or {}).get('status') != 'interrupted' and time.time() - t0 < 30:
                time.sleep(0.1)
            check((record('twice') or {}).get('status') == 'interrupted' and not os.path.exists(os.path.join(run_dir('twice'), 'run.lock')),
                  'and the run still stops at its next step boundary with a checkpoint, releasing its lock')
            check(k1.run('1 + 1')['stdout'].strip() == '2', 'the kernel answers the next cell')

        # 3. Re-run: resumes and ends with the reference weights.
        with section('3. re-run resumes'):
            k1.run(runs_for('int'))
            again = k1.run(train_cell)
            check(again['reply']['status'] == 'ok', 're-running the cell finishes the run', again['stderr'][-1500:])
            check(f'from step {rec["step"]} of {total} (where it was interrupted)' in again['stdout'], 'it resumed from the interrupted step', again['stdout'][:500])
            ok, why = same_weights(os.path.join(run_dir('ref'), 'checkpoint.ckpt'), os.path.join(run_dir('int'), 'checkpoint.ckpt'))
            check(ok, 'the final weights equal the uninterrupted run bit for bit (student, teacher, optimizer state)', why)
            ls_int, ls_ref = [(x['step'], x['loss']) for x in record('int')['steps']], [(x['step'], x['loss']) for x in ref_rec['steps']]
            first_diff = next((i for i, (a, b) in enumerate(zip(ls_int, ls_ref)) if a != b), None)
            check(ls_int == ls_ref, 'per-step losses equal the reference', f'first difference at step {first_diff}: {ls_int[first_diff] if first_diff is not None else None} vs {ls_ref[first_diff] if first_diff is not None else None}')
            plots = k1.run(plot_cell)
            check(plots['reply']['status'] == 'ok' and plots['displays'] >= 2, 'the plot cell draws the finished run')

        # 4. Reload: one line, no empty bar.
        with section('4. reload a finished run'):
            reload = k1.run(train_cell)
            first = reload['stdout'].strip().splitlines()[0] if reload['stdout'].strip() else ''
            log(f'# reloading the finished run: {first}')
            check(re.fullmatch(rf'loaded finished run \S+: {total} steps, \d+\.\d min', first) is not None, 'a reloaded finished run says so in one line', reload['stdout'][:300])
            check(not reload['progress'], 'no progress bar for a reloaded run', str(reload['progress'][:3]))

        # 5. Two writers: a second kernel on the same run folder is refused at once; the first finishes intact.
        with section('5. two writers on one run folder'):
            k2 = Kernel(dict(env, DINOTWINS_RUNS=os.path.join(work, 'two')))
            kernels.append(k2)
            prepare(k2)
            k1.run(runs_for('two'))
            first_ex = k1.start(train_cell)
            k1.pump(first_ex, until=lambda ex: bool(ex['progress']) or ex['reply'] is not None, timeout=300)
            t0 = time.time()
            second = k2.run(train_cell)
            refused = second['stderr'].strip().splitlines()[-1] if second['stderr'].strip() else ''
            log(f'# second writer: {refused}')
            check(second['reply']['status'] == 'error' and time.time() - t0 < 10, 'the second writer fails at once')
            check(f'is in use by pretraining run {os.path.basename(run_dir("two"))} (pid {k1.pid} on ' in refused, 'its error names the holder (the first kernel\'s pid and host)', refused)
            k1.pump(first_ex, timeout=600)
            rec2 = record('two')
            check(first_ex['reply']['status'] == 'ok' and rec2['status'] == 'done' and rec2['step'] == total and rec2['resumedFrom'] == [], 'the first run finishes intact')
            check([s['step'] for s in rec2['steps']] == list(range(total)), 'one writer: each step logged once, in order')
            ok, why = same_weights(os.path.join(run_dir('ref'), 'checkpoint.ckpt'), os.path.join(run_dir('two'), 'checkpoint.ckpt'))
            check(ok, 'and its weights equal the reference', why)
            k2.stop()
            kernels.remove(k2)

        # 6. A kernel killed mid-run (a crash) leaves its lock; the next kernel takes it over and resumes.
        with section('6. stale lock of a killed kernel'):
            k1.run(runs_for('stale'))
            ex = k1.start(train_cell)
            k1.pump(ex, until=lambda ex: (record('stale') or {}).get('step', 0) > 0, timeout=600)  # a checkpoint exists
            os.kill(k1.pid, signal.SIGKILL)
            time.sleep(0.5)
            lock = os.path.join(run_dir('stale'), 'run.lock')
            check(os.path.exists(lock), 'a killed kernel leaves its lock file behind')
            crashed_at = record('stale')['step']
            k1.stop()
            kernels.remove(k1)
            k3 = Kernel(dict(env, DINOTWINS_RUNS=os.path.join(work, 'stale')))
            kernels.append(k3)
            prepare(k3)
            take = k3.run(train_cell)
            msg = next((l for l in take['stderr'].splitlines() if 'taking over the lock' in l), '')
            log(f'# next kernel: {msg}')
            check(re.search(rf'taking over the lock of pretraining run \S+ \(pid {k1.pid} on .*\): process {k1.pid} is no longer running\.', msg) is not None, 'the stale lock is taken over with a message', take['stderr'][-800:])
            check(take['reply']['status'] == 'ok' and f'resuming run {os.path.basename(run_dir("stale"))} from step {crashed_at} of {total}' in take['stdout'], 'the run resumes from its last checkpoint and finishes', take['stdout'][:300])
            ok, why = same_weights(os.path.join(run_dir('ref'), 'checkpoint.ckpt'), os.path.join(run_dir('stale'), 'checkpoint.ckpt'))
            check(ok, 'with the reference weights', why)
            check(not os.path.exists(lock), 'and the lock is released at the end')
    finally:
        for k in kernels:
            try:
                k.stop()
            except Exception:
                pass
        shutil.rmtree(work, ignore_errors=True)
    log(f'# {len(FAILED)} failed check(s) in {time.time() - t_start:.0f} s' if FAILED else f'# all checks passed in {time.time() - t_start:.0f} s')
    return 1 if FAILED else 0


if __name__ == '__main__':
    sys.exit(main())
