/**
 * The checks every config layer shares: the error type and small validators. Kept below lib/config/config.ts
 * and the methods (which validate their own config sections), so neither imports the other for them.
 */

/** A config value, key or combination the run cannot use; the message names it and says why. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function check(cond: boolean, msg: string): void {
  if (!cond) throw new ConfigError(msg);
}

export const posInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;
export const nonNeg = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
export const positive = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0;

export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `o` and everything under it frozen; returns `o`. */
export function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
