/** The first thing the scale figures' domains do: one syscall, answered, and when (for start-up times). */
import type { SyncSockets } from '@moat/libc';
import { epochMs } from '../doorbell.js';

/** Makes the domain's first syscall (a null one) and logs `started <ms>` on the shared clock once it is answered. */
export function announceStart(sys: SyncSockets, log: (message: string) => void): void {
  sys.null();
  log(`started ${epochMs()}`);
}

/** The time `announceStart` logged. */
export function startedAt(line: string): number {
  const m = /^started (\S+)$/.exec(line);
  if (!m) throw new Error(`not a start line: ${line}`);
  return Number(m[1]);
}
