/**
 * The embedding explorer in a real browser (headless Chromium through puppeteer-core): the mouse
 * approaches points of a dense cluster from about 40 px away in a few steps, as a hand does, and
 * after each approach the tooltip, the side panel and the ring must all name the same image.
 * Issue 25 (a): 2 of 30 such hovers showed the tooltip of one image (#90) and the panel and ring of
 * another (#182), with the events unhover, unhover, hover #90, hover #182.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import puppeteer from 'puppeteer-core';
import { embeddingExplorer, type EmbeddingPanel, type EmbeddingSample } from '../lib/viz/embeddingExplorer';
import { plotlyLibraryHtml } from '../lib/viz/plotly';
import { Rng } from '../lib/util/rng';

const CHROMIUM = '/usr/bin/chromium';
const HOVERS = 30;

/** 400 images, 10 classes: most of each panel's points packed in one dense cluster, the rest spread out. */
function data(): { panels: EmbeddingPanel[]; sample: EmbeddingSample } {
  const n = 400;
  const r = new Rng(3);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const panels = ['barlow', 'random-init'].map((label, m) => ({
    label,
    xy: Float32Array.from({ length: 2 * n }, (_, j) =>
      Math.floor(j / 2) % 4 === 0 ? 4 * r.normal() : 0.35 * r.normal() + m,
    ),
    knnPred: Int32Array.from({ length: n }, () => r.int(10)),
    neighbourLabels: Int32Array.from({ length: n * 5 }, () => r.int(10)),
    k: 5,
  }));
  const images = Uint8Array.from({ length: n * 3072 }, (_, i) => (i * 13) % 256);
  return {
    panels,
    sample: {
      images,
      labels,
      n,
      classNames: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
    },
  };
}

