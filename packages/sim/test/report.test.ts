import { describe, expect, it } from 'vitest';
import { newAttempt, record, renderReport, tallyCalls, type ScenarioReport } from '../src/index.js';

describe('report helpers', () => {
  it('tallies calls into totals and refusals by errno', () => {
    expect(tallyCalls({ close: { OK: 2, EBADF: 3 }, sendto: { EBADF: 1, EMSGSIZE: 1 } })).toEqual({
      total: 7,
      ok: 2,
      refused: { EBADF: 4, EMSGSIZE: 1 },
    });
  });

  it('counts a breach only where the caller says the result is one', () => {
    const a = newAttempt('x');
    record(a, 'EBADF');
    record(a, 'OK', true);
    expect(a).toMatchObject({ tries: 2, outcomes: { EBADF: 1, OK: 1 }, breaches: 1 });
  });

  it('renders every domain, attempt and verdict', () => {
    const report: ScenarioReport = {
      scenario: 's',
      description: 'd',
      seed: 3,
      durationMs: 1500,
      domains: [
        {
          name: 'evil',
          role: 'attacker',
          status: 'threw',
          attempts: [{ name: 'forge', tries: 5, outcomes: { EBADF: 5 }, breaches: 0 }],
          calls: { close: { EBADF: 5 } },
          malformedFrames: 0,
          final: { handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, streamBytes: 0, pendingCalls: 0 },
          restarts: 0,
        },
      ],
      kernel: {
        internalErrors: 0,
        leaks: [],
        pool: { capacityBytes: 1, inUseBytes: 0, inUseBuffers: 0, allocations: 0, failures: 0, reservedBytes: 0, injectedFailures: 0 },
        stack: { 'drop.udp.noSocket': 2 },
      },
      verdicts: [
        { name: 'good', pass: true, detail: 'fine' },
        { name: 'bad', pass: false, detail: 'broken' },
      ],
      passed: false,
    };
    const text = renderReport(report);
    expect(text).toContain('Scenario s (seed 3, 1.50 s)');
    expect(text).toMatch(/evil\s+attacker\s+threw\s+0\s+-\s+5\s+0\s+EBADF 5/);
    expect(text).toMatch(/forge\s+5\s+EBADF 5\s+0/);
    expect(text).toContain('udp.noSocket 2');
    expect(text).toContain('PASS  good: fine');
    expect(text).toContain('FAIL  bad: broken');
    expect(text).toContain('Some verdicts fail.');
  });
});
