/**
 * Data and backend check: `npx tsx bin/check.ts [--path <tarball|folder>] [--no-download]`.
 * Picks the TensorFlow.js backend (prints its one-line report), loads and verifies CIFAR-10 from the
 * best source, and prints counts per split and class, channel means/stds, the source and the load time.
 * Exits 1 with the error's message when anything fails.
 */
import { selectBackend } from '../lib/backend/select';
import { CIFAR10_ENV, DataError, channelStats, classCounts, loadCifar10, type LoadCifar10Options } from '../lib/data';

const USAGE = `usage: npx tsx bin/check.ts [--path <cifar-10-binary.tar.gz | cifar-10-batches-bin folder>] [--no-download]
  Sources, first found wins: --path or $${CIFAR10_ENV}; data/cifar-10-batches-bin (cache); data/cifar-10-binary.tar.gz;
  ../shared/data/cifar-10-binary.tar.gz; the official download into data/.`;

function parseArgs(argv: string[]): LoadCifar10Options {
  const o: LoadCifar10Options = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a === '--path') {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`--path needs a value\n${USAGE}`);
      o.path = v;
    } else if (a.startsWith('--path=')) o.path = a.slice('--path='.length);
    else if (a === '--no-download') o.download = false;
    else throw new Error(`unknown argument "${a}"\n${USAGE}`);
  }
  return o;
}

function fmt(xs: readonly number[], digits = 4): string {
  return xs.map((x) => x.toFixed(digits)).join(' / ');
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  await selectBackend();
  const d = await loadCifar10(opts);
  console.log(
    `source: ${d.source.kind}${d.source.via ? ` (from ${d.source.via === 'option' ? '--path' : `$${d.source.via}`})` : ''}: ${d.source.location}`,
  );
  if (d.source.folder !== d.source.location)
    console.log(`read from: ${d.source.folder}${d.source.extracted ? ' (unpacked by this run)' : ''}`);
  console.log(`verified: ${d.source.verification}`);
  console.log(`load time: ${d.seconds.toFixed(2)} s`);
  const rows = [
    ['split', 'n', ...d.classNames],
    ...(
      [
        ['train', d.train],
        ['test', d.test],
      ] as const
    ).map(([name, s]) => [name, String(s.n), ...classCounts(s).map(String)]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((v, c) => (c < 1 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  '));
  for (const [name, s] of [
    ['train', d.train],
    ['test', d.test],
  ] as const) {
    const st = channelStats(s);
    console.log(`${name} R/G/B mean ${fmt(st.mean)}  std ${fmt(st.std)}`);
  }
}

main().catch((e: unknown) => {
  if (e instanceof DataError) console.error(`data check failed (${e.code}): ${e.message}`);
  else console.error(`check failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
