/**
 * The TCP connection machine against RFC 9293, and the socket machine against
 * the BSD API as Linux gives it: transcribed tables checked row by row with the
 * pure `transition`, then model-based paths from @xstate/graph driven through
 * an actor, with the transition coverage they reach.
 */
import { describe, expect, it } from 'vitest';
import { createActor, transition, type AnyStateMachine, type EventObject, type SnapshotFrom } from 'xstate';
import { createTestModel, getSimplePaths, type StatePath } from '@xstate/graph';
import {
  TCP_EVENT_TYPES,
  TCP_STATES,
  tcpConnectionMachine,
  tcpTransitionTable,
  type TcpEmit,
  type TcpError,
  type TcpEventType,
  type TcpState,
  type TcpTag,
} from '../src/tcp/connection-machine.js';
import {
  socketCallAnswer,
  socketMachine,
  type SocketCall,
  type SocketCallAnswer,
  type SocketEvent,
  type SocketEventType,
  type SocketState,
} from '../src/tcp/socket-machine.js';

type Triple = readonly [from: string, event: string, to: string];
const key = ([from, event, to]: Triple): string => `${from} --${event}--> ${to}`;

/** Every [from, event, to] a flat machine defines, read from its state nodes. */
function transitionsOf(machine: AnyStateMachine): Triple[] {
  return Object.values(machine.root.states).flatMap((node) =>
    [...node.transitions].flatMap(([event, candidates]) =>
      candidates.map((t): Triple => [node.key, event, t.target?.[0]?.key ?? node.key]),
    ),
  );
}

/**
 * Drives an actor of `machine` down a generated path (path.test executes each
 * step's event, then checks the state) and returns the transitions it took.
 */
async function drive(machine: AnyStateMachine, path: { test: (p: never) => Promise<unknown> }): Promise<Triple[]> {
  const actor = createActor(machine).start();
  const taken: Triple[] = [];
  const exec = ({ event }: { event: EventObject }): void => {
    const from = String(actor.getSnapshot().value);
    actor.send(event);
    taken.push([from, event.type, String(actor.getSnapshot().value)]);
  };
  const events = Object.fromEntries(machine.events.map((type) => [type, exec]));
  const states = { '*': (expected: SnapshotFrom<AnyStateMachine>) => expect(actor.getSnapshot().value).toEqual(expected.value) };
  await path.test({ events, states } as never);
  actor.stop();
  return taken;
}

function coverage(defined: Triple[], taken: Triple[]): { covered: number; total: number; missing: string[] } {
  const seen = new Set(taken.map(key));
  const missing = defined.map(key).filter((k) => !seen.has(k));
  return { covered: defined.length - missing.length, total: defined.length, missing };
}

