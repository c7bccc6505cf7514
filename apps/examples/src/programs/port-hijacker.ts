/**
 * The port hijacker: a neighbour of the OTA that tries to take the OTA's
 * ports while the OTA is halfway through its download: binds its TCP port on
 * every local address, with and without SO_REUSEADDR, binds and listens on
 * it, binds the OTA's local address and port to connect to the server (the
 * OTA's own four-tuple), connects to the OTA's port, and binds the OTA's
 * listening side port and its UDP port. A port a live socket holds is never
 * shared, whatever the options: every one of these must fail.
 */
import { AF_INET, defineProgram, errnoName, errnoOf, SO_REUSEADDR, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, type SockAddr } from '@moat/libc';
import { attempt, awaitMidway, connectSide, record, reportSide, type Attempt } from './library-kit.js';

export interface PortHijackerArgs {
  controlPort: number;
  /** The machine's own addresses besides 0.0.0.0. */
  localAddrs: string[];
}

export interface PortHijackerResult {
  attempts: Attempt[];
  /** The OTA's UDP port it aimed at (learnt from the OTA's datagram). */
  otaUdpPort: number;
}

export default defineProgram<PortHijackerArgs, PortHijackerResult>(({ sys, args, log }) => {
  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(control, { addr: '127.0.0.1', port: args.controlPort });
  log('loaded');
  const { info, from } = awaitMidway(sys, control);
  const side = connectSide(sys, info);
  const attempts: Attempt[] = [];
  const everywhere = ['0.0.0.0', ...args.localAddrs];

  /**
   * One try: a fresh socket, SO_REUSEADDR if asked, bind to `at`, then `then`
   * (listen, connect) if the bind went through. The result is the first
   * refusal, or OK (a breach) when everything succeeded.
   */
  const attemptBind = (a: Attempt, type: number, at: SockAddr, reuse: boolean, then?: (s: number) => unknown) => {
    const s = sys.socket(AF_INET, type);
    try {
      if (reuse) sys.setsockopt(s, SOL_SOCKET, SO_REUSEADDR, 1);
      let errno = errnoOf(() => sys.bind(s, at));
      if (errno === 0 && then) errno = errnoOf(() => then(s));
      record(a, errno === 0 ? 'OK' : errnoName(errno), errno === 0);
      if (errno === 0) log(`BREACH: ${a.name}: ${at.addr}:${at.port}${reuse ? ' with SO_REUSEADDR' : ''}`);
    } finally {
      sys.close(s);
    }
  };

  for (const reuse of [false, true]) {
    const how = reuse ? ' with SO_REUSEADDR' : '';
    const bind = attempt(attempts, `bind the OTA's TCP port${how}`, `port ${info.port} on ${everywhere.join(', ')}`);
    for (const addr of everywhere) attemptBind(bind, SOCK_STREAM, { addr, port: info.port }, reuse);
    const listen = attempt(attempts, `listen on the OTA's TCP port${how}`, 'bind, then listen');
    for (const addr of everywhere) attemptBind(listen, SOCK_STREAM, { addr, port: info.port }, reuse, (s) => sys.listen(s, 8));
    const tuple = attempt(attempts, `take the OTA's four-tuple${how}`, `bind ${args.localAddrs.at(-1)}:${info.port} (and 0.0.0.0), then connect to ${info.server.addr}:${info.server.port}`);
    for (const addr of ['0.0.0.0', args.localAddrs.at(-1)!]) attemptBind(tuple, SOCK_STREAM, { addr, port: info.port }, reuse, (s) => sys.connect(s, info.server));
    const listener = attempt(attempts, `bind the OTA's listening port${how}`, `port ${info.sidePort}, where the OTA listens on 127.0.0.1`);
    for (const addr of everywhere) attemptBind(listener, SOCK_STREAM, { addr, port: info.sidePort }, reuse, (s) => sys.listen(s, 8));
    const udp = attempt(attempts, `bind the OTA's UDP port${how}`, `port ${from.port}, the OTA's datagram socket`);
    for (const addr of everywhere) attemptBind(udp, SOCK_DGRAM, { addr, port: from.port }, reuse);
  }
  // Nobody listens on the OTA's download port: a connection there would have to reach its connected socket.
  const connect = attempt(attempts, "connect to the OTA's TCP port", `to ${args.localAddrs.join(' and ')} port ${info.port}`);
  for (const addr of args.localAddrs) {
    const s = sys.socket(AF_INET, SOCK_STREAM);
    const errno = errnoOf(() => sys.connect(s, { addr, port: info.port }));
    record(connect, errno === 0 ? 'OK' : errnoName(errno), errno === 0);
    sys.close(s);
  }
  const breaches = attempts.reduce((n, a) => n + a.breaches, 0);
  log(`${attempts.reduce((n, a) => n + a.tries, 0)} hijack attempts, ${breaches} succeeded`);
  sys.close(control);
  reportSide(sys, side, `port-hijack done: ${breaches} breaches`);
  return { attempts, otaUdpPort: from.port };
});
