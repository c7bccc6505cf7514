/** A domain that accepts `connections` one after another and closes each at once (so it closes first). */
import { AF_INET, defineProgram, SOCK_STREAM } from '@moat/libc';

export interface TcpAcceptorArgs {
  addr: string;
  port: number;
  connections: number;
}

/** Returns how many connections it accepted. */
export default defineProgram<TcpAcceptorArgs, number>(async ({ sys, args, log }) => {
  const l = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(l, { addr: args.addr, port: args.port });
  sys.listen(l, 128);
  log('ready');
  for (let c = 0; c < args.connections; c++) sys.close(sys.accept(l).handle);
  sys.close(l);
  return args.connections;
});
