/**
 * Driving a real JupyterLab 4 as a person does, for test/lab/run.ts: a Lab server from the shared
 * test bundle (../shared/tools/jupyterlab, unpacked by scripts/lab-notebooks.sh) bound to
 * 127.0.0.1 with the project's tslab kernel on JUPYTER_PATH and its own throw-away settings,
 * workspaces and runtime folders; headless Chromium (Debian's /usr/bin/chromium) through
 * puppeteer-core; and a notebook page that opens a notebook, waits for "TypeScript | Idle",
 * clicks through the menu bar (Run > Run All Cells, Kernel > Interrupt Kernel, File > Save),
 * and reads back what Lab drew.
 */
import { spawn, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { DrawnCell } from './checks';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Chromium flags that work on these machines (root, no GPU, no network besides 127.0.0.1). */
export const CHROMIUM_ARGS: readonly string[] = Object.freeze([
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
  '--mute-audio',
]);
export const CHROMIUM = '/usr/bin/chromium';
/** Browser window size in CSS pixels. */
export const VIEWPORT = Object.freeze({ width: 1400, height: 1000 });

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface LabServerOptions {
  /** The unpacked bundle (the folder holding run-lab.sh). */
  bundle: string;
  /** Folder Lab serves (the notebook copies). */
  root: string;
  /** Folder for Lab's own state (settings, workspaces, runtime files) and its log. */
  state: string;
  /** Environment for the server and the kernels it starts (JUPYTER_PATH, DINOTWINS_*). */
  env: NodeJS.ProcessEnv;
}

/** A running Lab server; `stop()` shuts its kernels down and ends it. */
export interface LabServer {
  url: string;
  /** The server's token (random per server): the browser passes it once in the URL, API calls in a header. */
  token: string;
  log: string;
  api<T = unknown>(p: string, init?: RequestInit): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

/** Starts JupyterLab from the bundle on a free port of 127.0.0.1 and waits until it answers. */
export async function startLab(o: LabServerOptions): Promise<LabServer> {
  const port = await freePort();
  const dirs = Object.fromEntries(
    ['config', 'data', 'runtime', 'settings', 'workspaces'].map((d) => [d, path.join(o.state, d)]),
  );
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  // No "Jupyter news" or update notification over the notebook (the machine is offline anyway).
  const notif = path.join(dirs.settings, '@jupyterlab', 'apputils-extension');
  fs.mkdirSync(notif, { recursive: true });
  fs.writeFileSync(
    path.join(notif, 'notification.jupyterlab-settings'),
    JSON.stringify({ fetchNews: 'false', checkForUpdates: false }),
  );
  const log = path.join(o.state, 'lab.log');
  const out = fs.openSync(log, 'w');
  const token = randomBytes(16).toString('hex');
  const args = [
    '--no-browser',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    `--IdentityProvider.token=${token}`,
    `--ServerApp.root_dir=${o.root}`,
    '--ServerApp.port_retries=0',
    '--LabApp.news_url=None',
  ];
  if (process.getuid?.() === 0) args.push('--allow-root');
  const env = {
    ...o.env,
    JUPYTER_CONFIG_DIR: dirs.config,
    JUPYTER_DATA_DIR: dirs.data,
    JUPYTER_RUNTIME_DIR: dirs.runtime,
    JUPYTERLAB_SETTINGS_DIR: dirs.settings,
    JUPYTERLAB_WORKSPACES_DIR: dirs.workspaces,
  };
  const child: ChildProcess = spawn(path.join(o.bundle, 'run-lab.sh'), args, {
    cwd: o.root,
    env,
    stdio: ['ignore', out, out],
    detached: true,
  });
  fs.closeSync(out);
  const url = `http://127.0.0.1:${port}`;
  const api = async <T>(p: string, init: RequestInit = {}) => {
    const r = await fetch(`${url}${p}`, {
      ...init,
      headers: { Authorization: `token ${token}`, ...(init.headers ?? {}) },
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`JupyterLab exited (${child.exitCode}) before answering; its log (${log}):\n${tail(log)}`);
    if (
      await api('/api/status').then(
        (r) => r.status === 200,
        () => false,
      )
    )
      break;
    if (Date.now() - t0 > 120_000) {
      kill(child);
      throw new Error(`JupyterLab did not answer on ${url} within 120 s; its log (${log}):\n${tail(log)}`);
    }
    await sleep(250);
  }
  return {
    url,
    token,
    log,
    api,
    async stop() {
      // Kernels first (they run in sessions of their own), then the server and its process group.
      const ks = await api<Array<{ id: string }>>('/api/kernels').catch(() => null);
      for (const k of ks?.body ?? []) await api(`/api/kernels/${k.id}`, { method: 'DELETE' }).catch(() => null);
      kill(child);
      for (let i = 0; i < 100 && child.exitCode === null && child.signalCode === null; i++) await sleep(100);
      if (child.exitCode === null && child.signalCode === null) kill(child, 'SIGKILL');
    },
  };
}

function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/** The last lines of a log file. */
export function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `(cannot read ${file}: ${(e as Error).message})`;
  }
}

/** Headless Chromium with a fresh profile in `profile`. */
export function launchBrowser(profile: string): Promise<Browser> {
  fs.rmSync(profile, { recursive: true, force: true });
  fs.mkdirSync(profile, { recursive: true });
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [...CHROMIUM_ARGS, `--window-size=${VIEWPORT.width},${VIEWPORT.height}`],
    defaultViewport: { ...VIEWPORT },
    protocolTimeout: 600_000,
  });
}

