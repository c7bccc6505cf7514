/**
 * port-hijack: a neighbour tries to take the OTA's ports and its connection's
 * four-tuple while the OTA is halfway through a TCP download.
 */
import { defineScenario } from '@moat/sim';
import type { OtaStreamResult } from '../../programs/ota-stream.js';
import type { PortHijackerArgs, PortHijackerResult } from '../../programs/port-hijacker.js';
import { CLEAN_LINK, DEVICE, merged, midwayOta, otaIntact, otaUntouched, outcomesText, PORTS, program, SERVER, updateServer, valueOf } from './common.js';

export default defineScenario({
  name: 'port-hijack',
  description:
    "A neighbour tries to take the OTA's ports while the OTA is halfway through a TCP download: binds its TCP port on every address, with and " +
    "without SO_REUSEADDR, listens on it, binds the OTA's address and port to take its four-tuple to the server, connects to it, and binds " +
    "the OTA's listening port and UDP port. Every attempt must be refused and the OTA's connection and listener must be unchanged.",
  machines: [DEVICE, SERVER],
  links: [CLEAN_LINK],
  domains: [
    updateServer(512 << 10),
    {
      name: 'hijacker',
      role: 'port hijacker',
      machine: 'device',
      program: program('port-hijacker'),
      args: { controlPort: PORTS.neighbour, localAddrs: ['127.0.0.1', '10.0.0.1'] } satisfies PortHijackerArgs,
      startAfter: { domain: 'update-server', log: '^serving' },
    },
    midwayOta('hijacker'),
  ],
  expect: [
    {
      name: 'Every hijack refused',
      // A kernel that let SO_REUSEADDR share a live port, compared only exact addresses (a specific
      // address beside the OTA's 0.0.0.0), or allowed a second socket on a four-tuple fails here.
      check: (run) => {
        const r = valueOf<PortHijackerResult>(run, 'hijacker');
        if (!r) return { pass: false, detail: 'the hijacker left no result' };
        const all = merged(r.attempts);
        const succeeded = r.attempts.filter((a) => a.outcomes.OK).map((a) => `${a.name} (${a.outcomes.OK})`);
        return {
          pass: all.count >= 11 && all.tries > 0 && all.breaches === 0 && succeeded.length === 0 && r.attempts.every((a) => a.tries > 0),
          detail: `${all.tries} attempts in ${all.count} kinds: ${outcomesText(all.outcomes)}${succeeded.length ? `; SUCCEEDED: ${succeeded.join(', ')}` : ''}`,
        };
      },
    },
    { name: "OTA's download intact", check: (run) => otaIntact(run) },
    {
      name: "OTA's connection and listener unchanged",
      check: (run) => {
        const untouched = otaUntouched(run);
        const m = valueOf<OtaStreamResult>(run, 'ota')?.midway;
        // The listener accepted the hijacker's report connection and nothing else: a connect to the
        // download port that landed on the listener (or anywhere) would show as a second one.
        const ok = untouched.pass && m?.ending === 'eof' && m.accepted === 1;
        return { pass: !!ok, detail: `${untouched.detail}; side listener accepted ${m?.accepted ?? '?'} connection(s), ended ${m?.ending ?? '?'}` };
      },
    },
  ],
  timeoutMs: 30_000,
});
