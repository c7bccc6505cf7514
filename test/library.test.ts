/**
 * The isolation library: every scenario once, seed 1, one after another (each
 * starts its own kernel and domain workers; two at once would fight for the
 * machine's two cores and skew the flood's latencies).
 *
 * Two of them found kernel bugs, since fixed: grant-revoke (a revoke did not
 * reach what the grantee had granted on) and syscall-flood (requests that
 * arrived during a long drain waited for its end, behind up to 1,024 of a
 * flooder's calls).
 */
import { describe, expect, it } from 'vitest';
import { LIBRARY, SCENARIOS } from '@moat/examples';
import type { ScenarioReport } from '@moat/sim';

const reports = new Map<string, Promise<ScenarioReport>>();
/** Runs a library scenario with seed 1, once, however many tests look at it. */
function report(name: string): Promise<ScenarioReport> {
  let r = reports.get(name);
  if (!r) {
    const scenario = LIBRARY.find((s) => s.name === name);
    if (!scenario) throw new Error(`no library scenario ${name}`);
    r = scenario.run({ seed: 1 });
    reports.set(name, r);
  }
  return r;
}

const failed = (r: ScenarioReport) => r.verdicts.filter((v) => !v.pass).map((v) => `${v.name}: ${v.detail}`);

describe('the isolation library', () => {
  it('is registered for the moat command', () => {
    const names = SCENARIOS.map((s) => s.name);
    for (const s of LIBRARY) expect(names).toContain(s.name);
    expect(LIBRARY.map((s) => s.name)).toEqual([
      'forged-handles',
      'use-after-close',
      'grant-revoke',
      'buffer-exhaustion',
      'syscall-flood',
      'crash-mid-transfer',
      'hang-mid-transfer',
      'oom-mid-transfer',
      'port-hijack',
      'confidentiality',
      'request-mutation',
    ]);
  });

  for (const { name } of LIBRARY) {
    it(`${name} passes`, async () => {
      const r = await report(name);
      expect(failed(r)).toEqual([]);
      expect(r.passed).toBe(true);
    });
  }
});
