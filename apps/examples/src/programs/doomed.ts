/**
 * A third-party library that dies in the middle of the OTA's download. When
 * the OTA starts it, it takes a share of everything the kernel accounts:
 * a connection to the OTA's side port (the OTA waits on it), datagram
 * sockets with datagrams queued, a TCP connection to itself with data left
 * unread, a listener, and a receive call parked in the kernel. It publishes
 * what it holds, then dies as `mode` says:
 *
 * - 'crash': throws;
 * - 'hang': blocks for ever in a receive nobody will answer, until the
 *   scenario's watchdog (a kill fault) ends it;
 * - 'oom': allocates until its heap limit stops it.
 *
 * The kernel must release all of it and reset the OTA's side connection.
 */
import { AF_INET, defineProgram, SOCK_DGRAM, SOCK_STREAM } from '@moat/libc';
import { awaitMidway, connectSide } from './library-kit.js';

export interface DoomedArgs {
  controlPort: number;
  mode: 'crash' | 'hang' | 'oom';
}

export default defineProgram<DoomedArgs>(({ sys, async, args, log, publish }) => {
  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(control, { addr: '127.0.0.1', port: args.controlPort });
  log('loaded');
  const { info } = awaitMidway(sys, control);
  connectSide(sys, info);

  // Datagram sockets with datagrams queued: packet buffers charged to it.
  const sinks = Array.from({ length: 4 }, () => {
    const s = sys.socket(AF_INET, SOCK_DGRAM);
    sys.bind(s, { addr: '127.0.0.1', port: 0 });
    return s;
  });
  const datagram = new Uint8Array(2000).fill(0xd0);
  for (const s of sinks) {
    const at = sys.getsockname(s);
    for (let i = 0; i < 8; i++) sys.sendto(control, datagram, at);
  }
  // A connection to itself with 64 KiB sent and never read: stream bytes charged to it.
  const listener = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(listener, { addr: '127.0.0.1', port: 0 });
  sys.listen(listener, 4);
  const client = sys.socket(AF_INET, SOCK_STREAM);
  sys.connect(client, sys.getsockname(listener));
  sys.accept(listener);
  sys.send(client, new Uint8Array(64 << 10).fill(0xd1));
  // A receive parked in the kernel: a pending call when it dies.
  const quiet = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(quiet, { addr: '127.0.0.1', port: 0 });
  void async.recv(quiet, 100).catch(() => undefined);
  sys.null(); // the parked receive was sent before this, so the kernel holds it now
  const holding = sys.stats();
  const summary = `${holding.handles} handles, ${holding.sockets} sockets, ${holding.buffers} buffers (${holding.bufferBytes} B), ${holding.streamBytes} stream bytes, ${holding.pendingCalls} pending calls`;
  log(`holding ${summary}`);

  if (args.mode === 'crash') {
    publish({ phase: 'crashing', holding });
    throw new Error(`crashed on purpose, holding ${summary}`);
  }
  if (args.mode === 'hang') {
    publish({ phase: 'hanging', holding });
    log('hanging');
    sys.recv(quiet, 100); // blocks for ever: nobody sends to it, and it has no timeout
    throw new Error('a receive nobody answers returned');
  }
  publish({ phase: 'exhausting its heap', holding });
  // Arrays of numbers live on the V8 heap, which the heap limit counts (ArrayBuffers would not be).
  const hoard: number[][] = [];
  for (let i = 0; ; i++) hoard.push(new Array(1 << 16).fill(i + 0.5));
});
