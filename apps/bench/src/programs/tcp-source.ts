/**
 * A domain that makes bulk TCP transfers to the sink (../tcp-protocol.ts):
 * blocking sends of `writeSize` bytes, each of which hands the whole buffer
 * over, then shutdown(SHUT_WR) and the sink's reply. The kernel picks each
 * connection's local port, as Node's client lets Linux do.
 */
import { AF_INET, defineProgram, SHUT_WR, SOCK_STREAM, type SockAddr } from '@moat/libc';
import { runBulkSource, type TcpBulkPlan, type TransferResult } from '../tcp-protocol.js';

export interface TcpSourceArgs {
  to: SockAddr;
  plan: TcpBulkPlan;
}

export default defineProgram<TcpSourceArgs, TransferResult[]>(({ sys, args }) =>
  runBulkSource(args.plan, () => {
    const s = sys.socket(AF_INET, SOCK_STREAM);
    sys.connect(s, args.to);
    return {
      write(chunk) {
        const n = sys.send(s, chunk);
        if (n !== chunk.length) throw new Error(`a blocking send took ${n} of ${chunk.length} bytes`);
      },
      finish() {
        sys.shutdown(s, SHUT_WR);
        const reply = new Uint8Array(8);
        for (let got = 0; got < reply.length; ) {
          const part = sys.recv(s, reply.length - got);
          if (part.length === 0) throw new Error('the sink closed before its reply');
          reply.set(part, got);
          got += part.length;
        }
        return reply;
      },
      close() {
        sys.close(s);
      },
    };
  }),
);