describe('tcpConnectionMachine (RFC 9293)', () => {
  /** SYN-RECEIVED depends on how it was reached (figure 5, note 1); a bare 'SYN_RECEIVED' row holds for both. */
  type From = TcpState | 'SYN_RECEIVED/passive' | 'SYN_RECEIVED/active';

  function snapshotsAt(from: From) {
    const [value, how] = from.split('/') as [TcpState, string | undefined];
    const passive = how ? [how === 'passive'] : value === 'SYN_RECEIVED' ? [true, false] : [false];
    return passive.map((passiveOpen) => tcpConnectionMachine.resolveState({ value, context: { passiveOpen } }));
  }

  const table = tcpTransitionTable();
  const metaOf = (from: TcpState, event: TcpEventType, to: TcpState) =>
    table.find(([f, e, t]) => f === from && e === event && t === to)?.[3];
  const segments = (emit: readonly TcpEmit[]) => emit.filter((e) => e !== 'START_2MSL_TIMER');

  function expectRow(from: From, event: TcpEventType, to: TcpState): void {
    for (const snapshot of snapshotsAt(from)) {
      const [next] = transition(tcpConnectionMachine, snapshot, { type: event });
      expect(next.value, `${from} --${event}-->`).toBe(to);
    }
  }

  // Figure 5 (3.3.2), arrow by arrow, with the segments it sends ("snd ...").
  const FIGURE_5: ReadonlyArray<readonly [From, TcpEventType, TcpState, TcpEmit[]]> = [
    ['CLOSED', 'OPEN_PASSIVE', 'LISTEN', []], // passive OPEN / create TCB
    ['CLOSED', 'OPEN_ACTIVE', 'SYN_SENT', ['SYN']], // active OPEN / create TCB, snd SYN
    ['LISTEN', 'CLOSE', 'CLOSED', []], // CLOSE / delete TCB
    ['LISTEN', 'RCV_SYN', 'SYN_RECEIVED', ['SYN_ACK']], // rcv SYN / snd SYN,ACK
    ['LISTEN', 'OPEN_ACTIVE', 'SYN_SENT', ['SYN']], // SEND / snd SYN
    ['SYN_SENT', 'CLOSE', 'CLOSED', []], // CLOSE / delete TCB
    ['SYN_SENT', 'RCV_SYN', 'SYN_RECEIVED', ['SYN_ACK']], // rcv SYN / snd SYN,ACK (simultaneous open)
    ['SYN_SENT', 'RCV_SYN_ACK', 'ESTABLISHED', ['ACK']], // rcv SYN,ACK / snd ACK
    ['SYN_RECEIVED/passive', 'RCV_RST', 'LISTEN', []], // rcv RST (note 1)
    ['SYN_RECEIVED', 'RCV_ACK_OF_SYN', 'ESTABLISHED', []], // rcv ACK of SYN / x
    ['SYN_RECEIVED', 'CLOSE', 'FIN_WAIT_1', ['FIN']], // CLOSE / snd FIN
    ['ESTABLISHED', 'CLOSE', 'FIN_WAIT_1', ['FIN']], // CLOSE / snd FIN
    ['ESTABLISHED', 'RCV_FIN', 'CLOSE_WAIT', ['ACK']], // rcv FIN / snd ACK
    ['FIN_WAIT_1', 'RCV_ACK_OF_FIN', 'FIN_WAIT_2', []], // rcv ACK of FIN / x
    ['FIN_WAIT_1', 'RCV_FIN', 'CLOSING', ['ACK']], // rcv FIN / snd ACK (simultaneous close)
    ['FIN_WAIT_1', 'RCV_FIN_ACK_OF_FIN', 'TIME_WAIT', ['ACK']], // note 2
    ['FIN_WAIT_2', 'RCV_FIN', 'TIME_WAIT', ['ACK']], // rcv FIN / snd ACK
    ['CLOSE_WAIT', 'CLOSE', 'LAST_ACK', ['FIN']], // CLOSE / snd FIN
    ['CLOSING', 'RCV_ACK_OF_FIN', 'TIME_WAIT', []], // rcv ACK of FIN / x
    ['LAST_ACK', 'RCV_ACK_OF_FIN', 'CLOSED', []], // rcv ACK of FIN / x
    ['TIME_WAIT', 'TIMEOUT_2MSL', 'CLOSED', []], // Timeout=2MSL / delete TCB
  ];

  // RST arriving, 3.10.7.1-4 (note 3: "receipt of a RST from any state results in a transition to LISTEN or CLOSED").
  const RST_RULES: ReadonlyArray<readonly [From, 'RCV_RST', TcpState, TcpError | undefined]> = [
    ['CLOSED', 'RCV_RST', 'CLOSED', undefined], // 3.10.7.1: discarded
    ['LISTEN', 'RCV_RST', 'LISTEN', undefined], // 3.10.7.2: ignored
    ['SYN_SENT', 'RCV_RST', 'CLOSED', 'ECONNREFUSED'], // 3.10.7.3 (Linux: ECONNREFUSED)
    ['SYN_RECEIVED/passive', 'RCV_RST', 'LISTEN', undefined], // 3.10.7.4: user need not be informed
    ['SYN_RECEIVED/active', 'RCV_RST', 'CLOSED', 'ECONNREFUSED'], // 3.10.7.4: "connection refused"
    ['ESTABLISHED', 'RCV_RST', 'CLOSED', 'ECONNRESET'], // 3.10.7.4: "connection reset"
    ['FIN_WAIT_1', 'RCV_RST', 'CLOSED', 'ECONNRESET'],
    ['FIN_WAIT_2', 'RCV_RST', 'CLOSED', 'ECONNRESET'],
    ['CLOSE_WAIT', 'RCV_RST', 'CLOSED', 'EPIPE'], // Linux tcp_reset
    ['CLOSING', 'RCV_RST', 'CLOSED', undefined], // 3.10.7.4: enter CLOSED, delete TCB
    ['LAST_ACK', 'RCV_RST', 'CLOSED', undefined],
    ['TIME_WAIT', 'RCV_RST', 'CLOSED', undefined],
  ];

  // User ABORT, 3.10.5: which states send a RST.
  const ABORT_RULES: ReadonlyArray<readonly [From, 'ABORT', TcpState, boolean]> = [
    ['CLOSED', 'ABORT', 'CLOSED', false], // error: connection does not exist
    ['LISTEN', 'ABORT', 'CLOSED', false],
    ['SYN_SENT', 'ABORT', 'CLOSED', false],
    ['SYN_RECEIVED', 'ABORT', 'CLOSED', true],
    ['ESTABLISHED', 'ABORT', 'CLOSED', true],
    ['FIN_WAIT_1', 'ABORT', 'CLOSED', true],
    ['FIN_WAIT_2', 'ABORT', 'CLOSED', true],
    ['CLOSE_WAIT', 'ABORT', 'CLOSED', true],
    ['CLOSING', 'ABORT', 'CLOSED', false], // respond "ok", delete TCB
    ['LAST_ACK', 'ABORT', 'CLOSED', false],
    ['TIME_WAIT', 'ABORT', 'CLOSED', false],
  ];

  // The other rules of 3.10 that change (or keep) a state.
  const OTHER_RULES: ReadonlyArray<readonly [From, TcpEventType, TcpState]> = [
    // CLOSE, 3.10.4: errors where the figure has no arrow.
    ['CLOSED', 'CLOSE', 'CLOSED'], // error: connection does not exist
    ['FIN_WAIT_1', 'CLOSE', 'FIN_WAIT_1'], // error: connection closing
    ['FIN_WAIT_2', 'CLOSE', 'FIN_WAIT_2'],
    ['CLOSING', 'CLOSE', 'CLOSING'],
    ['LAST_ACK', 'CLOSE', 'LAST_ACK'],
    ['TIME_WAIT', 'CLOSE', 'TIME_WAIT'],
    // OPEN, 3.10.1: error: connection already exists.
    ['ESTABLISHED', 'OPEN_ACTIVE', 'ESTABLISHED'],
    ['LISTEN', 'OPEN_PASSIVE', 'LISTEN'],
    // SYN in SYN-RECEIVED, 3.10.7.4 fourth check; a synchronized state answers a challenge ACK (RFC 5961).
    ['SYN_RECEIVED/passive', 'RCV_SYN', 'LISTEN'],
    ['SYN_RECEIVED/active', 'RCV_SYN', 'SYN_RECEIVED'],
    ['ESTABLISHED', 'RCV_SYN', 'ESTABLISHED'],
    ['TIME_WAIT', 'RCV_SYN', 'TIME_WAIT'],
    // A retransmitted FIN is ACKed where it arrives, with no transition (3.10.7.4 eighth check).
    ['CLOSE_WAIT', 'RCV_FIN', 'CLOSE_WAIT'],
    ['CLOSING', 'RCV_FIN', 'CLOSING'],
    ['LAST_ACK', 'RCV_FIN', 'LAST_ACK'],
    ['TIME_WAIT', 'RCV_FIN', 'TIME_WAIT'],
    // User timeout (3.10.8) and retransmission give-up (3.8.3) end every connection that has something outstanding.
    ['SYN_SENT', 'GIVE_UP', 'CLOSED'],
    ['SYN_RECEIVED', 'GIVE_UP', 'CLOSED'],
    ['ESTABLISHED', 'GIVE_UP', 'CLOSED'],
    ['FIN_WAIT_1', 'GIVE_UP', 'CLOSED'],
    ['FIN_WAIT_2', 'GIVE_UP', 'CLOSED'],
    ['CLOSE_WAIT', 'GIVE_UP', 'CLOSED'],
    ['CLOSING', 'GIVE_UP', 'CLOSED'],
    ['LAST_ACK', 'GIVE_UP', 'CLOSED'],
    ['LISTEN', 'GIVE_UP', 'LISTEN'], // nothing outstanding
    ['TIME_WAIT', 'GIVE_UP', 'TIME_WAIT'], // its timer is TIMEOUT_2MSL
  ];

  it('has the eleven states of RFC 9293 3.2', () => {
    expect(Object.keys(tcpConnectionMachine.states)).toEqual(TCP_STATES);
    expect(new Set(tcpConnectionMachine.events)).toEqual(new Set(TCP_EVENT_TYPES));
  });

  it.each(FIGURE_5)('figure 5: %s --%s--> %s', (from, event, to, sent) => {
    expectRow(from, event, to);
    const state = from.split('/')[0] as TcpState;
    expect(segments(metaOf(state, event, to)?.emit ?? ['missing' as TcpEmit])).toEqual(sent);
  });

  it.each(RST_RULES)('3.10.7 RST: %s --%s--> %s', (from, event, to, error) => {
    expectRow(from, event, to);
    const state = from.split('/')[0] as TcpState;
    if (state !== to) expect(metaOf(state, event, to)?.error).toBe(error);
  });

  it.each(ABORT_RULES)('3.10.5 ABORT: %s --%s--> %s', (from, event, to, sendsRst) => {
    expectRow(from, event, to);
    if (from !== to) expect(metaOf(from as TcpState, event, to)?.emit).toEqual(sendsRst ? ['RST'] : []);
  });

  it.each(OTHER_RULES)('3.10: %s --%s--> %s', (from, event, to) => expectRow(from, event, to));

  it('defines no transition that the RFC tables above lack', () => {
    const transcribed = new Set(
      [...FIGURE_5, ...RST_RULES, ...ABORT_RULES, ...OTHER_RULES].map(([from, event, to]) =>
        key([from.split('/')[0], event, to]),
      ),
    );
    expect(table.map(([from, event, to]) => key([from, event, to])).filter((k) => !transcribed.has(k))).toEqual([]);
  });

  it('starts the 2*MSL timer exactly on entering TIME-WAIT, and only errors end in CLOSED', () => {
    for (const [from, event, to, meta] of table) {
      expect(meta.emit.includes('START_2MSL_TIMER'), `${from} --${event}--> ${to}`).toBe(to === 'TIME_WAIT');
      if (meta.error) expect(to).toBe('CLOSED');
    }
  });

  it('tags synchronized (3.5.2), sending and receiving states', () => {
    const tagged = (tag: TcpTag) => TCP_STATES.filter((s) => snapshotsAt(s)[0].hasTag(tag));
    expect(tagged('synchronized')).toEqual([
      'ESTABLISHED',
      'FIN_WAIT_1',
      'FIN_WAIT_2',
      'CLOSE_WAIT',
      'CLOSING',
      'LAST_ACK',
      'TIME_WAIT',
    ]);
    expect(tagged('canSend')).toEqual(['ESTABLISHED', 'CLOSE_WAIT']);
    expect(tagged('canReceive')).toEqual(['ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2']);
  });

  it('leaves the state unchanged on an event the state does not name', () => {
    let checked = 0;
    for (const state of TCP_STATES) {
      const named = new Set(table.filter(([from]) => from === state).map(([, event]) => event));
      for (const snapshot of snapshotsAt(state)) {
        for (const type of TCP_EVENT_TYPES.filter((t) => !named.has(t))) {
          expect(snapshot.can({ type })).toBe(false);
          const [next] = transition(tcpConnectionMachine, snapshot, { type });
          expect([next.value, next.context]).toEqual([snapshot.value, snapshot.context]);
          checked++;
        }
      }
    }
    // 11 states x 13 events, less the 48 pairs the machine names, plus SYN-RECEIVED's 7 again (its other variant).
    expect(checked).toBe(11 * 13 - 48 + 7);
  });

  it('lists each transition once in tcpTransitionTable', () => {
    const keys = table.map(([from, event, to]) => key([from, event, to]));
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toEqual(transitionsOf(tcpConnectionMachine).map(key));
  });

  describe('model-based: shortest paths driven through an actor', () => {
    const paths = createTestModel(tcpConnectionMachine).getShortestPaths();

    it.each(paths.map((p) => [p.description, p] as const))('%s', async (_, path) => {
      const taken = await drive(tcpConnectionMachine, path);
      expect(taken.length).toBe(path.steps.length - 1);
    });

    it('covers every transition of the machine', async () => {
      const taken = (await Promise.all(paths.map((p) => drive(tcpConnectionMachine, p)))).flat();
      const { covered, total, missing } = coverage(transitionsOf(tcpConnectionMachine), taken);
      console.log(`TCP transition coverage: ${covered}/${total} (${((100 * covered) / total).toFixed(1)}%) over ${paths.length} paths`);
      expect(missing).toEqual([]);
      expect(covered).toBe(total);
    });
  });

  describe('model-based: simple paths', () => {
    const simple = getSimplePaths(tcpConnectionMachine);
    const events = (p: StatePath<SnapshotFrom<typeof tcpConnectionMachine>, EventObject>) => p.steps.map((s) => s.event.type);

    it('reaches every state', () => {
      expect(new Set(simple.map((p) => p.state.value))).toEqual(new Set(TCP_STATES));
    });

    it('reaches TIME-WAIT only on the side that closed first or at the same time', () => {
      const toTimeWait = simple.filter((p) => p.state.value === 'TIME_WAIT');
      expect(toTimeWait.length).toBeGreaterThan(0);
      for (const p of toTimeWait) expect(events(p)).toContain('CLOSE');
    });

    it('reaches ESTABLISHED only through a SYN exchange', () => {
      for (const p of simple.filter((p) => p.state.value === 'ESTABLISHED')) {
        expect(events(p).some((e) => e === 'RCV_SYN_ACK' || e === 'RCV_ACK_OF_SYN')).toBe(true);
      }
    });
  });
});

