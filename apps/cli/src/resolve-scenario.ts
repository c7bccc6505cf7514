/**
 * Turns what the user typed as a scenario into a ScenarioEntry: a name from
 * the built-in SCENARIOS, or a path to a .js/.mjs module whose default export
 * is one. run, replay and campaign (in the main thread and in each pool
 * thread) all resolve through here, so they accept and reject the same things.
 */
import { existsSync, statSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ScenarioEntry } from '@moat/examples';

/** A scenario argument that names nothing runnable; the message says what is wrong. */
export class ScenarioError extends Error {
  override name = 'ScenarioError';
}

export interface ResolvedScenario {
  entry: ScenarioEntry;
  /** What a pool thread needs to resolve the same scenario: the name, or the module's absolute path. */
  ref: string;
  /** The argument as the user gave it (what `moat replay` must be given to find it again). */
  arg: string;
}

const MODULE_EXTENSIONS = new Set(['.js', '.mjs']);

/** True when the argument is meant as a file rather than a scenario name. */
function looksLikePath(arg: string): boolean {
  return arg.includes('/') || arg.includes('\\') || extname(arg) !== '';
}

export async function resolveScenario(arg: string, cwd = process.cwd()): Promise<ResolvedScenario> {
  // Loaded here, not at the top: it brings the whole stack, which `moat --help` does not need.
  const { SCENARIOS } = await import('@moat/examples');
  const builtIn = SCENARIOS.find((s) => s.name === arg);
  if (builtIn) return { entry: builtIn, ref: arg, arg };
  if (!looksLikePath(arg)) {
    throw new ScenarioError(
      `no scenario named '${arg}'; known: ${SCENARIOS.map((s) => s.name).join(', ')} (or give the path of a .js/.mjs module whose default export is a scenario)`,
    );
  }
  const where = `scenario module ${arg}`;
  if (!MODULE_EXTENSIONS.has(extname(arg))) {
    throw new ScenarioError(`${where}: expected a .js or .mjs file (compile TypeScript scenarios first)`);
  }
  const path = isAbsolute(arg) ? arg : resolve(cwd, arg);
  if (!existsSync(path)) throw new ScenarioError(`${where}: no such file (${path})`);
  if (!statSync(path).isFile()) throw new ScenarioError(`${where}: not a file (${path})`);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (err) {
    throw new ScenarioError(`${where}: failed to load: ${(err as Error)?.message ?? err}`);
  }
  return { entry: checkEntry(mod.default, where), ref: path, arg };
}

/** Checks the shape a module's default export must have, naming the first thing missing. */
function checkEntry(value: unknown, where: string): ScenarioEntry {
  if (value === undefined) throw new ScenarioError(`${where}: has no default export (export default { name, description, run })`);
  if (typeof value !== 'object' || value === null) throw new ScenarioError(`${where}: default export is not an object but ${value === null ? 'null' : typeof value}`);
  const v = value as Partial<Record<keyof ScenarioEntry, unknown>>;
  if (typeof v.run !== 'function') throw new ScenarioError(`${where}: default export has no run() function`);
  if (typeof v.name !== 'string' || v.name === '') throw new ScenarioError(`${where}: default export has no name (a non-empty string)`);
  if (v.description !== undefined && typeof v.description !== 'string') throw new ScenarioError(`${where}: default export's description is not a string`);
  // The module's own object, so a run() that uses `this` keeps it.
  return value as ScenarioEntry;
}
