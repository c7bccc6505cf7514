import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PendingCalls } from '../src/pending-calls.js';

describe('PendingCalls', () => {
  it('takes each call once, by its id, whichever way it is held', () => {
    const p = new PendingCalls<{ n: number }>();
    p.add(1, { n: 1 });
    p.add(2, { n: 2 });
    expect(p.size).toBe(2);
    expect(p.has(1) && p.has(2) && !p.has(3)).toBe(true);
    expect(p.take(1)).toEqual({ n: 1 });
    expect(p.take(1)).toBeUndefined();
    p.add(257, { n: 257 }); // 1's slot, free again
    p.add(513, { n: 513 }); // the same slot, taken: beside the table
    expect(p.take(513)).toEqual({ n: 513 });
    expect(p.take(257)).toEqual({ n: 257 });
    expect(p.take(2)).toEqual({ n: 2 });
    expect(p.size).toBe(0);
  });

  it('hands every call back, oldest first, when the channel closes', () => {
    const p = new PendingCalls<{ n: number }>();
    for (const n of [5, 6, 7]) p.add(n, { n });
    p.take(6);
    expect(p.takeAll().map((c) => c.n)).toEqual([5, 7]);
    expect(p.size).toBe(0);
    expect(p.takeAll()).toEqual([]);
  });

  it('behaves as a Map for any sequence of adds and takes, ids that share a slot included', () => {
    // Ids 256 apart share a slot of the table: the later ones go to the map beside it.
    const ids = [1, 2, 3, 257, 258, 513, 0xffffffff, 255];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.constantFrom(...ids)), { maxLength: 80 }), (ops) => {
        const p = new PendingCalls<{ id: number }>();
        const model = new Map<number, { id: number }>();
        for (const [add, id] of ops) {
          if (add && !model.has(id)) {
            const call = { id };
            p.add(id, call);
            model.set(id, call);
          } else {
            expect(p.take(id)).toBe(model.get(id));
            model.delete(id);
          }
          expect(p.size).toBe(model.size);
          for (const k of ids) expect(p.has(k)).toBe(model.has(k));
        }
        expect(p.takeAll()).toEqual([...model.values()].sort((a, b) => a.id - b.id));
        expect(p.size).toBe(0);
      }),
      { seed: 6, numRuns: 300 },
    );
  });
});
