/**
 * A domain in a child process (isolation 'process'). The child gets two pipes
 * and nothing else of the host's (see @moat/libc's pipe-protocol.ts); the host
 * bridges them to the kernel's MessagePort for the domain, so the kernel sees
 * the same port and the same frames as from a worker. The bridge copies
 * frames and routes replies; it decodes no syscall. It does hold the child to
 * its side of the protocol: a lifecycle event or a backlog of unread replies
 * beyond the limits below stops the child, as a kernel oops stops a thread.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { deserialize, serialize } from 'node:v8';
import type { MessagePort, ResourceLimits } from 'node:worker_threads';
import { MAX_FRAME_BYTES, peekCallId, UNKNOWN_CALL_ID } from '@moat/abi';
import { packMessage, PipeKind, PipeReader, PROCESS_RUNTIME_URL, type DomainEvent, type DomainInit, type PipeEvent } from '@moat/libc';
import type { DomainEnd, DomainRunner } from './domain-runner.js';
import { permissionFlags, processPermissions, type ProcessPermissions } from './process-permissions.js';

/** A lifecycle event (a log line, a published value) larger than this stops the child. */
export const PROCESS_EVENT_LIMIT = 16 << 20;
/** Replies the child leaves unread beyond this many bytes stop it: the host will not buffer without bound for it. */
export const PROCESS_REPLY_BACKLOG_LIMIT = 32 << 20;
/** How much of the child's stderr is kept to recognise how it died. */
const STDERR_TAIL = 8192;

export interface ProcessDomainPlan {
  init: DomainInit;
  /** The init record, serialized before anything starts (arguments that cannot be cloned fail the spawn, as a worker's do). */
  initBytes: Uint8Array;
  execArgv: string[];
  permissions: ProcessPermissions | undefined;
}

/** Checks a process domain's options and works out its command line; throws before anything is started. */
export function planProcessDomain(init: DomainInit, resourceLimits: ResourceLimits | undefined, allowFsRead: readonly string[] | undefined): ProcessDomainPlan {
  const heap = heapFlags(init.name, resourceLimits);
  let initBytes: Uint8Array;
  try {
    initBytes = serialize(init);
  } catch (err) {
    throw new Error(`domain ${init.name}: its args cannot be sent to a child process: ${(err as Error).message}`);
  }
  const programPath = init.program.startsWith('file:') ? fileURLToPath(init.program) : undefined;
  const permissions = processPermissions(programPath, allowFsRead);
  return { init, initBytes, permissions, execArgv: [...permissionFlags(permissions), ...heap] };
}

function heapFlags(name: string, limits: ResourceLimits | undefined): string[] {
  if (!limits) return [];
  const { maxOldGenerationSizeMb: heap, ...rest } = limits;
  const unsupported = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k]) => k);
  if (unsupported.length > 0)
    throw new Error(`domain ${name}: resourceLimits.${unsupported.join(', ')} cannot be applied to a child process (isolation 'process' takes maxOldGenerationSizeMb only)`);
  if (heap === undefined) return [];
  if (!(heap > 0 && Number.isFinite(heap))) throw new Error(`domain ${name}: resourceLimits.maxOldGenerationSizeMb must be a positive number of MiB, not ${heap}`);
  return [`--max-old-space-size=${Math.ceil(heap)}`];
}

// Children still running when the host exits are killed with it, however it exits.
const live = new Set<ChildProcess>();
let reaperInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

export class ProcessRunner implements DomainRunner {
  readonly isolation = 'process';
  readonly pid: number | undefined;
  readonly permissions: ProcessPermissions | undefined;
  readonly ended: Promise<DomainEnd>;
  private readonly child: ChildProcess;
  private readonly listeners = new Set<(e: DomainEvent) => void>();
  private error: string | undefined;
  private stoppedBy: string | undefined;
  private stderrTail = '';

