/**
 * MachineCell against a real actor: driven by the same random event
 * sequences (fast-check, seeded), both machines' cells always hold what the
 * actor holds: state, context, tags and status.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, type AnyStateMachine, type EventObject } from 'xstate';
import { MachineCell } from '../src/machine-cell.js';
import { TCP_EVENT_TYPES, tcpConnectionMachine } from '../src/tcp/connection-machine.js';
import { socketMachine, type SocketEvent } from '../src/tcp/socket-machine.js';

const SOCKET_EVENTS: SocketEvent[] = [
  { type: 'BIND' },
  { type: 'LISTEN' },
  { type: 'CONNECT' },
  { type: 'CONNECTED' },
  { type: 'CONNECTION_FAILED', error: 'ECONNREFUSED' },
  { type: 'CONNECTION_FAILED', error: 'ECONNRESET' },
  { type: 'SHUT_RD' },
  { type: 'SHUT_WR' },
  { type: 'SHUT_RDWR' },
  { type: 'PEER_CLOSED' },
  { type: 'CLOSE' },
];

const view = (s: { value: unknown; context: unknown; status: unknown; tags: Set<string> }) => ({ value: s.value, context: s.context, status: s.status, tags: [...s.tags].sort() });

function agree(machine: AnyStateMachine, events: readonly EventObject[], sequence: number[]): void {
  const actor = createActor(machine).start();
  const cell = new MachineCell(machine);
  expect(view(cell.getSnapshot())).toEqual(view(actor.getSnapshot()));
  for (const i of sequence) {
    // A machine in a final state takes no more events (an actor warns of each): the walk ends there.
    if (actor.getSnapshot().status === 'done') break;
    const event = events[i % events.length]!;
    actor.send(event);
    cell.send(event as never);
    expect(view(cell.getSnapshot())).toEqual(view(actor.getSnapshot()));
  }
  actor.stop();
}

describe('MachineCell', () => {
  it('steps the TCP connection machine as an actor does', () => {
    const events = TCP_EVENT_TYPES.map((type) => ({ type }));
    fc.assert(fc.property(fc.array(fc.nat(), { maxLength: 40 }), (sequence) => agree(tcpConnectionMachine, events, sequence)), { numRuns: 300 });
  });

  it('steps the socket machine as an actor does, events with data included', () => {
    fc.assert(fc.property(fc.array(fc.nat(), { maxLength: 30 }), (sequence) => agree(socketMachine, SOCKET_EVENTS, sequence)), { numRuns: 300 });
  });

  it('starts at a resolved state, and shares snapshots between cells', () => {
    const a = new MachineCell(socketMachine, socketMachine.resolveState({ value: 'connected' }));
    const b = new MachineCell(socketMachine, socketMachine.resolveState({ value: 'connected' }));
    expect(a.getSnapshot().value).toBe('connected');
    a.send({ type: 'CLOSE' });
    b.send({ type: 'CLOSE' });
    expect(a.getSnapshot()).toBe(b.getSnapshot());
  });
});