/** Page errors that JupyterLab itself logs and that say nothing about the notebook. */
export const LAB_NOISE: readonly RegExp[] = Object.freeze([
  /No active debugger session/, // the debugger sidebar, for a kernel without a debugger
  /Failed to load resource: the server responded with a status of 404/, // Lab probes optional endpoints (e.g. lsp, translations)
]);

/** One notebook open in Lab, in a workspace of its own. */
export class NotebookPage {
  /** console.error / page errors, in order, except LAB_NOISE. */
  readonly pageErrors: string[] = [];

  private constructor(
    readonly page: Page,
    readonly lab: LabServer,
    readonly file: string,
  ) {
    page.on('console', (m) => {
      if (m.type() === 'error' && !LAB_NOISE.some((p) => p.test(m.text())))
        this.pageErrors.push(`console.error: ${m.text().slice(0, 300)}`);
    });
    page.on('pageerror', (e) => {
      const msg = e instanceof Error ? e.message : String(e);
      if (!LAB_NOISE.some((p) => p.test(msg))) this.pageErrors.push(`page error: ${msg.slice(0, 300)}`);
    });
  }

  /** Opens `file` (relative to the server's root) in a fresh workspace and waits for its cells. */
  static async open(browser: Browser, lab: LabServer, file: string): Promise<NotebookPage> {
    const page = await browser.newPage();
    // tsx (esbuild) compiles the functions given to page.evaluate with calls to its `__name` helper,
    // which the page does not have.
    await page.evaluateOnNewDocument('globalThis.__name = (f) => f;');
    const nb = new NotebookPage(page, lab, file);
    const ws = `t${Date.now().toString(36)}`;
    await page.goto(`${lab.url}/lab/workspaces/${ws}/tree/${encodeURIComponent(file)}?reset&token=${lab.token}`, {
      waitUntil: 'domcontentloaded',
      timeout: 120_000,
    });
    await page.waitForSelector('.jp-NotebookPanel .jp-Notebook .jp-Cell', { timeout: 120_000 });
    return nb;
  }

  /** The status bar's kernel item, e.g. "TypeScript | Idle". */
  kernelStatus(): Promise<string> {
    return this.page.evaluate(() =>
      Array.from(document.querySelectorAll('.jp-StatusBar-TextItem, .jp-StatusBar-Item'))
        .map((e) => e.textContent ?? '')
        .join(' '),
    );
  }

  /** Waits until the status bar says "TypeScript | Idle" (the kernel started and answered). */
  async waitIdle(timeoutMs = 180_000): Promise<void> {
    await this.page
      .waitForFunction(
        () => {
          const t = Array.from(document.querySelectorAll('.jp-StatusBar-TextItem, .jp-StatusBar-Item'))
            .map((e) => e.textContent)
            .join(' ');
          return /TypeScript\s*\|\s*Idle/.test(t);
        },
        { timeout: timeoutMs, polling: 500 },
      )
      .catch(async () => {
        throw new Error(
          `"TypeScript | Idle" not seen in the status bar within ${timeoutMs / 1000} s (it says: ${await this.kernelStatus()})`,
        );
      });
  }

