/**
 * The process domain's transport: the pipe format, the channel's call logic
 * over a transport that is not a MessagePort, and PipeTransport in a real
 * child process against a fake kernel on this side of its pipes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { deserialize } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeFrame, encodeReply, Errno, SYS } from '@moat/abi';
import { Channel, packMessage, PIPE_MAX_MESSAGE, PipeKind, PipeReader, type FrameTransport } from '../src/index.js';

type Message = [payload: Uint8Array, kind: PipeKind, length: number];

describe('the pipe format', () => {
  it('gives back every message, whatever chunks the stream arrives in', () => {
    const message = fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...Object.values(PipeKind)));
    fc.assert(
      fc.property(fc.array(message, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (messages, cuts) => {
        const stream = Buffer.concat(messages.map(([payload, kind]) => packMessage(payload, kind)));
        const got: Message[] = [];
        const reader = new PipeReader((payload, kind, length) => got.push([payload, kind, length]));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        let at = 0;
        for (const p of [...points, stream.length]) {
          reader.push(stream.subarray(at, p));
          at = p;
        }
        expect(got).toEqual(messages.map(([payload, kind]) => [new Uint8Array(payload), kind, payload.length]));
        expect(reader.partial).toBe(false);
      }),
    );
  });

  it('keeps only what keep() allows of a message and drops the rest unread, reporting the announced length', () => {
    const got: Message[] = [];
    const reader = new PipeReader(
      (payload, kind, length) => got.push([payload, kind, length]),
      (_kind, length) => Math.min(length, 4),
    );
    reader.push(packMessage(new Uint8Array(10).fill(7), PipeKind.rawValue));
    reader.push(packMessage(new Uint8Array([1, 2])));
    expect(got).toEqual([
      [new Uint8Array(4).fill(7), PipeKind.rawValue, 10],
      [new Uint8Array([1, 2]), PipeKind.request, 2],
    ]);
    // Each payload owns its memory, so it can be transferred.
    expect(got.map(([p]) => p.buffer.byteLength)).toEqual([4, 2]);
  });

  it('reads a header that is a plain length when it comes from the host', () => {
    const got: number[] = [];
    const reader = new PipeReader((payload) => got.push(payload.length), undefined, false);
    reader.push(packMessage(new Uint8Array(3)));
    expect(got).toEqual([3]);
    expect(() => packMessage({ byteLength: PIPE_MAX_MESSAGE + 1 } as Uint8Array)).toThrow(/at most/);
  });
});

/** A transport that answers in memory: replies to promise calls are queued and delivered on demand. */
class ScriptedTransport implements FrameTransport {
  readonly sent: [unknown, boolean][] = [];
  private readonly blocking: Uint8Array[] = [];
  private readonly later: Uint8Array[] = [];
  private onReply: ((frame: Uint8Array) => void) | undefined;
  closed = false;

  send(frame: Uint8Array<ArrayBuffer>, promised: boolean): void {
    const [id, sysno] = decodeFrame(frame) as [number, number];
    this.sent.push([sysno, promised]);
    (promised ? this.later : this.blocking).push(encodeReply(id, 0, sysno));
  }
  sendRaw(message: unknown): void {
    this.sent.push([message, false]);
    this.blocking.push(encodeReply(0, Errno.EINVAL));
  }
  receiveSync(): Uint8Array {
    // An answer to a promise call may arrive while a blocking call waits: the channel must pass it on.
    const frame = this.later.shift() ?? this.blocking.shift();
    if (!frame) throw new Error('nothing to receive');
    return frame;
  }
  listen(onReply: (frame: Uint8Array) => void): void {
    this.onReply = onReply;
  }
  deliverLater(): void {
    for (const f of this.later.splice(0)) this.onReply?.(f);
  }
  unref(): void {}
  close(): void {
    this.closed = true;
  }
}

