/**
 * Writes the example image folder for notebook 09: Fashion-MNIST test images as PNG class folders (Debian's
 * dataset-fashion-mnist), or CIFAR-10 test images where that package is missing. Idempotent.
 *
 *   npx tsx scripts/example-images.ts [--out data/example-images] [--per-class 300] [--seed 0]
 */
import { parseArgs } from 'node:util';
import { EXAMPLE_FOLDER_DEFAULTS, writeExampleFolder } from '../lib/data/exampleFolder';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      'per-class': { type: 'string', default: String(EXAMPLE_FOLDER_DEFAULTS.perClass) },
      seed: { type: 'string', default: String(EXAMPLE_FOLDER_DEFAULTS.seed) },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      'usage: npx tsx scripts/example-images.ts [--out DIR (default data/example-images)] [--per-class N (default 300)] [--seed S (default 0)]',
    );
    return;
  }
  const num = (v: string, name: string) => {
    const x = Number(v);
    if (!Number.isInteger(x)) throw new Error(`--${name} must be an integer, got '${v}'`);
    return x;
  };
  const r = await writeExampleFolder({
    out: values.out,
    perClass: num(values['per-class'] as string, 'per-class'),
    seed: num(values.seed as string, 'seed'),
  });
  console.log(r.line);
}

main().catch((e: unknown) => {
  console.error(`example-images: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