  /** Starts the child and bridges its pipes to `port`, the domain's end of its kernel channel. */
  constructor(plan: ProcessDomainPlan, port: MessagePort) {
    this.permissions = plan.permissions;
    this.child = spawn(process.execPath, [...plan.execArgv, fileURLToPath(PROCESS_RUNTIME_URL)], {
      // No stdin and no environment of the host's, as a worker; stdout is the host's; stderr is
      // read (to recognise a heap exhaustion) and passed on; fd 3 and 4 are the channel's pipes.
      stdio: ['ignore', 'inherit', 'pipe', 'pipe', 'pipe'],
      env: {},
      windowsHide: true,
    });
    this.pid = this.child.pid;
    track(this.child);
    const channel = this.child.stdio[3] as Socket;
    const asyncPipe = this.child.stdio[4] as Socket;
    // Writes to a child that has just died fail with EPIPE; its death is reported by 'close'.
    channel.on('error', () => {});
    asyncPipe.on('error', () => {});
    this.child.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });

    // Ids of promise calls in flight, so their replies go to the async pipe (a count: a hostile child may reuse one).
    const promised = new Map<number, number>();
    const reader = new PipeReader(
      (payload, kind, length) => {
        if (this.stoppedBy !== undefined) return; // nothing a stopped child wrote after the offence is taken
        switch (kind) {
          case PipeKind.asyncRequest: {
            const id = peekCallId(payload);
            if (id !== UNKNOWN_CALL_ID) promised.set(id, (promised.get(id) ?? 0) + 1);
            return port.postMessage(payload, [payload.buffer]);
          }
          case PipeKind.request:
            return port.postMessage(payload, [payload.buffer]);
          case PipeKind.rawValue:
            // The value a worker would have posted; the kernel refuses it as it refuses that.
            return port.postMessage(length === payload.length ? tryDeserialize(payload) : payload);
          case PipeKind.event:
            return this.onPipeEvent(tryDeserialize(payload), port);
        }
      },
      (kind, length) => {
        if (kind !== PipeKind.event) {
          // A request is kept up to one byte over the kernel's frame limit and the rest dropped
          // unread: the kernel still sees a frame over its limit and answers EMSGSIZE, and the host
          // never holds more than that for one frame, whatever length the child announced.
          return Math.min(length, MAX_FRAME_BYTES + 1);
        }
        if (length <= PROCESS_EVENT_LIMIT) return length;
        this.stop(`announced a lifecycle event of ${length} bytes (the limit is ${PROCESS_EVENT_LIMIT})`);
        return 0;
      },
    );
    channel.on('data', (chunk: Buffer) => {
      if (this.stoppedBy === undefined) reader.push(chunk);
    });

    port.on('message', (reply: Uint8Array) => {
      const id = peekCallId(reply);
      const owed = promised.get(id);
      if (owed !== undefined) {
        if (owed === 1) promised.delete(id);
        else promised.set(id, owed - 1);
      }
      const lane = owed !== undefined ? asyncPipe : channel;
      lane.write(packMessage(reply));
      if (lane.writableLength > PROCESS_REPLY_BACKLOG_LIMIT) this.stop(`left ${lane.writableLength} bytes of replies unread (the limit is ${PROCESS_REPLY_BACKLOG_LIMIT})`);
    });

    channel.write(packMessage(plan.initBytes));

    this.ended = new Promise((resolve) => {
      const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
        port.close();
        resolve({
          exitCode: exitCode ?? undefined,
          signal: signal ?? undefined,
          error: this.error,
          outOfMemory: this.outOfMemory(exitCode, signal),
          stoppedBy: this.stoppedBy,
        });
      };
      // 'close' comes after the exit and after every pipe reached its end, so all the child wrote has been read.
      this.child.once('close', finish);
      this.child.once('error', (err) => {
        // The process could not be started at all.
        if (this.child.pid === undefined) {
          this.error = `could not start the domain's process: ${err.message}`;
          finish(null, null);
        }
      });
    });
  }

  onEvent(listener: (e: DomainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async terminate(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.ended;
  }

  private onPipeEvent(e: unknown, port: MessagePort): void {
    const event = (e as PipeEvent | undefined)?.event;
    switch (event) {
      case 'log':
      case 'publish':
      case 'result': {
        const message = e as DomainEvent;
        if (message.event === 'log' && typeof message.message !== 'string') return this.stop('sent a log line that is not a string');
        for (const l of this.listeners) l(message);
        return;
      }
      case 'error':
        this.error = String((e as { message?: unknown }).message);
        return;
      case 'close':
        port.close(); // the child closed its channel: the kernel releases it as it would a worker's
        return;
      default:
        return this.stop('sent a lifecycle event the host does not know');
    }
  }

  /** Stops a child that broke its side of the pipe protocol. */
  private stop(reason: string): void {
    this.stoppedBy ??= `process domain ${reason}`;
    this.child.kill('SIGKILL');
  }

  /** V8 aborts the process when the heap limit is reached, and says why on stderr first. */
  private outOfMemory(exitCode: number | null, signal: NodeJS.Signals | null): string | undefined {
    if (signal !== 'SIGABRT' && exitCode !== 134) return undefined;
    const line = /FATAL ERROR:[^\n]*JavaScript heap out of memory[^\n]*/.exec(this.stderrTail) ?? /[^\n]*JavaScript heap out of memory[^\n]*/.exec(this.stderrTail);
    return line?.[0].trim();
  }
}

function tryDeserialize(bytes: Uint8Array): unknown {
  try {
    return deserialize(bytes);
  } catch {
    return bytes; // not a serialized value: the kernel gets the bytes as they are
  }
}
