/** What a domain program is: a module whose default export receives this context. */
import type { Channel } from './channel.js';
import type { AsyncSockets, SyncSockets } from './sockets.js';

export interface DomainContext<Args = unknown> {
  /** This domain's name (other domains grant handles to it by this name). */
  readonly name: string;
  /** The arguments the scenario gave this domain. */
  readonly args: Args;
  /** Blocking BSD sockets. */
  readonly sys: SyncSockets;
  /** The same calls, returning promises. */
  readonly async: AsyncSockets;
  /** The raw channel, for programs that craft their own frames (fuzzers, attackers). */
  readonly channel: Channel;
  /** A line for the report, attributed to this domain. */
  log(message: string): void;
  /** Hands the host a JSON-friendly value for the report now (it survives a later crash). */
  publish(value: unknown): void;
}

/** A domain program: returns a JSON-friendly summary that goes into the report. */
export type DomainProgram<Args = unknown, Result = unknown> = (ctx: DomainContext<Args>) => Result | Promise<Result>;

/** Identity helper that gives a program's module its types. */
export function defineProgram<Args = unknown, Result = unknown>(program: DomainProgram<Args, Result>): DomainProgram<Args, Result> {
  return program;
}

/** What the domain worker sends its host (lifecycle only: never kernel state). */
export type DomainEvent = { event: 'log'; message: string } | { event: 'publish'; value: unknown } | { event: 'result'; value: unknown };

/** What a domain is started with, in a worker or a child process. */
export interface DomainInit {
  name: string;
  /** The program module's URL. */
  program: string;
  args: unknown;
}

export interface DomainWorkerData extends DomainInit {
  port: import('node:worker_threads').MessagePort;
  signal: SharedArrayBuffer;
  /**
   * Lockstep: the program's clocks read the kernel's virtual time from the
   * signal (virtual-clock.ts), and its channel tells the kernel when it waits
   * (PortTransport).
   */
  lockstep?: boolean;
}
