/**
 * What the isolation library's scenarios share: the device and update-server
 * machines on a clean link, the OTA that starts a neighbour halfway through
 * its download, and checks several scenarios judge by.
 */
import { tallyCalls, type DomainDefinition, type DomainOutcome, type LinkDefinition, type MachineDefinition, type ScenarioRun } from '@moat/sim';
import type { OtaStreamArgs, OtaStreamResult } from '../../programs/ota-stream.js';
import type { UpdateServerTcpArgs } from '../../programs/update-server-tcp.js';

/** A program of apps/examples by file name. */
export const program = (name: string) => new URL(`../../programs/${name}.js`, import.meta.url);

export const DEVICE: MachineDefinition = { name: 'device', interfaces: [{ name: 'eth0', addr: '10.0.0.1/24' }] };
export const SERVER: MachineDefinition = { name: 'server', interfaces: [{ name: 'eth0', addr: '10.0.0.2/24' }] };
/** No loss, 1 ms each way: the scenarios are about the device's kernel, not the network. */
export const CLEAN_LINK: LinkDefinition = { between: ['device.eth0', 'server.eth0'], faults: { latencyMs: 1 } };

export const PORTS = { server: 24680, ota: 24681, neighbour: 24682, side: 24683 } as const;
export const SERVER_ADDR = { addr: '10.0.0.2', port: PORTS.server };

/** The TCP update server on the server machine, serving a seeded image until the OTA says BYE. */
export function updateServer(imageBytes: number): DomainDefinition {
  return {
    name: 'update-server',
    role: 'update server',
    machine: 'server',
    program: program('update-server-tcp'),
    args: ({ seed }: { seed: number }) => ({ port: PORTS.server, imageBytes, seed }) satisfies UpdateServerTcpArgs,
    awaited: false,
  };
}

/**
 * The OTA on the device (ota-stream): it starts once `after` has logged
 * 'loaded', downloads half the image, starts that neighbour and waits for it
 * (at most `waitMs`), then downloads the rest.
 */
export function midwayOta(after: string, waitMs = 20_000): DomainDefinition {
  return {
    name: 'ota',
    role: 'OTA updater',
    machine: 'device',
    program: program('ota-stream'),
    args: {
      server: SERVER_ADDR,
      port: PORTS.ota,
      midway: { neighbour: { addr: '127.0.0.1', port: PORTS.neighbour }, sidePort: PORTS.side, waitMs },
    } satisfies OtaStreamArgs,
    startAfter: { domain: after, log: '^loaded' },
  };
}

export type Check = { pass: boolean; detail: string };

/** The value a domain returned (or, if it never returned, the last one it published). */
export function valueOf<T>(run: ScenarioRun, name: string): T | undefined {
  const out = run.outcomes[name];
  return (out?.value ?? out?.published) as T | undefined;
}

/** The OTA returned, and the SHA-256 of what it assembled matches the server's. */
export function otaIntact(run: ScenarioRun, name = 'ota'): Check {
  const out = run.outcomes[name];
  const r = out?.value as OtaStreamResult | undefined;
  if (out?.status !== 'returned' || !r) return { pass: false, detail: `${name} ${out?.status ?? 'never ran'}: ${out?.error ?? 'no result'}` };
  return { pass: r.intact, detail: `${r.bytes} bytes in ${r.ms} ms, SHA-256 ${r.intact ? 'matches' : 'DOES NOT match'} the server's (${r.sha256.slice(0, 16)}...)` };
}

/** Every property of the OTA's download socket was as it set it, and it saw no refusal of its own calls. */
export function otaUntouched(run: ScenarioRun, name = 'ota'): Check {
  const out = run.outcomes[name];
  const r = out?.value as OtaStreamResult | undefined;
  if (!r) return { pass: false, detail: `${name} has no result` };
  const changed = Object.entries(r.socketChecks).filter(([, ok]) => !ok).map(([what]) => what);
  // The OTA's own calls all succeed (but the EAGAIN that ends its non-blocking sweep of the side
  // listener); a refusal (EBADF after a hostile close, say) means one of its sockets was touched.
  const calls = { ...out?.final?.calls, accept: { ...out?.final?.calls.accept, EAGAIN: 0 } };
  const refused = Object.fromEntries(Object.entries(tallyCalls(calls).refused).filter(([, n]) => n > 0));
  const pass = changed.length === 0 && Object.keys(refused).length === 0;
  return {
    pass,
    detail:
      `${Object.keys(r.socketChecks).length - changed.length}/${Object.keys(r.socketChecks).length} socket properties as the OTA set them` +
      (changed.length ? ` (changed: ${changed.join(', ')})` : '') +
      `; its own calls refused: ${Object.keys(refused).length ? JSON.stringify(refused) : 'none'}`,
  };
}

/** What the kernel still charged a domain after it was released: all zero, or what is left. */
export function releasedClean(out: DomainOutcome | undefined): Check {
  const a = out?.final?.accounting;
  if (!a) return { pass: false, detail: `no final accounting for ${out?.name ?? 'the domain'}` };
  const left = Object.entries(a).filter(([, v]) => v !== 0);
  return { pass: left.length === 0, detail: left.length ? `still charged ${left.map(([k, v]) => `${k} ${v}`).join(', ')}` : 'handles, sockets, buffers, bytes and pending calls all 0' };
}

/** Sum of the tries of the attempts whose name is in `names` (all when omitted), and their outcomes merged. */
export function merged(attempts: { name: string; tries: number; outcomes: Record<string, number>; breaches: number }[], names?: string[]) {
  const chosen = names ? attempts.filter((a) => names.includes(a.name)) : attempts;
  const outcomes: Record<string, number> = {};
  for (const a of chosen) for (const [k, v] of Object.entries(a.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + v;
  return { tries: chosen.reduce((n, a) => n + a.tries, 0), breaches: chosen.reduce((n, a) => n + a.breaches, 0), outcomes, count: chosen.length };
}

/** 'EBADF 120, ENOTSOCK 3' */
export const outcomesText = (o: Record<string, number>) =>
  Object.entries(o)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';
