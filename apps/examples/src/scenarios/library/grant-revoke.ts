/**
 * grant-revoke: the OTA lends a plugin its notice socket through READ and
 * READ|GRANT grants, the plugin tries everything with them and passes a
 * narrowed grant to a bystander, then the OTA revokes and everyone tries
 * again.
 */
import { defineScenario, type ScenarioRun } from '@moat/sim';
import type { BystanderArgs, BystanderResult } from '../../programs/bystander.js';
import type { GranteeArgs, GranteeResult } from '../../programs/grantee.js';
import type { GrantorOtaArgs, GrantorOtaResult } from '../../programs/grantor-ota.js';
import { outcomesText, program, valueOf } from './common.js';

const PLUGIN_PORT = 24692;
const BYSTANDER_PORT = 24693;

const find = (attempts: { name: string; tries: number; outcomes: Record<string, number>; breaches: number }[] | undefined, name: string) =>
  attempts?.find((a) => a.name === name);

/** Passes when attempt `name` was made and every result was `want`. */
function only(run: ScenarioRun, domain: string, name: string, want: string[]): { ok: boolean; text: string } {
  const a = find(valueOf<{ attempts: never[] }>(run, domain)?.attempts, name);
  if (!a) return { ok: false, text: `${name}: never tried` };
  const ok = a.tries > 0 && a.breaches === 0 && Object.keys(a.outcomes).every((k) => want.includes(k));
  return { ok, text: `${name}: ${outcomesText(a.outcomes)}` };
}

export default defineScenario({
  name: 'grant-revoke',
  description:
    'The OTA lends its notice socket to a plugin domain through a READ grant and a READ|GRANT grant. The plugin may read and nothing more: ' +
    'writes, control calls and wider re-grants are refused; it passes a narrowed READ grant to a bystander. Then the OTA revokes, and every ' +
    "later use fails, through the plugin's numbers and through what it passed on.",
  machines: [{ name: 'device' }],
  domains: [
    { name: 'bystander', role: 'domain the plugin passes a grant to', machine: 'device', program: program('bystander'), args: { controlPort: BYSTANDER_PORT } satisfies BystanderArgs },
    {
      name: 'plugin',
      role: 'plugin lent a read-only handle',
      machine: 'device',
      program: program('grantee'),
      args: { controlPort: PLUGIN_PORT, bystander: { name: 'bystander', port: BYSTANDER_PORT } } satisfies GranteeArgs,
      startAfter: { domain: 'bystander', log: '^loaded' },
    },
    {
      name: 'ota',
      role: 'OTA updater (the owner)',
      machine: 'device',
      program: program('grantor-ota'),
      args: { plugin: { name: 'plugin', port: PLUGIN_PORT }, notices: 4 } satisfies GrantorOtaArgs,
      startAfter: { domain: 'plugin', log: '^loaded' },
    },
  ],
  expect: [
    {
      name: 'The plugin could do only what its rights allow',
      // A kernel that checked the handle but not its rights would let the writes and control calls
      // through; one that forgot to mask poll would show POLLOUT.
      check: (run) => {
        const r = valueOf<GranteeResult>(run, 'plugin');
        const parts = [
          only(run, 'plugin', 'what READ allows', ['OK']),
          only(run, 'plugin', 'poll without WRITE', ['POLLIN only']),
          only(run, 'plugin', 'write without WRITE', ['EACCES']),
          only(run, 'plugin', 'control without CONTROL', ['EACCES']),
          only(run, 'plugin', 'grant without GRANT', ['EACCES']),
          only(run, 'plugin', 're-grant narrower rights', ['OK']),
          only(run, 'plugin', 'close its own entry', ['OK']),
          only(run, 'bystander', 'derived grant, while it stands', ['OK', 'EACCES']),
        ];
        const pass = parts.every((p) => p.ok) && r?.readNotice === 'notice 1';
        return { pass, detail: `read "${r?.readNotice ?? '?'}"; ${parts.map((p) => p.text).join('; ')}` };
      },
    },
    {
      name: 'No re-grant wider than held',
      check: (run) => {
        const p = only(run, 'plugin', 're-grant wider rights', ['EACCES']);
        return { pass: p.ok, detail: `${p.text} (WRITE, READ|WRITE, READ|CONTROL, READ|GRANT|WRITE and all rights, to the bystander and to the owner)` };
      },
    },
    {
      name: "Every use of the plugin's grants fails after the revoke",
      check: (run) => {
        const ota = valueOf<GrantorOtaResult>(run, 'ota');
        const p = only(run, 'plugin', 'use after revoke', ['EBADF', 'POLLNVAL']);
        return { pass: p.ok && (ota?.revoked ?? 0) >= 1, detail: `revoke removed ${ota?.revoked ?? '?'} entry(ies) (the plugin had closed the other); ${p.text}` };
      },
    },
    {
      name: 'Revocation reaches what the plugin passed on',
      // Revoking the plugin must end its access; a grant it derived and lent to a bystander before
      // the revoke would otherwise keep that access alive in a domain the owner never dealt with.
      check: (run) => {
        const p = only(run, 'bystander', 'derived grant, after the revoke', ['EBADF', 'POLLNVAL']);
        const read = valueOf<BystanderResult>(run, 'bystander')?.read ?? [];
        return { pass: p.ok, detail: `${p.text}; the bystander read ${read.length ? read.map((x) => `"${x}"`).join(', ') : 'nothing'}` };
      },
    },
    {
      name: "The OTA's socket outlived the grants, its data its own",
      // The plugin's close of its entry must not close the socket; nobody without a live grant may
      // have taken a notice: the OTA must find exactly the ones not read while granted.
      check: (run) => {
        const r = valueOf<GrantorOtaResult>(run, 'ota');
        if (!r) return { pass: false, detail: `the OTA left no result (${run.outcomes.ota?.error ?? run.outcomes.ota?.status})` };
        const changed = Object.entries(r.checks).filter(([, ok]) => !ok).map(([k]) => k);
        const expected = ['notice 3', 'notice 4'];
        const pass = changed.length === 0 && JSON.stringify(r.remaining) === JSON.stringify(expected);
        return { pass, detail: `notices still queued: ${r.remaining.join(', ') || 'none'} (expected ${expected.join(', ')}); ${changed.length ? `changed: ${changed.join(', ')}` : 'options and address as set'}` };
      },
    },
  ],
  timeoutMs: 30_000,
});
