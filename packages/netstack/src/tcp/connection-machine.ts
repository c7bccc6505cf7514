/**
 * The control states and transitions of a TCP connection, RFC 9293 section
 * 3.3.2 (figure 5) with its notes and the per-state rules of section 3.10, as
 * an XState machine: data that users can read, draw and test.
 *
 * It holds no sequence numbers, buffers or timers. The data path (plain
 * TypeScript) checks each segment and timer itself, decides which of the
 * events below happened, sends it, and then does what the transition's `meta`
 * says: the segments to emit, the 2*MSL timer to start, the error to report.
 * A segment that changes no control state (data, a pure ACK, a challenge ACK
 * under RFC 5961) never reaches the machine.
 *
 * An event a state does not name leaves the machine unchanged (XState's
 * default): that is how the RFC's "ignore", "drop" and "error: connection
 * closing" answers look here, e.g. RST in CLOSED or LISTEN (3.10.7.1-2), CLOSE
 * in FIN-WAIT-1 (3.10.4), ABORT in CLOSED (3.10.5).
 */
import type { ErrnoName } from '@moat/abi';
import { assign, setup } from 'xstate';

/** The eleven states of RFC 9293 section 3.2, hyphens written as underscores. */
export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN_SENT'
  | 'SYN_RECEIVED'
  | 'ESTABLISHED'
  | 'FIN_WAIT_1'
  | 'FIN_WAIT_2'
  | 'CLOSE_WAIT'
  | 'CLOSING'
  | 'LAST_ACK'
  | 'TIME_WAIT';

/**
 * What the data path tells the machine. RCV_* events are sent only for a
 * segment that passed the checks of RFC 9293 3.10.7 (sequence number, RFC 5961
 * RST/SYN checks, acceptable ACK); one segment may yield at most one event.
 */
export type TcpEvent =
  /** User passive OPEN, i.e. listen() (3.10.1). */
  | { type: 'OPEN_PASSIVE' }
  /** User active OPEN, i.e. connect() (3.10.1); in LISTEN also the figure's SEND to a foreign socket (3.10.2). */
  | { type: 'OPEN_ACTIVE' }
  /**
   * A SYN without ACK: a connection request in LISTEN (3.10.7.2), a
   * simultaneous open in SYN-SENT (3.10.7.3), an in-window SYN in SYN-RECEIVED
   * (3.10.7.4, fourth check).
   */
  | { type: 'RCV_SYN' }
  /** SYN-SENT: a SYN whose ACK acknowledges our SYN (3.10.7.3). */
  | { type: 'RCV_SYN_ACK' }
  /** SYN-RECEIVED: an acceptable ACK, SND.UNA < SEG.ACK =< SND.NXT (3.10.7.4, fifth check). */
  | { type: 'RCV_ACK_OF_SYN' }
  /** A FIN in sequence (3.10.7.4, eighth check) that does not acknowledge a FIN of ours. */
  | { type: 'RCV_FIN' }
  /** An ACK that covers our FIN (3.10.7.4, fifth check). */
  | { type: 'RCV_ACK_OF_FIN' }
  /** FIN-WAIT-1: a FIN whose ACK also covers our FIN (figure 5, note 2). */
  | { type: 'RCV_FIN_ACK_OF_FIN' }
  /** An acceptable RST (3.10.7.3 with an acceptable ACK; 3.10.7.4 second check, RFC 5961 exact match). */
  | { type: 'RCV_RST' }
  /** User CLOSE: "I have no more to send", i.e. close() or shutdown(SHUT_WR) (3.10.4). */
  | { type: 'CLOSE' }
  /** User ABORT, e.g. close() with SO_LINGER 0 or unread data, or the death of the owning domain (3.10.5). */
  | { type: 'ABORT' }
  /** The TIME-WAIT timer expired (3.10.8). */
  | { type: 'TIMEOUT_2MSL' }
  /** The user timeout expired (3.10.8), retransmission passed R2 (3.8.3), or keepalive got no answer. */
  | { type: 'GIVE_UP' };

export type TcpEventType = TcpEvent['type'];

export const TCP_STATES: readonly TcpState[] = [
  'CLOSED',
  'LISTEN',
  'SYN_SENT',
  'SYN_RECEIVED',
  'ESTABLISHED',
  'FIN_WAIT_1',
  'FIN_WAIT_2',
  'CLOSE_WAIT',
  'CLOSING',
  'LAST_ACK',
  'TIME_WAIT',
];

export const TCP_EVENT_TYPES: readonly TcpEventType[] = [
  'OPEN_PASSIVE',
  'OPEN_ACTIVE',
  'RCV_SYN',
  'RCV_SYN_ACK',
  'RCV_ACK_OF_SYN',
  'RCV_FIN',
  'RCV_ACK_OF_FIN',
  'RCV_FIN_ACK_OF_FIN',
  'RCV_RST',
  'CLOSE',
  'ABORT',
  'TIMEOUT_2MSL',
  'GIVE_UP',
];