test(
  'explorer: after each scripted approach to a dense cluster, tooltip, side panel and ring show the same image',
  { timeout: 180_000 },
  async (t) => {
    if (!fs.existsSync(CHROMIUM)) {
      if (process.env.CI) assert.fail(`${CHROMIUM} is missing: run bash scripts/setup-jupyter.sh`);
      t.skip(`${CHROMIUM} is missing (bash scripts/setup-jupyter.sh installs it)`);
      return;
    }
    const { panels, sample } = data();
    const res = await embeddingExplorer(panels, sample, { display: false, title: 'hover test' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'explorer-hover-'));
    const page = path.join(dir, 'explorer.html');
    fs.writeFileSync(
      page,
      `<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:0">${plotlyLibraryHtml()}\n${res.html}</body></html>`,
    );
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: path.join(dir, 'profile'),
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      defaultViewport: { width: 1000, height: 700 },
    });
    try {
      const tab = await browser.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (e) => errors.push(String(e)));
      // tsx compiles page functions with calls to its `__name` helper, which the page lacks.
      await tab.evaluateOnNewDocument('globalThis.__name = (f) => f;');
      await tab.goto(`file://${page}`);
      await tab.waitForSelector('[data-drawn="1"]', { timeout: 60_000 });
      // Record the hover events, as the issue did.
      await tab.evaluate(() => {
        const plot = document.querySelector('[id$="-plot"]') as HTMLElement & {
          on(ev: string, f: (e: { points: Array<{ customdata: number }> }) => void): void;
        };
        const w = window as unknown as { events: string[] };
        w.events = [];
        plot.on('plotly_hover', (e) => w.events.push(`hover#${e.points[0]?.customdata}`));
        plot.on('plotly_unhover', () => w.events.push('unhover'));
      });
      // Centres of the first panel's points inside the dense cluster.
      const targets = await tab.evaluate(() => {
        const out: Array<{ x: number; y: number }> = [];
        const first =
          document.querySelector('.js-plotly-plot .subplot.xy') ?? document.querySelector('.js-plotly-plot');
        const panelBox = first!.getBoundingClientRect();
        for (const p of Array.from(document.querySelectorAll('.js-plotly-plot .scatterlayer .trace .point'))) {
          const b = p.getBoundingClientRect();
          if (b.width === 0) continue;
          out.push({ x: b.x + b.width / 2, y: b.y + b.height / 2 });
        }
        // The densest region of the left panel: points within 25 px of the median point.
        const left = out.filter((q) => q.x < panelBox.x + panelBox.width);
        const mx = left.map((q) => q.x).sort((a, b) => a - b)[Math.floor(left.length / 2)];
        const my = left.map((q) => q.y).sort((a, b) => a - b)[Math.floor(left.length / 2)];
        return left.filter((q) => Math.hypot(q.x - mx, q.y - my) < 25);
      });
      assert.ok(targets.length >= HOVERS, `${targets.length} points in the dense cluster`);
      const r = new Rng(11);
      const mismatches: string[] = [];
      for (let h = 0; h < HOVERS; h++) {
        const to = targets[r.int(targets.length)];
        const angle = r.uniform(0, 2 * Math.PI);
        await tab.mouse.move(to.x + 40 * Math.cos(angle), to.y + 40 * Math.sin(angle));
        await new Promise((res2) => setTimeout(res2, 150));
        await tab.evaluate(() => ((window as unknown as { events: string[] }).events = []));
        await tab.mouse.move(to.x, to.y, { steps: 4 });
        await new Promise((res2) => setTimeout(res2, 400));
        const seen = await tab.evaluate(() => {
          const tip = Array.from(document.querySelectorAll('.hoverlayer .hovertext'))
            .map((e) => e.textContent ?? '')
            .join(' | ');
          const info = document.querySelector('[id$="-info"] b')?.textContent ?? '';
          const rings = Array.from(document.querySelectorAll('[data-ring]'))
            .filter((e) => (e as HTMLElement).style.display !== 'none')
            .map((e) => e.getAttribute('data-ring'));
          return { tip, info, rings, events: (window as unknown as { events: string[] }).events.join(', ') };
        });
        const tipId = /#(\d+)/.exec(seen.tip)?.[1];
        const infoId = /#(\d+)/.exec(seen.info)?.[1];
        if (!tipId) continue; // the mouse ended between points: nothing hovered, nothing to compare
        const ringIds = [...new Set(seen.rings)];
        if (tipId !== infoId || ringIds.length !== 1 || ringIds[0] !== tipId || seen.rings.length !== panels.length) {
          mismatches.push(
            `hover ${h + 1}: tooltip #${tipId}, panel ${seen.info || '(empty)'}, rings ${JSON.stringify(seen.rings)}; events ${seen.events}`,
          );
        }
      }
      assert.deepEqual(mismatches, []);
      // A narrow tooltip: it must not cover the neighbouring panel (each panel is 260 px wide here).
      const width = await tab.evaluate(() =>
        Math.max(
          0,
          ...Array.from(document.querySelectorAll('.hoverlayer .hovertext')).map(
            (e) => e.getBoundingClientRect().width,
          ),
        ),
      );
      assert.ok(width > 0 && width < 170, `tooltip ${width.toFixed(0)} px wide`);
      // Each ring sits on its image's point in its panel, also after the legend hides a class and the axes rescale.
      const ringOffsets = () =>
        tab.evaluate(
          (names: string[]) => {
            const rings = Array.from(document.querySelectorAll('[data-ring]')) as SVGCircleElement[];
            const i = Number(rings[0].getAttribute('data-ring'));
            const c = i % 10;
            const j = Math.floor(i / 10); // labels are i % 10: image i is the (i div 10)-th point of its class
            return Array.from(document.querySelectorAll('.cartesianlayer .subplot')).map((sub, m) => {
              // The trace of class c (plotly's d3 data names it; hidden classes' traces leave the DOM).
              const trace = Array.from(sub.querySelectorAll('.scatterlayer .trace')).find(
                (t) =>
                  (t as unknown as { __data__: Array<{ trace: { name: string } }> }).__data__[0].trace.name ===
                  names[c],
              )!;
              const pt = trace.querySelectorAll('.point')[j].getBoundingClientRect();
              const r = rings[m].getBoundingClientRect();
              return Math.hypot(pt.x + pt.width / 2 - (r.x + r.width / 2), pt.y + pt.height / 2 - (r.y + r.height / 2));
            });
          },
          [...sample.classNames],
        );
      const before = await ringOffsets();
      assert.equal(before.length, panels.length);
      assert.ok(
        before.every((d) => d < 1.5),
        `ring offsets ${before.map((d) => d.toFixed(2))} px`,
      );
      // Hide every class but the ringed image's: its panel's axes rescale to that class alone. The mouse
      // leaves the plot first, so no hover event moves the rings: they follow the redraw by themselves.
      await tab.mouse.move(2, 2);
      const ringClass = await tab.evaluate(
        () => Number(document.querySelector('[data-ring]')!.getAttribute('data-ring')) % 10,
      );
      for (let c = 0; c < 10; c++) {
        if (c === ringClass) continue;
        await tab.evaluate(
          (k: number) =>
            (
              document.querySelectorAll('.legend .traces')[k].querySelector('.legendtoggle') as SVGElement
            ).dispatchEvent(new MouseEvent('mouseup', { bubbles: true })),
          c,
        );
        await new Promise((res2) => setTimeout(res2, 350)); // past plotly's double-click window
      }
      await new Promise((res2) => setTimeout(res2, 500));
      const visible = await tab.evaluate(
        () =>
          Array.from(document.querySelectorAll('.legend .traces')).filter((e) => getComputedStyle(e).opacity === '1')
            .length,
      );
      assert.equal(visible, 1, 'the legend hid all other classes');
      const after = await ringOffsets();
      assert.ok(
        after.every((d) => d < 1.5),
        `with only class ${ringClass} shown: ring offsets ${after.map((d) => d.toFixed(2))} px`,
      );
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
