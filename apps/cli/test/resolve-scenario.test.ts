/** Scenario arguments: a built-in name, or a module path; anything else named precisely. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveScenario, ScenarioError } from '../src/resolve-scenario.js';
import { SCENARIOS } from '@moat/examples';

const dir = await mkdtemp(join(tmpdir(), 'moat-resolve-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Writes a module into the temporary folder and returns its name there. */
async function module(name: string, source: string): Promise<string> {
  await writeFile(join(dir, name), source);
  return name;
}

describe('resolveScenario', () => {
  it('finds a built-in scenario by name', async () => {
    const r = await resolveScenario('ota-udp');
    expect(r).toMatchObject({ ref: 'ota-udp', arg: 'ota-udp', entry: { name: 'ota-udp' } });
  });

  it('loads a module relative to the given folder and keeps its own object', async () => {
    const name = await module('good.mjs', "export default { name: 'good', description: 'd', run() { return this.name; } };");
    const r = await resolveScenario(`./${name}`, dir);
    expect(r.ref).toBe(join(dir, name));
    expect(r.arg).toBe(`./${name}`);
    expect(await r.entry.run({})).toBe('good');
  });

  it.each([
    ['nope', `no scenario named 'nope'; known: ${SCENARIOS.map((s) => s.name).join(', ')} (or give the path of a .js/.mjs module whose default export is a scenario)`],
    ['./x.ts', 'scenario module ./x.ts: expected a .js or .mjs file (compile TypeScript scenarios first)'],
    ['./missing.mjs', `scenario module ./missing.mjs: no such file (${join(dir, 'missing.mjs')})`],
  ])('rejects %s', async (arg, message) => {
    const err = await resolveScenario(arg, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScenarioError);
    expect((err as Error).message).toBe(message);
  });

  it.each([
    ['none.mjs', 'export const x = 1;', 'has no default export (export default { name, description, run })'],
    ['number.mjs', 'export default 42;', 'default export is not an object but number'],
    ['no-run.mjs', "export default { name: 'n' };", 'default export has no run() function'],
    ['no-name.mjs', 'export default { run() {} };', 'default export has no name (a non-empty string)'],
    ['bad-description.mjs', "export default { name: 'n', description: 1, run() {} };", "default export's description is not a string"],
    ['throws.mjs', "throw new Error('top-level failure');", 'failed to load: top-level failure'],
    ['syntax.js', 'export default {', 'failed to load: '],
  ])('names what is wrong with %s', async (file, source, problem) => {
    const name = await module(file, source);
    await expect(resolveScenario(`./${name}`, dir)).rejects.toThrow(`scenario module ./${name}: ${problem}`);
  });

  it('rejects a folder, even one named like a module', async () => {
    await mkdir(join(dir, 'folder.mjs'));
    await expect(resolveScenario('folder.mjs', dir)).rejects.toThrow(`scenario module folder.mjs: not a file (${join(dir, 'folder.mjs')})`);
    await expect(resolveScenario(dir)).rejects.toThrow(`scenario module ${dir}: expected a .js or .mjs file`);
  });
});