/**
 * State tags:
 * - `synchronized`: the synchronized states of 3.5.2 (RST generation, RFC 5961 checks apply);
 * - `canSend`: new data may be segmentized and sent (3.10.2);
 * - `canReceive`: segment text is accepted into the receive buffer (3.10.7.4, seventh check).
 */
export type TcpTag = 'synchronized' | 'canSend' | 'canReceive';

/** What the data path does on a transition, besides moving its TCB to the new state. */
export type TcpEmit = 'SYN' | 'SYN_ACK' | 'ACK' | 'FIN' | 'RST' | 'START_2MSL_TIMER';

/** The error the user sees when a transition ends the connection (Linux's errno for the RFC's signal). */
export type TcpError = Extract<ErrnoName, 'ECONNREFUSED' | 'ECONNRESET' | 'EPIPE' | 'ETIMEDOUT'>;

export interface TcpTransitionMeta {
  emit: readonly TcpEmit[];
  error?: TcpError;
}

export interface TcpContext {
  /** True only in SYN-RECEIVED reached from LISTEN: there, RST returns to LISTEN (figure 5, note 1). */
  passiveOpen: boolean;
}

const none: TcpTransitionMeta = { emit: [] };

export const tcpConnectionMachine = setup({
  types: {
    context: {} as TcpContext,
    events: {} as TcpEvent,
    tags: {} as TcpTag,
    transitionMeta: {} as TcpTransitionMeta,
  },
  actions: {
    rememberPassiveOpen: assign({ passiveOpen: true }),
    forgetPassiveOpen: assign({ passiveOpen: false }),
  },
  guards: {
    passiveOpen: ({ context }) => context.passiveOpen,
  },
}).createMachine({
  id: 'tcp',
  initial: 'CLOSED',
  context: { passiveOpen: false },
  states: {
    CLOSED: {
      description: 'No connection (no TCB). RST is discarded (3.10.7.1); CLOSE and ABORT are errors (3.10.4-5).',
      on: {
        OPEN_PASSIVE: { target: 'LISTEN', meta: none },
        OPEN_ACTIVE: { target: 'SYN_SENT', meta: { emit: ['SYN'] } },
      },
    },
    LISTEN: {
      description: 'Waiting for a connection request. RST is ignored (3.10.7.2).',
      on: {
        RCV_SYN: { target: 'SYN_RECEIVED', actions: 'rememberPassiveOpen', meta: { emit: ['SYN_ACK'] } },
        OPEN_ACTIVE: { target: 'SYN_SENT', meta: { emit: ['SYN'] } },
        CLOSE: { target: 'CLOSED', meta: none },
        ABORT: { target: 'CLOSED', meta: none },
      },
    },
    SYN_SENT: {
      description: 'Our SYN is out; waiting for the SYN of the peer.',
      on: {
        RCV_SYN_ACK: { target: 'ESTABLISHED', meta: { emit: ['ACK'] } },
        // Simultaneous open (3.10.7.3, fourth check).
        RCV_SYN: { target: 'SYN_RECEIVED', meta: { emit: ['SYN_ACK'] } },
        // The RFC signals "connection reset"; Linux reports ECONNREFUSED.
        RCV_RST: { target: 'CLOSED', meta: { emit: [], error: 'ECONNREFUSED' } },
        CLOSE: { target: 'CLOSED', meta: none },
        ABORT: { target: 'CLOSED', meta: none },
        GIVE_UP: { target: 'CLOSED', meta: { emit: [], error: 'ETIMEDOUT' } },
      },
    },
    SYN_RECEIVED: {
      description: 'SYNs crossed; waiting for the ACK of our SYN.',
      exit: 'forgetPassiveOpen',
      on: {
        RCV_ACK_OF_SYN: { target: 'ESTABLISHED', meta: none },
        // An in-window SYN after a passive OPEN returns to LISTEN (3.10.7.4, fourth
        // check); after an active OPEN it gets a challenge ACK (RFC 5961), no transition.
        RCV_SYN: { guard: 'passiveOpen', target: 'LISTEN', meta: none },
        RCV_RST: [
          { guard: 'passiveOpen', target: 'LISTEN', meta: none }, // note 1: the user need not be informed
          { target: 'CLOSED', meta: { emit: [], error: 'ECONNREFUSED' } },
        ],
        CLOSE: { target: 'FIN_WAIT_1', meta: { emit: ['FIN'] } },
        ABORT: { target: 'CLOSED', meta: { emit: ['RST'] } },
        GIVE_UP: { target: 'CLOSED', meta: { emit: [], error: 'ETIMEDOUT' } },
      },
    },
    ESTABLISHED: {
      description: 'Open: data flows both ways.',
      tags: ['synchronized', 'canSend', 'canReceive'],
      on: {
        CLOSE: { target: 'FIN_WAIT_1', meta: { emit: ['FIN'] } },
        RCV_FIN: { target: 'CLOSE_WAIT', meta: { emit: ['ACK'] } },
        RCV_RST: { target: 'CLOSED', meta: { emit: [], error: 'ECONNRESET' } },
        ABORT: { target: 'CLOSED', meta: { emit: ['RST'] } },
        GIVE_UP: { target: 'CLOSED', meta: { emit: [], error: 'ETIMEDOUT' } },
      },
    },
    FIN_WAIT_1: {
      description: 'We closed; our FIN is not yet acknowledged. We still receive.',
      tags: ['synchronized', 'canReceive'],
      on: {
        RCV_ACK_OF_FIN: { target: 'FIN_WAIT_2', meta: none },
        // Simultaneous close.
        RCV_FIN: { target: 'CLOSING', meta: { emit: ['ACK'] } },
        // Figure 5, note 2; 3.10.7.4 eighth check.
        RCV_FIN_ACK_OF_FIN: { target: 'TIME_WAIT', meta: { emit: ['ACK', 'START_2MSL_TIMER'] } },
        RCV_RST: { target: 'CLOSED', meta: { emit: [], error: 'ECONNRESET' } },
        ABORT: { target: 'CLOSED', meta: { emit: ['RST'] } },
        GIVE_UP: { target: 'CLOSED', meta: { emit: [], error: 'ETIMEDOUT' } },
      },
    },
    FIN_WAIT_2: {
      description: 'Our FIN is acknowledged; waiting for the FIN of the peer. We still receive.',
      tags: ['synchronized', 'canReceive'],
      on: {
        RCV_FIN: { target: 'TIME_WAIT', meta: { emit: ['ACK', 'START_2MSL_TIMER'] } },
        RCV_RST: { target: 'CLOSED', meta: { emit: [], error: 'ECONNRESET' } },
        ABORT: { target: 'CLOSED', meta: { emit: ['RST'] } },
        GIVE_UP: { target: 'CLOSED', meta: { emit: [], error: 'ETIMEDOUT' } },
      },
    },
    CLOSE_WAIT: {
      description: 'The peer closed; we may still send until the user closes.',
      tags: ['synchronized', 'canSend'],
      on: {
        CLOSE: { target: 'LAST_ACK', meta: { emit: ['FIN'] } },
        // Linux reports EPIPE here (tcp_reset): reading already returns end of file.
        RCV_RST: { target: 'CLOSED', meta: { emit: [], error: 'EPIPE' } },
        ABORT: { target: 'CLOSED', meta: { emit: ['RST'] } },
        GIVE_UP: { target: 'CLOSED', meta: { emit: [], error: 'ETIMEDOUT' } },
      },
    },
    CLOSING: {
      description: 'Both closed at once; waiting for the ACK of our FIN.',
      tags: ['synchronized'],
      on: {
        RCV_ACK_OF_FIN: { target: 'TIME_WAIT', meta: { emit: ['START_2MSL_TIMER'] } },
        RCV_RST: { target: 'CLOSED', meta: none },
        ABORT: { target: 'CLOSED', meta: none },
        GIVE_UP: { target: 'CLOSED', meta: { emit: [], error: 'ETIMEDOUT' } },
      },
    },
    LAST_ACK: {
      description: 'The peer closed first, then we did; waiting for the ACK of our FIN.',
      tags: ['synchronized'],
      on: {
        RCV_ACK_OF_FIN: { target: 'CLOSED', meta: none },
        RCV_RST: { target: 'CLOSED', meta: none },
        ABORT: { target: 'CLOSED', meta: none },
        GIVE_UP: { target: 'CLOSED', meta: { emit: [], error: 'ETIMEDOUT' } },
      },
    },
    TIME_WAIT: {
      description:
        'Waiting 2*MSL so old segments die out. A retransmitted FIN is ACKed and restarts the timer, with no transition (3.10.7.4).',
      tags: ['synchronized'],
      on: {
        TIMEOUT_2MSL: { target: 'CLOSED', meta: none },
        // As RFC 9293 3.10.7.4 says; RFC 1337 would rather ignore it.
        RCV_RST: { target: 'CLOSED', meta: none },
        ABORT: { target: 'CLOSED', meta: none },
      },
    },
  },
});

/** One transition of the machine: where from, on what, where to, and what the data path does. */
export type TcpTransition = readonly [from: TcpState, event: TcpEventType, to: TcpState, meta: TcpTransitionMeta];

/**
 * Every transition of `tcpConnectionMachine`, read from its definition, in
 * document order. A guarded event gives one row per target.
 */
export function tcpTransitionTable(): TcpTransition[] {
  const rows: TcpTransition[] = [];
  for (const node of Object.values(tcpConnectionMachine.root.states)) {
    for (const [event, candidates] of node.transitions) {
      for (const t of candidates) {
        const to = t.target?.[0]?.key ?? node.key;
        rows.push([node.key as TcpState, event as TcpEventType, to as TcpState, t.meta ?? none]);
      }
    }
  }
  return rows;
}
