/**
 * Consumption from outside the workspace: packs the five library packages
 * with `npm pack`, installs the tarballs into a fresh project under the OS
 * temp directory, type-checks and compiles a small consumer (the fixture in
 * fixtures/consumer/) against the published .d.ts files with the workspace's
 * own tsc, runs it with node and checks what it printed.
 *
 * Needs the packages built first (`npm run build` at the root).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const fixture = join(here, 'fixtures', 'consumer');
/** The workspace's own compiler: the consumer project gets no typescript of its own. */
const tsc = join(root, 'node_modules', '.bin', 'tsc');

const PACKAGES = [
  { name: '@moat/abi', dir: 'packages/abi' },
  { name: '@moat/netstack', dir: 'packages/netstack' },
  { name: '@moat/kernel', dir: 'packages/kernel' },
  { name: '@moat/libc', dir: 'packages/libc' },
  { name: '@moat/sim', dir: 'packages/sim' },
] as const;

/** Every byte value, then some text: the datagram must arrive byte for byte. */
const PAYLOAD = Buffer.concat([
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  Buffer.from('hello from outside the monorepo \u00e9\u2603', 'utf8'),
]);
const PAYLOAD_HEX = PAYLOAD.toString('hex');

/**
 * The environment for child commands: without the npm_* variables that
 * `npx`/`npm run` export (npm_config_local_prefix would point npm at the
 * workspace root instead of the temporary project).
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  return env;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a program (no shell) and fails with its exit status, stdout and stderr if it fails. */
function run(file: string, args: string[], cwd: string, timeoutMs: number): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      { cwd, env: childEnv(), timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 32 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (!error) return resolvePromise({ stdout, stderr });
        const e = error as NodeJS.ErrnoException & { code?: number | string; signal?: string; killed?: boolean };
        const elapsed = Math.round(performance.now() - started);
        const how = e.killed
          ? `timed out after ${timeoutMs} ms (killed with ${e.signal})`
          : e.signal
            ? `ended by ${e.signal}`
            : `exited with ${e.code}`;
        reject(
          new Error(
            [
              `command failed: ${[file, ...args].join(' ')}`,
              `  in ${cwd}`,
              `  ${how} after ${elapsed} ms`,
              `--- stderr ---`,
              stderr.trimEnd() || '(empty)',
              `--- stdout ---`,
              stdout.trimEnd() || '(empty)',
            ].join('\n'),
          ),
        );
      },
    );
  });
}

interface PackResult {
  name: string;
  version: string;
  filename: string;
  files: { path: string }[];
}

/** Every file an `exports` map points at (conditions and subpaths flattened). */
function exportTargets(exportsField: unknown): string[] {
  if (typeof exportsField === 'string') return [exportsField];
  if (exportsField && typeof exportsField === 'object') return Object.values(exportsField).flatMap(exportTargets);
  return [];
}

function isZeroAccounting(a: Record<string, number>): boolean {
  return Object.values(a).every((v) => v === 0);
}

