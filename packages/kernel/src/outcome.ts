/** What serving a syscall produces: a reply now, or a call parked until it can finish. */

export interface Done {
  errno: number;
  result?: unknown;
  /** Runs once the reply is encoded: releases kernel buffers the result pointed into. */
  after?: () => void;
}

export interface Blocked {
  /** Tries again; null while the call must keep waiting. */
  retry(): Done | null;
  /** Absolute time (kernel clock, ms) at which `onTimeout` answers instead. */
  deadline: number | undefined;
  onTimeout: Done;
}

export type Outcome = Done | { blocked: Blocked };

export const ok = (result: unknown = 0, after?: () => void): Done => ({ errno: 0, result, after });
export const fail = (errno: number): Done => ({ errno });
