/**
 * The host's go signal to bench threads: one Int32 word in a
 * SharedArrayBuffer that the host raises and the thread waits on. Moat's
 * domains and the baselines' workers get the same bell, so both sides of a
 * ratio start the same way. It is bench plumbing only: the host has no other
 * way to reach a running domain (the channel is the kernel's), it carries no
 * data, and what is measured still goes through the channel. Domains of real
 * scenarios get no shared memory.
 */

/** Raises the bell to `value` (never lowers it) and wakes every thread waiting below it. */
export function ring(bell: SharedArrayBuffer, value: number): void {
  const word = new Int32Array(bell);
  Atomics.store(word, 0, value);
  Atomics.notify(word, 0);
}

/** Blocks the calling thread until the bell reaches `value`. Never call it with replies still to come. */
export function waitForBell(bell: SharedArrayBuffer, value: number): void {
  const word = new Int32Array(bell);
  for (let seen = Atomics.load(word, 0); seen < value; seen = Atomics.load(word, 0)) Atomics.wait(word, 0, seen);
}

type WaitAsync = (word: Int32Array, index: number, value: number) => { async: boolean; value: Promise<unknown> | string };

/**
 * Resolves once the bell reaches `value`, leaving the thread's event loop
 * free meanwhile: a memory reading has every thread collect its garbage, and
 * a thread blocked in Atomics.wait cannot.
 */
export async function bellRung(bell: SharedArrayBuffer, value: number): Promise<void> {
  const word = new Int32Array(bell);
  const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
  // A pending waitAsync does not keep a worker alive; a timer does, until the bell rings.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  try {
    for (let seen = Atomics.load(word, 0); seen < value; seen = Atomics.load(word, 0)) {
      const w = waitAsync(word, 0, seen);
      if (w.async) await w.value;
    }
  } finally {
    clearInterval(keepAlive);
  }
}

export const newBell = (): SharedArrayBuffer => new SharedArrayBuffer(4);

/** Milliseconds on a clock every thread of the process shares (each worker has its own timeOrigin). */
export const epochMs = (): number => performance.timeOrigin + performance.now();

/**
 * The host's side of a run of several threads started together (see
 * togetherTrials): for each trial, waits until every thread says it is ready
 * for it, then rings the bell to the trial's number.
 */
export async function conduct(bell: SharedArrayBuffer, trials: number, ready: ((trial: number) => Promise<unknown>)[]): Promise<void> {
  for (let trial = 1; trial <= trials; trial++) {
    await Promise.all(ready.map((r) => r(trial)));
    ring(bell, trial);
  }
}
