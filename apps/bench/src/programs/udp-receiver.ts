/**
 * A domain that receives the sender's datagrams and acknowledges windows.
 * It keeps `depth` recvfrom() calls waiting in the kernel, so a datagram is
 * handed over as soon as the stack delivers it rather than one round trip
 * later (the closest a domain gets to dgram's 'message' events).
 */
import { AF_INET, defineProgram, SOCK_DGRAM } from '@moat/libc';
import { Receiver } from '../udp-protocol.js';

export interface UdpReceiverArgs {
  /** Where to bind: 127.0.0.1 on one machine, 0.0.0.0 across a link. */
  addr: string;
  port: number;
  depth: number;
}

export default defineProgram<UdpReceiverArgs, number[]>(async ({ sys, async: net, args, log }) => {
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(s, { addr: args.addr, port: args.port });
  const rx = new Receiver();
  // Replies resolve in the order the kernel sent them, so take() sees datagrams in arrival order.
  const lane = async () => {
    while (!rx.finished) {
      let got;
      try {
        got = await net.recvfrom(s, 65536);
      } catch (err) {
        if (rx.finished) return; // the socket closed under the other lanes' waiting calls
        throw err;
      }
      const reply = rx.take(got.data);
      if (reply) await net.sendto(s, reply, got.from);
      if (rx.finished) await net.close(s);
    }
  };
  log('ready');
  await Promise.all(Array.from({ length: args.depth }, lane));
  return rx.delivered;
});
