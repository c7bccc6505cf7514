/**
 * A UDP echo service: sends every datagram back to its sender, until the
 * scenario ends. The OTA's request/response partner in syscall-flood.
 */
import { AF_INET, defineProgram, SOCK_DGRAM } from '@moat/libc';

export interface EchoArgs {
  port: number;
}

export default defineProgram<EchoArgs>(({ sys, args, log }) => {
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(s, { addr: '127.0.0.1', port: args.port });
  log('loaded');
  for (;;) {
    const { data, from } = sys.recvfrom(s, 65536);
    sys.sendto(s, data, from);
  }
});
