import { describe, expect, it } from 'vitest';
import { TurnQueue } from '../src/index.js';

describe('TurnQueue', () => {
  it('hands out what was pushed a turn at a time, in order; pushes during a turn wait for the next', () => {
    const q = new TurnQueue<string>();
    q.push('a');
    q.push('b');
    expect(q.length).toBe(2);
    const n = q.take();
    const turn = q.turn;
    q.push('c'); // during the turn
    expect([n, turn.slice(0, n), q.length]).toEqual([2, ['a', 'b'], 1]);
    const m = q.take();
    expect(q.turn.slice(0, m)).toEqual(['c']);
    expect([q.take(), q.length]).toEqual([0, 0]);
  });

  it('lets go of a turn’s items when the turn after is taken, and reuses its two arrays', () => {
    const q = new TurnQueue<object>();
    const item = {};
    q.push(item);
    q.take();
    const first = q.turn;
    q.take();
    q.take();
    expect(first[0]).toBeUndefined();
    expect(q.turn).toBe(first);
  });
});
