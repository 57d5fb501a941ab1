/**
 * Sends multi-mime display bundles to the tslab kernel (Jupyter `display_data` /
 * `update_display_data`), and does nothing outside a notebook.
 *
 * tslab 1.0.22's public `display.raw()` sends one mime type per message; its kernel module
 * (`tslab/dist/jupyter.js`) keeps the writer of the running cell in `lastWriteDisplayData`,
 * which takes a whole bundle and a display id. We find that module in Node's module cache
 * (so it is the kernel's own instance, wherever tslab is installed) and fall back to the
 * public single-mime API if it is not there.
 */
import { randomBytes } from 'crypto';
import { sep } from 'path';

/** A Jupyter mime bundle: mime type -> string (text, base64 for binary) or JSON value. */
export type MimeBundle = Record<string, unknown>;

/** Vega-Lite 5 mime type rendered natively by JupyterLab's vega5 extension. */
export const VEGALITE_MIME = 'application/vnd.vegalite.v5+json';

interface DisplayMessage {
  data: MimeBundle;
  metadata: Record<string, unknown>;
  transient: { display_id?: string };
}
type WriteDisplayData = (msg: DisplayMessage, update: boolean) => void;

const TSLAB_JUPYTER = `${sep}tslab${sep}dist${sep}jupyter.js`;

/** The kernel module once found (its `lastWriteDisplayData` changes with every cell). */
let kernelModule: { lastWriteDisplayData?: unknown } | null = null;

/** The kernel's display writer, or null outside tslab (or before the first cell ran). */
function findWriter(): WriteDisplayData | null {
  if (kernelModule == null) {
    const cache: NodeJS.Dict<NodeModule> =
      require.cache ?? (require('module') as { _cache: NodeJS.Dict<NodeModule> })._cache ?? {};
    for (const key of Object.keys(cache)) {
      if (!key.endsWith(TSLAB_JUPYTER)) continue;
      const exp = cache[key]?.exports as { lastWriteDisplayData?: unknown } | undefined;
      if (exp && typeof exp.lastWriteDisplayData === 'function') {
        // Only cached inside a kernel process, where the module stays loaded.
        if (inTslab()) kernelModule = exp;
        return exp.lastWriteDisplayData as WriteDisplayData;
      }
    }
    return null;
  }
  const w = kernelModule.lastWriteDisplayData;
  return typeof w === 'function' ? (w as WriteDisplayData) : null;
}

/** True when running inside a tslab kernel (`globalThis.__tslab__` is set by its executor). */
export function inTslab(): boolean {
  return (globalThis as { __tslab__?: unknown }).__tslab__ != null;
}

/** True when a display bundle sent now would reach a notebook. */
export function canDisplay(): boolean {
  return findWriter() != null || inTslab();
}

/** Preference order when only one mime type can be sent (public tslab API fallback). */
const SINGLE_MIME_PREFERENCE = ['text/html', 'image/svg+xml', 'image/png', 'text/markdown', 'text/plain'];

function sendSingleMime(bundle: MimeBundle): boolean {
  const mime = SINGLE_MIME_PREFERENCE.find((m) => typeof bundle[m] === 'string');
  if (mime == null) return false;
  try {
    // Inside tslab `require('tslab')` is hooked to the kernel's own instance.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const tslab = require('tslab') as { display: { raw(m: string, d: string): void } };
    tslab.display.raw(mime, bundle[mime] as string);
    return true;
  } catch {
    return false;
  }
}

function checkBundle(bundle: MimeBundle, where: string): void {
  if (bundle == null || typeof bundle !== 'object' || Object.keys(bundle).length === 0) {
    throw new Error(`${where}: bundle must be a non-empty object of mime type -> data, got ${String(bundle)}`);
  }
}

/**
 * Displays `bundle` in the current notebook cell. With `displayId`, later
 * {@link updateDisplay} calls with the same id replace it in place.
 * Returns true if it was sent to a notebook, false outside one.
 */
export function display(bundle: MimeBundle, displayId?: string): boolean {
  checkBundle(bundle, 'display');
  const write = findWriter();
  if (write == null) return inTslab() ? sendSingleMime(bundle) : false;
  write({ data: bundle, metadata: {}, transient: displayId ? { display_id: displayId } : {} }, false);
  return true;
}

/** Replaces the output shown earlier with `display(bundle, displayId)`. */
export function updateDisplay(displayId: string, bundle: MimeBundle): boolean {
  checkBundle(bundle, 'updateDisplay');
  if (!displayId) throw new Error('updateDisplay: displayId must be a non-empty string');
  const write = findWriter();
  if (write == null) return false; // the public single-mime API cannot address an id
  write({ data: bundle, metadata: {}, transient: { display_id: displayId } }, true);
  return true;
}

/** A fresh random display id. */
export function newDisplayId(): string {
  return randomBytes(8).toString('hex');
}