  /** Clicks `top` in the menu bar, then the item labelled `item` (Lab's own menus, as a person would). */
  async menu(top: string, item: string): Promise<void> {
    await this.page.keyboard.press('Escape'); // close any open menu
    const tops = await this.page.$$('.lm-MenuBar-item');
    let opened = false;
    for (const m of tops) {
      if ((await m.evaluate((e) => (e.textContent ?? '').trim())) === top) {
        await m.click();
        opened = true;
        break;
      }
    }
    if (!opened) throw new Error(`menu bar: no "${top}" menu`);
    await this.page.waitForSelector('.lm-Menu', { visible: true, timeout: 10_000 });
    const items = await this.page.$$('.lm-Menu:not(.lm-MenuBar-menu) .lm-Menu-item, .lm-Menu .lm-Menu-item');
    const labels: string[] = [];
    for (const it of items) {
      const label = await it.evaluate((e) => (e.querySelector('.lm-Menu-itemLabel')?.textContent ?? '').trim());
      labels.push(label);
      if (label === item) {
        const disabled = await it.evaluate((e) => e.classList.contains('lm-mod-disabled'));
        if (disabled) throw new Error(`menu ${top} > ${item} is disabled`);
        await it.click();
        return;
      }
    }
    await this.page.keyboard.press('Escape');
    throw new Error(`menu ${top}: no item "${item}" (items: ${labels.filter(Boolean).join(', ')})`);
  }

  /** Run > Run All Cells; accepts a dialog if one opens. */
  async runAll(): Promise<void> {
    await this.menu('Run', 'Run All Cells');
    await sleep(1000);
    const dlg = await this.page.$('.jp-Dialog .jp-mod-accept');
    if (dlg)
      throw new Error(
        `a dialog opened after Run All Cells: ${await this.page.$eval('.jp-Dialog', (e) => (e.textContent ?? '').slice(0, 300))}`,
      );
  }

  /** The input prompts of the code cells, by cell index among all cells. */
  prompts(): Promise<Array<{ index: number; prompt: string }>> {
    return this.page.evaluate(() => {
      const cells = Array.from(
        document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')?.querySelectorAll('.jp-Notebook .jp-Cell') ??
          [],
      );
      return cells
        .map((c, index) => ({
          index,
          code: c.classList.contains('jp-CodeCell'),
          prompt: (c.querySelector('.jp-InputArea-prompt')?.textContent ?? '').trim(),
        }))
        .filter((c) => c.code)
        .map(({ index, prompt }) => ({ index, prompt }));
    });
  }

  /**
   * Waits until no cell shows `[*]` and the kernel is idle: every queued cell ran, or Run All
   * stopped at an error. Returns the seconds it took; throws after `timeoutMs`.
   */
  async waitDone(timeoutMs: number, onPoll?: () => Promise<void>): Promise<number> {
    const t0 = Date.now();
    let quiet = 0;
    for (;;) {
      const prompts = await this.prompts();
      const busy = prompts.some((p) => p.prompt.includes('*'));
      const idle = /TypeScript\s*\|\s*Idle/.test(await this.kernelStatus());
      quiet = !busy && idle ? quiet + 1 : 0;
      if (quiet >= 2) return (Date.now() - t0) / 1000;
      if (Date.now() - t0 > timeoutMs)
        throw new Error(
          `still running after ${timeoutMs / 1000} s: prompts ${prompts.map((p) => p.prompt || '[ ]').join(' ')}`,
        );
      if (onPoll) await onPoll();
      await sleep(1000);
    }
  }

  /** File > Save Notebook, then waits until the tab is no longer marked dirty. */
  async save(): Promise<void> {
    await this.menu('File', 'Save Notebook');
    await this.page.waitForFunction(
      () =>
        !document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')?.classList.contains('jp-mod-dirty') &&
        !document.querySelector('.lm-TabBar-tab.lm-mod-current.jp-mod-dirty'),
      { timeout: 60_000, polling: 250 },
    );
  }

