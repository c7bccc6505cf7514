/** The campaign scenario's server: echoes one datagram back to its sender. */
import { AF_INET, defineProgram, SOCK_DGRAM } from '@moat/libc';

export interface EchoOnceArgs {
  port: number;
}

export default defineProgram<EchoOnceArgs, { echoed: number }>(({ sys, args, log }) => {
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(s, { addr: '127.0.0.1', port: args.port });
  log('listening');
  const { data, from } = sys.recvfrom(s, 65536);
  sys.sendto(s, data, from);
  sys.close(s);
  return { echoed: data.length };
});
