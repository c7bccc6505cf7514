/**
 * Interoperation with a real TCP: Linux's own stack, in a network namespace
 * this test makes, reaches a Moat machine through a TAP device bridged to
 * the machine's UDP wire. Needs root, /dev/net/tun, iproute2 and python3;
 * skipped (and says so) where any is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ns = `moat-interop-${process.pid}`;
const available = (() => {
  if (process.getuid?.() !== 0 || !existsSync('/dev/net/tun')) return false;
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

describe.skipIf(!available)('interoperation with Linux TCP', () => {
  beforeAll(() => {
    ip('netns', 'add', ns);
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    ip('netns', 'exec', ns, 'ip', 'tuntap', 'add', 'dev', 'mtap0', 'mode', 'tap');
    ip('netns', 'exec', ns, 'ip', 'addr', 'add', '10.9.0.1/24', 'dev', 'mtap0');
    ip('netns', 'exec', ns, 'ip', 'link', 'set', 'mtap0', 'up');
  });
  afterAll(() => {
    try {
      ip('netns', 'del', ns);
    } catch {
      // already gone
    }
  });

  it('Linux connects to a Moat domain and a Moat domain connects to Linux, streams intact both ways', () => {
    const script = fileURLToPath(new URL('./fixtures/interop/run.mjs', import.meta.url));
    const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, script, 'mtap0'], {
      encoding: 'utf8',
      timeout: 60_000,
      cwd: fileURLToPath(new URL('.', import.meta.url)),
    });
    const result = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(result.linuxToMoat.intact).toBe(true);
    expect(result.linuxToMoat.moat.bytes).toBe(2 << 20);
    expect(result.moatToLinux).toMatchObject({ status: 'returned', intact: true, eof: true });
    expect(result.kernel.internalErrors).toBe(0);
    expect(result.kernel.leaks).toEqual([]);
  });
});
