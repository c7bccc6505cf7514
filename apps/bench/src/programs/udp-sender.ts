/**
 * A domain that sends datagrams to the receiver domain with the windowed
 * protocol of ../udp-protocol.ts. A window's sendto() calls are all in flight
 * at once (as Node's dgram sends are), and the acknowledgement is awaited
 * with a receive timeout.
 */
import { AF_INET, defineProgram, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET, type SockAddr } from '@moat/libc';
import { runSender, type RoundResult, type UdpPlan } from '../udp-protocol.js';

export interface UdpSenderArgs extends UdpPlan {
  to: SockAddr;
}

export default defineProgram<UdpSenderArgs, RoundResult[]>(async ({ sys, async: net, args }) => {
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, args.ackTimeoutMs);
  const rounds = await runSender(
    {
      async sendAll(frames) {
        await Promise.all(frames.map((f) => net.sendto(s, f, args.to)));
      },
      async receive() {
        try {
          return (await net.recv(s, 64)) as Uint8Array;
        } catch (err) {
          if ((err as { code?: string }).code === 'EAGAIN') return undefined;
          throw err;
        }
      },
    },
    args,
  );
  sys.close(s);
  return rounds;
});
