/**
 * A domain that opens connections one after another (../tcp-protocol.ts):
 * socket, connect (the kernel picks the local port), recv until the
 * end of the stream (the acceptor closes first), close.
 */
import { AF_INET, defineProgram, SOCK_STREAM, type SockAddr } from '@moat/libc';
import { runConnector, type ConnectResult, type TcpConnectPlan } from '../tcp-protocol.js';

export interface TcpConnectorArgs {
  to: SockAddr;
  plan: TcpConnectPlan;
}

export default defineProgram<TcpConnectorArgs, ConnectResult>(({ sys, args }) =>
  runConnector(args.plan, () => {
    const s = sys.socket(AF_INET, SOCK_STREAM);
    sys.connect(s, args.to);
    if (sys.recv(s, 16).length !== 0) throw new Error('the acceptor sent data');
    sys.close(s);
  }),
);
