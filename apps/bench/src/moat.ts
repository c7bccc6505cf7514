/**
 * The Moat side of each figure: a fresh simulated machine (kernel worker)
 * per measurement, with the bench's programs running in domain workers.
 */
import { Machine, type DomainHandle } from '@moat/sim';
import type { NullCallsArgs } from './programs/null-calls.js';
import type { UdpReceiverArgs } from './programs/udp-receiver.js';
import type { UdpSenderArgs } from './programs/udp-sender.js';
import type { RoundResult, UdpPlan } from './udp-protocol.js';

const program = (name: string) => new URL(`./programs/${name}.js`, import.meta.url);

async function onMachine<T>(run: (m: Machine) => Promise<T>): Promise<T> {
  const machine = new Machine({ name: 'bench' });
  try {
    return await run(machine);
  } finally {
    await machine.shutdown();
  }
}

/** What the domain's program returned; anything but a normal return fails the bench. */
async function returned<T>(d: DomainHandle): Promise<T> {
  const o = await d.outcome;
  if (o.status !== 'returned') throw new Error(`domain ${o.name} ${o.status}: ${o.error ?? ''}\n${o.logs.join('\n')}`);
  return o.value as T;
}

/** Null syscalls from one domain (latency samples in µs, or calls/s per trial for 'in-flight'). */
export function nullCalls(args: NullCallsArgs): Promise<Float64Array | number[]> {
  return onMachine(async (m) => returned(await m.spawn({ name: 'caller', program: program('null-calls'), args })));
}

const RECEIVER_PORT = 7000;

/** A UDP transfer between two domains of one machine, through its kernel's loopback. */
export function udpTransfer(plan: UdpPlan): Promise<RoundResult[]> {
  return onMachine(async (m) => {
    const receiver = await m.spawn({
      name: 'receiver',
      program: program('udp-receiver'),
      args: { port: RECEIVER_PORT, depth: Math.max(16, plan.window) } satisfies UdpReceiverArgs,
    });
    await receiver.waitForLog(/^ready/);
    const sender = await m.spawn({
      name: 'sender',
      program: program('udp-sender'),
      args: { ...plan, to: { addr: '127.0.0.1', port: RECEIVER_PORT } } satisfies UdpSenderArgs,
    });
    const [rounds] = await Promise.all([returned<RoundResult[]>(sender), returned(receiver)]);
    return rounds;
  });
}