describe('socketMachine (BSD sockets as Linux answers them)', () => {
  const STATES: SocketState[] = [
    'created',
    'bound',
    'listening',
    'connecting',
    'connected',
    'readShut',
    'writeShut',
    'bothShut',
    'closed',
  ];
  const at = (value: SocketState) => socketMachine.resolveState({ value });
  const reset: SocketEvent = { type: 'CONNECTION_FAILED', error: 'ECONNRESET' };
  const eventOf = (type: SocketEventType): SocketEvent => (type === 'CONNECTION_FAILED' ? reset : { type });

  const TRANSITIONS: ReadonlyArray<readonly [SocketState, SocketEventType, SocketState]> = [
    ['created', 'BIND', 'bound'],
    ['created', 'LISTEN', 'listening'], // bound to an ephemeral port first
    ['created', 'CONNECT', 'connecting'],
    ['created', 'CLOSE', 'closed'],
    ['bound', 'LISTEN', 'listening'],
    ['bound', 'CONNECT', 'connecting'],
    ['bound', 'CLOSE', 'closed'],
    ['listening', 'SHUT_RD', 'bound'], // Linux stops listening
    ['listening', 'SHUT_RDWR', 'bound'],
    ['listening', 'CLOSE', 'closed'],
    ['connecting', 'CONNECTED', 'connected'],
    ['connecting', 'CONNECTION_FAILED', 'bound'], // ECONNREFUSED, ETIMEDOUT
    ['connecting', 'SHUT_RD', 'bound'], // Linux abandons the attempt
    ['connecting', 'SHUT_WR', 'bound'],
    ['connecting', 'SHUT_RDWR', 'bound'],
    ['connecting', 'CLOSE', 'closed'],
    ['connected', 'SHUT_RD', 'readShut'],
    ['connected', 'PEER_CLOSED', 'readShut'],
    ['connected', 'SHUT_WR', 'writeShut'],
    ['connected', 'SHUT_RDWR', 'bothShut'],
    ['connected', 'CONNECTION_FAILED', 'bothShut'], // ECONNRESET, ETIMEDOUT
    ['connected', 'CLOSE', 'closed'],
    ['readShut', 'SHUT_WR', 'bothShut'],
    ['readShut', 'SHUT_RDWR', 'bothShut'],
    ['readShut', 'CONNECTION_FAILED', 'bothShut'],
    ['readShut', 'CLOSE', 'closed'],
    ['writeShut', 'SHUT_RD', 'bothShut'],
    ['writeShut', 'PEER_CLOSED', 'bothShut'],
    ['writeShut', 'SHUT_RDWR', 'bothShut'],
    ['writeShut', 'CONNECTION_FAILED', 'bothShut'],
    ['writeShut', 'CLOSE', 'closed'],
    ['bothShut', 'CLOSE', 'closed'],
  ];

  const CALLS: ReadonlyArray<readonly [SocketState, SocketCall, SocketCallAnswer]> = [
    ['created', 'accept', 'EINVAL'],
    ['created', 'send', 'EPIPE'],
    ['created', 'recv', 'ENOTCONN'],
    ['created', 'shutdown', 'ENOTCONN'],
    ['bound', 'bind', 'EINVAL'],
    ['bound', 'listen', 'ok'],
    ['listening', 'bind', 'EINVAL'],
    ['listening', 'connect', 'EISCONN'],
    ['listening', 'accept', 'ok'],
    ['listening', 'recv', 'ENOTCONN'],
    ['connecting', 'connect', 'EALREADY'],
    ['connecting', 'listen', 'EINVAL'],
    ['connected', 'connect', 'EISCONN'],
    ['connected', 'bind', 'EINVAL'],
    ['connected', 'listen', 'EINVAL'],
    ['connected', 'accept', 'EINVAL'],
    ['connected', 'send', 'ok'],
    ['readShut', 'recv', 'ok'],
    ['readShut', 'send', 'ok'],
    ['writeShut', 'send', 'EPIPE'],
    ['writeShut', 'recv', 'ok'],
    ['bothShut', 'send', 'EPIPE'],
    ['bothShut', 'connect', 'EISCONN'],
    ['closed', 'close', 'EBADF'],
  ];

  /** The user call behind an event, if any. */
  const CALL_OF: Partial<Record<SocketEventType, SocketCall>> = {
    BIND: 'bind',
    LISTEN: 'listen',
    CONNECT: 'connect',
    SHUT_RD: 'shutdown',
    SHUT_WR: 'shutdown',
    SHUT_RDWR: 'shutdown',
    CLOSE: 'close',
  };

  it.each(TRANSITIONS)('%s --%s--> %s', (from, event, to) => {
    expect(transition(socketMachine, at(from), eventOf(event))[0].value).toBe(to);
  });

  it('defines exactly the transitions above', () => {
    expect(new Set(transitionsOf(socketMachine).map(key))).toEqual(new Set(TRANSITIONS.map(key)));
  });

  it.each(CALLS)('%s: %s answers %s', (state, call, answer) => expect(socketCallAnswer(state, call)).toBe(answer));

  it('allows in meta every call that makes a transition', () => {
    for (const [from, event] of TRANSITIONS) {
      const call = CALL_OF[event];
      if (call) expect(socketCallAnswer(from, call), `${call} in ${from}`).toBe('ok');
    }
  });

  it('leaves the state unchanged on an event the state does not name', () => {
    const types = socketMachine.events as SocketEventType[];
    for (const state of STATES) {
      const named = new Set(TRANSITIONS.filter(([from]) => from === state).map(([, event]) => event));
      for (const type of types.filter((t) => !named.has(t))) {
        expect(transition(socketMachine, at(state), eventOf(type))[0].value, `${type} in ${state}`).toBe(state);
      }
    }
  });

  describe('model-based', () => {
    const model = createTestModel(socketMachine, { events: [reset] });
    const shortest = model.getShortestPaths();
    const simple = model.getSimplePaths();

    it.each(shortest.map((p) => [p.description, p] as const))('%s', async (_, path) => {
      await drive(socketMachine, path);
    });

    it('covers every transition with shortest paths, and simple paths all pass', async () => {
      const taken = (await Promise.all(shortest.map((p) => drive(socketMachine, p)))).flat();
      const { covered, total, missing } = coverage(transitionsOf(socketMachine), taken);
      console.log(`socket transition coverage: ${covered}/${total} over ${shortest.length} shortest paths`);
      expect(missing).toEqual([]);
      for (const path of simple) await drive(socketMachine, path);
      expect(simple.length).toBeGreaterThan(shortest.length);
    });
  });
});
