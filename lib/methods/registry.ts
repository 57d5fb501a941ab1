/**
 * The method registry. A method is one file (lib/methods/<name>.ts, exporting its MethodDefinition)
 * and one line in BUILTIN_METHODS below; config, budgets, the model builder, the trainer and the
 * views look it up here. A method defined elsewhere (a test's, a notebook's) joins with registerMethod.
 */
import type { AugmentConfig } from '../augment/presets';
import type { ViewsConfig } from '../augment/pipeline';
import { ConfigError } from '../util/check';
import { ConfigSection, MethodDefinition } from './method';
import { barlowMethod } from './barlow';
import { dinoMethod } from './dino';
import { dinoTwinsMethod } from './dinoTwins';

export const BUILTIN_METHODS = [barlowMethod, dinoMethod, dinoTwinsMethod] as const;

/** The name of a built-in method. */
export type Method = (typeof BUILTIN_METHODS)[number]['name'];
/** The built-in methods' names, in registry order. */
export const METHODS: readonly Method[] = Object.freeze(BUILTIN_METHODS.map((m) => m.name));

const registered = new Map<string, MethodDefinition>(BUILTIN_METHODS.map((m) => [m.name, m]));

/**
 * Registers `def` beside the built-in methods; returns the function that removes it again. A config
 * section it shares with a registered method must be that method's section object (one default per knob).
 */
export function registerMethod(def: MethodDefinition): () => void {
  if (registered.has(def.name)) throw new ConfigError(`method "${def.name}" is already registered`);
  for (const s of def.sections) {
    const other = configSections().find((o) => o.key === s.key);
    if (other && other !== s)
      throw new ConfigError(
        `method "${def.name}": its config section "${s.key}" is another one than the registered methods' "${s.key}"; share theirs or use another key`,
      );
  }
  registered.set(def.name, def);
  return () => {
    if (registered.get(def.name) === def) registered.delete(def.name);
  };
}

/** The registered methods, built-in first. */
export function registeredMethods(): MethodDefinition[] {
  return [...registered.values()];
}

/** The registry entry of `name`; an unknown name is a ConfigError listing the registered ones. */
export function methodDefinition(name: string): MethodDefinition {
  const d = registered.get(name);
  if (!d) throw new ConfigError(`method "${String(name)}" is not one of ${[...registered.keys()].join(', ')}`);
  return d;
}

/** Every config section of the registered methods, once each, in registry order. */
export function configSections(): ConfigSection[] {
  const out: ConfigSection[] = [];
  for (const m of registered.values()) for (const s of m.sections) if (!out.includes(s)) out.push(s);
  return out;
}

/** The views `method` trains on, from a run's augment section. */
export function viewsForMethod(method: string, aug: AugmentConfig): ViewsConfig {
  return methodDefinition(method).views(aug);
}