describe('the channel over a transport of its own', () => {
  it('matches replies by id on either path, whichever arrives first', async () => {
    const t = new ScriptedTransport();
    const channel = new Channel(t);
    const promised = channel.callAsync(SYS.socket, [2, 2, 0]);
    expect(channel.callSync(SYS.close, [5])).toBe(SYS.close); // the socket reply came first and was set aside
    await expect(promised).resolves.toBe(SYS.socket);
    const promisedToo = channel.callAsync(SYS.bind, [1, { addr: '127.0.0.1', port: 1 }]);
    t.deliverLater();
    await expect(promisedToo).resolves.toBe(SYS.bind);
    expect(channel.rawSync('not a frame')).toEqual([0, Errno.EINVAL]);
    expect(t.sent).toEqual([
      [SYS.socket, true],
      [SYS.close, false],
      [SYS.bind, true],
      ['not a frame', false],
    ]);
    channel.close();
    expect(t.closed).toBe(true);
  });

  it('still takes a MessagePort and its wake-up word, and refuses a port without one', async () => {
    const { MessageChannel } = await import('node:worker_threads');
    const { port1, port2 } = new MessageChannel();
    expect(() => new Channel(port1, undefined as unknown as SharedArrayBuffer)).toThrow(/wake-up word/);
    port1.close();
    port2.close();
  });
});

describe('PipeTransport in a real child process', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
  });

  /** Starts a child that runs `body` with `channel` and `transport` over fds 3 and 4, and a fake kernel here. */
  function startChild(body: string, answer: (sysno: number, args: unknown[]) => [errno: number, result?: unknown] | undefined) {
    const libc = new URL('../dist/index.js', import.meta.url).href;
    const script = `import { Channel, PipeTransport } from ${JSON.stringify(libc)};
      const transport = new PipeTransport();
      const channel = new Channel(transport);
      ${body}`;
    const c = (child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit', 'pipe', 'pipe'], env: {} }));
    const channelPipe = c.stdio[3] as Socket;
    const asyncPipe = c.stdio[4] as Socket;
    const seen: { kind: PipeKind; value: unknown }[] = [];
    const reader = new PipeReader((payload, kind) => {
      if (kind === PipeKind.event) return void seen.push({ kind, value: deserialize(payload) });
      if (kind === PipeKind.rawValue) {
        // Answered as the kernel answers a message that is not bytes: EINVAL under call id 0.
        seen.push({ kind, value: deserialize(payload) });
        return void channelPipe.write(packMessage(encodeReply(0, Errno.EINVAL)));
      }
      const [id, sysno, ...args] = decodeFrame(payload) as [number, number, ...unknown[]];
      seen.push({ kind, value: [sysno, ...args] });
      const reply = answer(sysno, args);
      if (reply) (kind === PipeKind.asyncRequest ? asyncPipe : channelPipe).write(packMessage(encodeReply(id, reply[0], reply[1])));
    });
    channelPipe.on('data', (chunk: Buffer) => reader.push(chunk));
    const exited = new Promise<number | null>((resolve) => c.once('close', (code) => resolve(code)));
    return { seen, exited, channelPipe };
  }

  it('blocks in read(2) for a blocking call, takes promise replies from the event loop, and sends events in order', async () => {
    const { seen, exited } = startChild(
      `const pending = [channel.callAsync(1, []), channel.callAsync(1, [])];
       const blocking = channel.callSync(0, []);
       transport.sendEvent({ event: 'log', message: 'blocking call returned ' + blocking });
       const both = await Promise.all(pending);
       transport.sendEvent({ event: 'result', value: { both, raw: channel.rawSync({ not: 'bytes' }) } });
       channel.close();`,
      (sysno) => (sysno === 0 ? [0, 'sync'] : [0, 'async']),
    );
    expect(await exited).toBe(0);
    expect(seen).toEqual([
      { kind: PipeKind.asyncRequest, value: [1] },
      { kind: PipeKind.asyncRequest, value: [1] },
      { kind: PipeKind.request, value: [0] },
      { kind: PipeKind.event, value: { event: 'log', message: 'blocking call returned sync' } },
      { kind: PipeKind.rawValue, value: { not: 'bytes' } },
      { kind: PipeKind.event, value: { event: 'result', value: { both: ['async', 'async'], raw: [0, Errno.EINVAL] } } },
      { kind: PipeKind.event, value: { event: 'close' } },
    ]);
  });

  it('fails a blocking call when the host ends the pipe, instead of hanging', async () => {
    const { seen, exited, channelPipe } = startChild(
      `try { channel.callSync(0, []); } catch (err) { transport.sendEvent({ event: 'error', message: err.message }); }`,
      () => {
        channelPipe.end(); // no answer: the host hangs up
        return undefined;
      },
    );
    expect(await exited).toBe(0);
    expect(seen.at(-1)).toEqual({ kind: PipeKind.event, value: { event: 'error', message: 'syscall channel closed by the host' } });
  });
});
