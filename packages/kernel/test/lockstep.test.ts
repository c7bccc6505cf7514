/**
 * Lockstep's parts on their own: when a domain's channel says it waits
 * (DomainRest), and when the conductor lets the clock move for the attaches
 * the host announced (Conductor). test/lockstep.test.ts runs whole scenarios.
 */
import { describe, expect, it } from 'vitest';
import { UNKNOWN_CALL_ID } from '@moat/abi';
import { Conductor, DomainRest, type LockstepMember } from '../src/index.js';

describe('DomainRest', () => {
  it('waits while the domain blocks on the frame it named, until that call is answered', () => {
    const rest = new DomainRest();
    rest.onMessage(0, 7); // message 1, async: not the one it blocks on
    expect(rest.waiting).toBe(false);
    rest.onMessage(2, 8); // message 2, the one SIGNAL_BLOCKING names
    expect(rest.waiting).toBe(true);
    rest.onReply(7); // the async call's answer: still blocked on 8
    expect(rest.waiting).toBe(true);
    rest.onReply(8);
    expect(rest.waiting).toBe(false);
    // A raw frame the kernel cannot read the id of is answered with the unknown id: that wakes it too.
    rest.onMessage(3, 123);
    rest.onReply(UNKNOWN_CALL_ID);
    expect(rest.waiting).toBe(false);
  });

  it('takes a rest notice only when its counts are the kernel’s own', () => {
    const rest = new DomainRest();
    rest.onMessage(0, 1);
    rest.onMessage(0, 2);
    rest.onReply(1);
    rest.noticed({ rest: { posted: 2, taken: 0 } }); // sent before the reply arrived: stale
    expect(rest.waiting).toBe(false);
    rest.noticed({ rest: { posted: 2, taken: 1 } });
    expect(rest.waiting).toBe(true);
    rest.onReply(2); // the domain runs again to take it
    expect(rest.waiting).toBe(false);
    rest.noticed({ rest: { posted: 2, taken: 2 } });
    rest.onMessage(0, 3); // and any message ends the rest
    expect(rest.waiting).toBe(false);
  });
});

/** A kernel with nothing but deadlines, which records the times it expired at. */
function idleMember(deadlines: number[], conductor: Conductor, expired: number[]): LockstepMember {
  return {
    pollIfDue: () => false,
    running: () => false,
    carryOutExits: () => undefined,
    serveRound: () => false,
    awaitedLeft: undefined,
    nextDeadline: () => deadlines[0] ?? Infinity,
    expire: () => {
      while (deadlines.length && deadlines[0]! <= conductor.now) deadlines.shift();
      expired.push(conductor.now);
    },
    hold: () => undefined,
    afterRound: () => undefined,
  };
}

describe('Conductor', () => {
  it('moves the clock deadline by deadline, but not past an attach that is due and has not come', () => {
    const conductor = new Conductor();
    const expired: number[] = [];
    conductor.join(idleMember([10, 20, 30], conductor, expired));
    conductor.expectAttach('late', { ms: 15 });
    conductor.advance();
    expect(conductor.now).toBe(15); // 10 expired, then the attach due at 15 holds the clock
    expect(expired).toEqual([10, 15]);
    const attached: number[] = [];
    conductor.whenAtRest('late', () => {
      attached.push(conductor.now);
      conductor.attached('late');
    });
    expect(attached).toEqual([15]);
    expect(conductor.now).toBe(30);
  });

  it("holds an attach gated on another domain's log line until the line is logged", () => {
    const conductor = new Conductor();
    const expired: number[] = [];
    conductor.join(idleMember([5, 50], conductor, expired));
    conductor.expectAttach('second', { after: { domain: 'first', log: '^ready' } });
    conductor.advance();
    expect(conductor.now).toBe(50); // not due yet: the clock is free
    conductor.logged('first', 'not yet');
    conductor.logged('first', 'ready: go');
    const deadlines = [60];
    conductor.join(idleMember(deadlines, conductor, expired));
    conductor.advance();
    expect(conductor.now).toBe(50); // due at 50: waits for the attach
    conductor.whenAtRest('second', () => conductor.attached('second'));
    expect(conductor.now).toBe(60);
    conductor.expectAttach('never', {});
    conductor.cancelAttach('never');
    conductor.advance();
  });
});
