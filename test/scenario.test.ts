/** The main job, end to end: real workers, the report and its verdicts, and the moat command. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runOtaIsolation } from '@moat/examples';
import { renderReport } from '@moat/sim';

const run = promisify(execFile);
const moat = fileURLToPath(new URL('../apps/cli/dist/main.js', import.meta.url));

describe('ota-isolation', () => {
  it('delivers the image intact while every hostile call is refused and the crash leaks nothing', async () => {
    const report = await runOtaIsolation({ imageBytes: 1 << 20, seed: 7 });
    expect(report.description).toContain('over TCP');
    expect(report.verdicts.map((v) => [v.name, v.pass, v.detail]).filter(([, pass]) => !pass)).toEqual([]);
    expect(report.passed).toBe(true);
    const byName = Object.fromEntries(report.domains.map((d) => [d.name, d]));
    expect(byName.ota!.status).toBe('returned');
    expect(byName['third-party']!.status).toBe('threw');
    const attempts = Object.fromEntries(byName['third-party']!.attempts.map((a) => [a.name, a]));
    // Every handle from -10 to 4096 plus 12 that are not integers, three calls each.
    expect(attempts['sendto on forged handles']!.outcomes).toEqual({ EBADF: 4107 + 12 });
    expect(attempts['bind the OTA port']!.outcomes).toEqual({ EADDRINUSE: 3 });
    expect(attempts['malformed frames']!.outcomes.OK).toBeUndefined();
    expect(attempts['read beyond a reply']!.outcomes).toEqual({ exact: attempts['malformed frames']!.tries });
    expect(byName['third-party']!.final).toEqual({ handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, streamBytes: 0, pendingCalls: 0 });
    expect(report.kernel.leaks).toEqual([]);
    // The image crossed a lossy link: frames were lost and the OTA asked again.
    const [up, down] = report.links!;
    expect(down!.stats.lost).toBeGreaterThan(0);
    expect(down!.stats.delivered).toBeGreaterThan(256 * 2);
    expect(up!.stats.offered).toBeGreaterThan(0);
    expect(attempts["take the OTA's connection"]!.outcomes).toEqual({ EADDRINUSE: 1, ECONNREFUSED: 1 });
    const text = renderReport(report);
    expect(text).toContain('All verdicts pass.');
    expect(text).toMatch(/third-party\s+hostile third-party library\s+threw/);
    expect(text).toMatch(/server\.eth0 -> device\.eth0\s+\d+/);
  });

  it('runs over UDP too, the OTA asking again for the chunks the link lost', async () => {
    const report = await runOtaIsolation({ imageBytes: 1 << 20, seed: 7, transport: 'udp' });
    expect(report.verdicts.filter((v) => !v.pass)).toEqual([]);
    const ota = report.domains.find((d) => d.name === 'ota')!.summary as { requests: number; intact: boolean };
    expect(ota.intact).toBe(true);
    expect(ota.requests).toBeGreaterThan(256 / 32);
  });

  it('fails its verdict when the OTA cannot finish, and says why', async () => {
    // A receive window larger than the OTA's FIFO can hold still converges (lost chunks are asked again);
    // a timeout shorter than the run does not: the scenario must report failure, not pass by default.
    const report = await runOtaIsolation({ imageBytes: 1 << 20, timeoutMs: 1 });
    expect(report.passed).toBe(false);
    expect(report.verdicts.find((v) => v.name === 'OTA image intact')!.pass).toBe(false);
  });
});

describe('the moat command', () => {
  it('lists scenarios and runs one with --json, exiting 0 when every verdict passes', async () => {
    const list = await run(process.execPath, [moat, 'list', '--json']);
    expect(JSON.parse(list.stdout).map((s: { name: string }) => s.name)).toContain('ota-isolation');
    const { stdout } = await run(process.execPath, [moat, 'run', 'ota-isolation', '--json', '--seed', '3'], { maxBuffer: 16 << 20 });
    const report = JSON.parse(stdout);
    expect(report.seed).toBe(3);
    expect(report.passed).toBe(true);
  });

  it('exits 2 on an unknown scenario or a bad option', async () => {
    await expect(run(process.execPath, [moat, 'run', 'no-such-scenario'])).rejects.toMatchObject({ code: 2 });
    await expect(run(process.execPath, [moat, 'run', 'ota-isolation', '--seed', 'x'])).rejects.toMatchObject({ code: 2 });
  });
});
