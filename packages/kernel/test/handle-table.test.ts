import { describe, expect, it } from 'vitest';
import { Account, DEFAULT_LIMITS, HandleTable, MAX_SLOTS } from '../src/index.js';

const table = (maxHandles = 8) => {
  const account = new Account({ ...DEFAULT_LIMITS, maxHandles });
  return { account, t: new HandleTable<string>(account) };
};

describe('HandleTable', () => {
  it('hands out the lowest free slot, tagged with its generation', () => {
    const { t } = table();
    const a = t.insert({ object: 'a', rights: 1 })!;
    const b = t.insert({ object: 'b', rights: 1 })!;
    expect(a % MAX_SLOTS).toBe(0);
    expect(b % MAX_SLOTS).toBe(1);
    expect(t.lookup(a)?.object).toBe('a');
  });

  it('never lets a stale handle reach the object that reuses its slot', () => {
    const { t } = table();
    const old = t.insert({ object: 'old', rights: 1 })!;
    t.remove(old);
    const fresh = t.insert({ object: 'new', rights: 1 })!;
    expect(fresh % MAX_SLOTS).toBe(old % MAX_SLOTS);
    expect(fresh).not.toBe(old);
    expect(t.lookup(old)).toBeUndefined();
    expect(t.remove(old)).toBeUndefined();
    expect(t.lookup(fresh)?.object).toBe('new');
  });

  it.each([-1, 0, 1, 1023, 1.5, NaN, Infinity, '1024', null, undefined, {}, [1024], 2 ** 60])('refuses %s', (h) => {
    const { t } = table();
    t.insert({ object: 'x', rights: 1 });
    expect(t.lookup(h)).toBeUndefined();
    expect(t.remove(h)).toBeUndefined();
  });

  it('stops at the domain quota and counts what it holds', () => {
    const { t, account } = table(3);
    const hs = [1, 2, 3].map(() => t.insert({ object: 'x', rights: 1 }));
    expect(hs.every((h) => h !== null)).toBe(true);
    expect(t.insert({ object: 'y', rights: 1 })).toBeNull();
    expect(account.handles).toBe(3);
    t.remove(hs[0]);
    expect(account.handles).toBe(2);
    expect([...t.entries()]).toHaveLength(2);
  });
});