  /** What Lab drew, per code cell (see DrawnCell). */
  drawnCells(): Promise<DrawnCell[]> {
    return this.page.evaluate(() => {
      const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
      const cells = Array.from(panel?.querySelectorAll('.jp-Notebook .jp-Cell') ?? []);
      const out: DrawnCell[] = [];
      cells.forEach((c, index) => {
        if (!c.classList.contains('jp-CodeCell')) return;
        const area = c.querySelector('.jp-Cell-outputArea, .jp-OutputArea');
        const inOutputs = (sel: string) => Array.from(area?.querySelectorAll(sel) ?? []);
        const vega = inOutputs('.jp-RenderedVegaCommon5').map((v) => {
          const cv = v.querySelector('canvas');
          if (!cv || !cv.width || !cv.height) {
            const marks = v.querySelectorAll(
              'svg .mark-rect path, svg .mark-line path, svg .mark-symbol path, svg .mark-area path, svg .mark-rule line',
            ).length;
            return { colouredPixels: marks * 100, width: 0, height: 0 };
          }
          const g = cv.getContext('2d');
          let coloured = 0;
          if (g) {
            const px = g.getImageData(0, 0, cv.width, cv.height).data;
            for (let i = 0; i < px.length; i += 4) {
              if (px[i + 3] < 128) continue;
              const mx = Math.max(px[i], px[i + 1], px[i + 2]);
              const mn = Math.min(px[i], px[i + 1], px[i + 2]);
              if (mx - mn > 40) coloured++; // a hue: marks are coloured, axes, grid and text are grey
            }
          }
          return { colouredPixels: coloured, width: cv.width, height: cv.height };
        });
        const plots = inOutputs('[data-dinotwins-plotly]').map((r) => ({
          drawn: r.getAttribute('data-drawn') === '1',
          points: r.querySelectorAll('.js-plotly-plot .scatterlayer .trace .point').length,
          expected: Number(r.getAttribute('data-points') ?? NaN),
        }));
        const progress = inOutputs('.dinotwins-progress').map((p) => {
          const el = p.querySelector('progress');
          return {
            value: Number(el?.getAttribute('value') ?? NaN),
            max: Number(el?.getAttribute('max') ?? NaN),
            text: (p.textContent ?? '').trim(),
          };
        });
        const tables = inOutputs('table')
          .filter((t) => !t.closest('[data-dinotwins-plotly]'))
          .map((t) => ({ rows: t.querySelectorAll('tbody tr').length }));
        out.push({
          index,
          prompt: (c.querySelector('.jp-InputArea-prompt')?.textContent ?? '').trim(),
          vega,
          plots,
          progress,
          tables,
        });
      });
      return out;
    });
  }

  /** The text of the status bar's kernel item and the kernel's id (from the session of this notebook). */
  async kernel(): Promise<{ id: string; state: string } | null> {
    const r =
      await this.lab.api<Array<{ path: string; kernel: { id: string; execution_state: string } | null }>>(
        '/api/sessions',
      );
    const s = r.body.find((x) => x.path === this.file);
    return s?.kernel ? { id: s.kernel.id, state: s.kernel.execution_state } : null;
  }

  /**
   * One screenshot of the whole notebook: the window is made as tall as the notebook's content
   * (at most `maxHeight` pixels), so every cell is on it, then set back.
   */
  async screenshot(file: string, maxHeight = 16_000): Promise<void> {
    const extra = await this.page.evaluate(() => {
      const outer = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
      return outer ? outer.scrollHeight - outer.clientHeight : 0;
    });
    const height = Math.min(maxHeight, VIEWPORT.height + Math.max(0, extra) + 40);
    await this.page.setViewport({ width: VIEWPORT.width, height });
    await sleep(1500); // Lab relayouts; vega and plotly redraw
    await this.page.evaluate(() =>
      document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')?.scrollTo(0, 0),
    );
    await sleep(500);
    await this.page.screenshot({ path: file as `${string}.png` });
    await this.page.setViewport({ ...VIEWPORT });
  }

  /** Shuts the notebook's kernel down (frees its memory) and closes the tab. */
  async close(): Promise<void> {
    const r = await this.lab.api<Array<{ id: string; path: string }>>('/api/sessions').catch(() => null);
    for (const s of r?.body ?? [])
      if (s.path === this.file) await this.lab.api(`/api/sessions/${s.id}`, { method: 'DELETE' }).catch(() => null);
    await this.page.close().catch(() => undefined);
  }
}
