/**
 * A notebook's set-up (lib/notebook/session.ts): `plotly: true` sends plotly.js into the notebook once, before
 * any plot; `data: false` gives a session whose `data` names the notebook when touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sep } from 'path';
import { setupNotebook } from '../lib/notebook/session';
import { plotlyInlined } from '../lib/viz/plotly';

/** A stand-in for tslab's kernel module: records the display messages a cell sends. */
function fakeTslab(): { sent: Array<{ data: Record<string, unknown> }>; remove: () => void } {
  const key = `${sep}fake${sep}node_modules${sep}tslab${sep}dist${sep}jupyter.js`;
  const sent: Array<{ data: Record<string, unknown> }> = [];
  require.cache[key] = {
    exports: { lastWriteDisplayData: (msg: { data: Record<string, unknown> }) => sent.push(msg) },
  } as unknown as NodeModule;
  return { sent, remove: () => delete require.cache[key] };
}

test('setupNotebook: plotly: true inlines plotly.js once; data: false names the notebook when data is used', async () => {
  process.env.DINOTWINS_BUDGET = 'smoke';
  const k = fakeTslab();
  const printed: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => printed.push(a.join(' ')); // the backend line and the budget, printed by every set-up
  try {
    const plain = await setupNotebook('06-results', { data: false });
    assert.equal(k.sent.length, 0, 'no plotly unless asked');
    assert.equal(plain.budget.name, 'smoke');
    assert.throws(() => plain.data, /06-results was set up without data/);
    await setupNotebook('08-embeddings', { data: false, plotly: true });
    assert.equal(k.sent.length, 1);
    assert.match(
      String(k.sent[0].data['text/html']),
      /^<div class="dinotwins-plotly-lib"[\s\S]*window\.dispatchEvent\(new Event\('dinotwins-plotly-ready'\)\);\n<\/script>$/,
    );
    assert.equal(plotlyInlined(), true);
    assert.deepEqual(
      printed.filter((l) => l.startsWith('budget: ')),
      ['budget: smoke', 'budget: smoke'],
    );
    assert.equal(printed.filter((l) => l.startsWith('backend: ')).length, 2);
  } finally {
    console.log = log;
    k.remove();
  }
});