describe('the packed packages, consumed from outside the workspace', () => {
  let tmp: string | undefined;

  beforeAll(async () => {
    const missing = PACKAGES.filter((p) => !existsSync(join(root, p.dir, 'dist', 'index.js')));
    if (missing.length > 0) {
      throw new Error(`not built: ${missing.map((p) => p.name).join(', ')}; run \`npm run build\` at the workspace root first`);
    }
    tmp = await mkdtemp(join(tmpdir(), 'moat-consumer-'));
    const rel = relative(root, tmp);
    if (!isAbsolute(rel) && rel.split(sep)[0] !== '..') {
      throw new Error(`temporary directory ${tmp} is inside the workspace ${root}`);
    }
  });

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true, maxRetries: 3 });
  });

  it(
    'packs, installs from the tarballs, type-checks against the published .d.ts and runs a UDP echo domain',
    async () => {
      const dir = tmp!;
      const packs = join(dir, 'packs');
      const project = join(dir, 'project');
      await mkdir(packs);
      await mkdir(project);

      // 1. Pack each package into the temporary directory.
      const tarballs = new Map<string, string>();
      const packProblems: string[] = [];
      for (const p of PACKAGES) {
        const cwd = join(root, p.dir);
        const { stdout } = await run('npm', ['pack', '--pack-destination', packs, '--json'], cwd, 30_000);
        const [result] = JSON.parse(stdout) as PackResult[];
        expect(result?.name, `npm pack in ${p.dir}`).toBe(p.name);
        tarballs.set(p.name, join(packs, result!.filename));

        // Every file the exports map names must be in the tarball.
        const manifest = JSON.parse(await readFile(join(cwd, 'package.json'), 'utf8')) as { exports?: unknown };
        const packed = new Set(result!.files.map((f) => f.path));
        for (const target of exportTargets(manifest.exports)) {
          const path = target.replace(/^\.\//, '');
          if (!packed.has(path)) packProblems.push(`${p.name}: exports target ${target} is not in the tarball (${p.dir}/package.json "files")`);
        }
      }
      expect(packProblems, 'exports targets missing from the packed tarballs').toEqual([]);
      expect((await readdir(packs)).sort()).toHaveLength(PACKAGES.length);

      // 2. A consumer project that depends on the tarballs only.
      const deps = Object.fromEntries([...tarballs].map(([name, file]) => [name, `file:${file}`]));
      await writeFile(
        join(project, 'package.json'),
        JSON.stringify(
          {
            name: 'moat-consumer',
            version: '0.0.0',
            private: true,
            type: 'module',
            dependencies: deps,
            devDependencies: { '@types/node': '^20' },
            // The packages depend on each other by version ("0.1.0"); they are not on the
            // registry, so pin every copy to the local tarball rather than ever asking it.
            overrides: deps,
          },
          null,
          2,
        ) + '\n',
      );
      for (const file of await readdir(fixture)) await copyFile(join(fixture, file), join(project, file));

      await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], project, 45_000);
      for (const p of PACKAGES) {
        const installed = JSON.parse(await readFile(join(project, 'node_modules', p.name, 'package.json'), 'utf8')) as { version: string };
        expect(installed.version, `${p.name} installed from its tarball`).toBeTypeOf('string');
        // One copy of each: no package pulled in a second @moat/* of its own.
        for (const q of PACKAGES) {
          expect(existsSync(join(project, 'node_modules', p.name, 'node_modules', q.name)), `${p.name} has a nested ${q.name}`).toBe(false);
        }
      }

      // 3. Type-check and compile with the workspace's tsc (skipLibCheck off in the fixture's tsconfig).
      await run(tsc, ['-p', 'tsconfig.json'], project, 30_000);
      expect(existsSync(join(project, 'dist', 'main.js'))).toBe(true);
      expect(existsSync(join(project, 'dist', 'echo.js'))).toBe(true);

      // 4. Run it.
      const { stdout, stderr } = await run(process.execPath, [join('dist', 'main.js'), PAYLOAD_HEX], project, 20_000);
      const line = stdout.trim().split('\n').pop() ?? '';
      let report: any;
      try {
        report = JSON.parse(line);
      } catch {
        throw new Error(`main.js did not print JSON\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`);
      }

      const { outcome, stats } = report;
      expect(outcome.status, `domain outcome: ${JSON.stringify(outcome)}`).toBe('returned');
      expect(outcome.error).toBeUndefined();

      const v = outcome.value;
      expect(v.sent).toBe(PAYLOAD.length);
      expect(v.received).toBe(PAYLOAD_HEX);
      expect(v.receivedFlags).toBe(0);
      expect(v.echoed).toBe(PAYLOAD_HEX);
      expect(v.sender.addr).toBe('127.0.0.1');
      expect(v.receiver.addr).toBe('127.0.0.1');
      expect(v.sender.port).toBeGreaterThan(0);
      expect(v.receiver.port).toBeGreaterThan(0);
      expect(v.sender.port).not.toBe(v.receiver.port);
      expect(v.receivedFrom).toEqual(v.sender);
      expect(v.echoedFrom).toEqual(v.receiver);

      // The domain's final accounting, taken after the kernel released it.
      expect(outcome.final.alive).toBe(false);
      expect(isZeroAccounting(outcome.final.accounting), `final accounting ${JSON.stringify(outcome.final.accounting)}`).toBe(true);

      // The kernel: nothing leaked, nothing went wrong inside it.
      expect(stats.leaks).toEqual([]);
      expect(stats.internalErrors, `last internal error: ${stats.lastInternalError}`).toBe(0);
      expect(stats.pool.inUseBytes).toBe(0);
      expect(stats.pool.inUseBuffers).toBe(0);
      expect(stats.pool.failures).toBe(0);
      for (const d of stats.domains) {
        expect(isZeroAccounting(d.accounting), `domain ${d.name} accounting ${JSON.stringify(d.accounting)}`).toBe(true);
      }

      // Values the consumer read from @moat/libc's re-exports of @moat/abi.
      expect(report.udpMaxPayload).toBe(65507);
      expect(report.ebadf).toBe('EBADF');
    },
    60_000,
  );
});
