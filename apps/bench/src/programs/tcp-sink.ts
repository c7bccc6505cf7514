/**
 * A domain that takes bulk TCP transfers: it accepts `connections` one after
 * another, reads each to the end of its stream (recv of up to `readSize`
 * bytes at a time, blocking) and answers with the count of bytes it read.
 */
import { AF_INET, defineProgram, SOCK_STREAM } from '@moat/libc';
import { countReply } from '../tcp-protocol.js';

export interface TcpSinkArgs {
  /** Where to listen: 127.0.0.1 on one machine, 0.0.0.0 across a link. */
  addr: string;
  port: number;
  connections: number;
  readSize: number;
}

/** Returns the bytes read on each connection. */
export default defineProgram<TcpSinkArgs, number[]>(async ({ sys, args, log }) => {
  const l = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(l, { addr: args.addr, port: args.port });
  sys.listen(l, 16);
  log('ready');
  const read: number[] = [];
  for (let c = 0; c < args.connections; c++) {
    const { handle } = sys.accept(l);
    let bytes = 0;
    for (;;) {
      const chunk = sys.recv(handle, args.readSize);
      if (chunk.length === 0) break;
      bytes += chunk.length;
    }
    sys.send(handle, countReply(bytes));
    sys.close(handle);
    read.push(bytes);
  }
  sys.close(l);
  return read;
});
