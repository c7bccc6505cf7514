/** The campaign scenario's client: sends a datagram made from the seed and checks that it comes back intact. */
import { AF_INET, defineProgram, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET } from '@moat/libc';

export interface EchoClientArgs {
  port: number;
  seed: number;
}

export default defineProgram<EchoClientArgs, { sent: number; intact: boolean }>(({ sys, args }) => {
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, 5000);
  const payload = new Uint8Array(64 + (args.seed % 64)).map((_, i) => (i * 31 + args.seed) & 0xff);
  sys.sendto(s, payload, { addr: '127.0.0.1', port: args.port });
  const back = sys.recv(s, 65536);
  sys.close(s);
  return { sent: payload.length, intact: back.length === payload.length && back.every((b, i) => b === payload[i]) };
});
