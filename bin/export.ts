/**
 * Exports a run's encoder as .safetensors with PyTorch's names and layouts (lib/io/weights.ts):
 *   npm run export -- --run runs/cpu/barlow-r18w16-s0-1a2b3c4d --out barlow.safetensors [--heads] [--network teacher]
 * Options are checked before anything is read; the file is written atomically.
 */
import { parseArgs } from 'util';
import * as fs from 'fs';
import { exportWeights, WEIGHTS_METADATA } from '../lib/io/weights';

const USAGE = `usage: npm run export -- --run DIR --out FILE [--heads] [--network student|teacher]
  --run DIR          a run folder (holding record.json and checkpoint.ckpt), e.g. runs/cpu/barlow-r18w16-s0-1a2b3c4d
  --out FILE         the .safetensors file to write
  --heads            also write the projector / DINO head (names then keep the prefixes backbone., projector., head.);
                     without it the file holds the encoder alone under torchvision's state_dict names
  --network NAME     student (default; what the probes evaluate) or teacher (DINO's EMA teacher, what DINO reports)
In PyTorch (a CIFAR ResNet: torchvision's resnet with a 3x3 stride-1 conv1 and no max-pool):
  from safetensors.torch import load_file; model.load_state_dict(load_file(FILE))
Inputs: NCHW float32 RGB in [0, 1], normalised with CIFAR-10's mean and std (written into the file's metadata).`;

async function main(): Promise<number> {
  let values: { run?: string; out?: string; heads?: boolean; network?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        run: { type: 'string' },
        out: { type: 'string' },
        heads: { type: 'boolean' },
        network: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const problems: string[] = [];
  if (!values.run) problems.push('--run is required');
  else if (!fs.existsSync(values.run)) problems.push(`--run ${values.run}: no such folder`);
  if (!values.out) problems.push('--out is required');
  const network = values.network ?? 'student';
  if (network !== 'student' && network !== 'teacher')
    problems.push(`--network must be student or teacher, got "${network}"`);
  if (problems.length > 0) {
    console.error(`error: ${problems.join('; ')}\n${USAGE}`);
    return 2;
  }
  const s = await exportWeights(values.run!, values.out!, {
    heads: values.heads === true,
    network: network as 'student' | 'teacher',
  });
  const m = s.metadata;
  console.log(`wrote ${s.file}: ${s.tensors} tensors, ${(s.bytes / 1024).toFixed(1)} KiB`);
  console.log(
    `run ${m[WEIGHTS_METADATA.run]} (${m[WEIGHTS_METADATA.method]}, ${m[WEIGHTS_METADATA.status]}), ${network} network, backbone ${JSON.stringify(s.backbone)}`,
  );
  if (!m[WEIGHTS_METADATA.status].startsWith('done'))
    console.log('note: this run did not finish; the file holds its last checkpoint');
  console.log(`inputs: ${m[WEIGHTS_METADATA.input]}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  },
);
