/** Dynamic `import()` that survives CommonJS compilation (tslab, tsc module=commonjs). */
// eslint-disable-next-line @typescript-eslint/no-var-requires
const shim: (specifier: string) => Promise<unknown> = require('./esm.cjs');

export function importEsm<T = unknown>(specifier: string): Promise<T> {
  return shim(specifier) as Promise<T>;
}
