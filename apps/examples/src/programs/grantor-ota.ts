/**
 * The OTA of grant-revoke: it keeps a datagram socket where notices arrive
 * (four are queued) and lends it to a plugin domain through two grants, one
 * READ and one READ|GRANT. When the plugin says it is done, the OTA revokes
 * both and tells the plugin, which tries again. At the end the OTA checks
 * that its socket outlived the grants exactly as it was: the notices nobody
 * was allowed to take still queued, its options unchanged.
 */
import { AF_INET, defineProgram, F_GETFL, MSG_DONTWAIT, Rights, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET, type SockAddr } from '@moat/libc';

export interface GrantorOtaArgs {
  plugin: { name: string; port: number };
  /** Notices queued on the lent socket before the grants. */
  notices: number;
}

export interface GrantMessage {
  phase: 'granted' | 'revoked';
  /** The plugin's numbers for the two grants (valid in its table only). */
  read?: number;
  readGrant?: number;
  owner: string;
}

export interface GrantorOtaResult {
  granted: { read: number; readGrant: number };
  /** What revoke() returned: entries removed from the plugin's table. */
  revoked: number;
  /** Notices still queued on its socket at the end, in order. */
  remaining: string[];
  checks: Record<string, boolean>;
  pluginReports: string[];
}

const TIMEO = 6_000 + 66;

export default defineProgram<GrantorOtaArgs, GrantorOtaResult>(({ sys, args, name, log }) => {
  const notices = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(notices, { addr: '127.0.0.1', port: 0 });
  sys.setsockopt(notices, SOL_SOCKET, SO_RCVTIMEO, TIMEO);
  const at = sys.getsockname(notices);
  const feeder = sys.socket(AF_INET, SOCK_DGRAM);
  for (let i = 1; i <= args.notices; i++) sys.sendto(feeder, new TextEncoder().encode(`notice ${i}`), at);
  sys.close(feeder);

  const read = sys.grant(notices, args.plugin.name, Rights.READ);
  const readGrant = sys.grant(notices, args.plugin.name, Rights.READ | Rights.GRANT);
  log(`granted READ as ${read} and READ|GRANT as ${readGrant} to ${args.plugin.name}`);
  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.setsockopt(control, SOL_SOCKET, SO_RCVTIMEO, 10_000);
  const plugin: SockAddr = { addr: '127.0.0.1', port: args.plugin.port };
  const tell = (m: GrantMessage) => sys.sendto(control, new TextEncoder().encode(JSON.stringify(m)), plugin);
  const hear = () => new TextDecoder().decode(sys.recv(control, 4096));
  const pluginReports: string[] = [];

  tell({ phase: 'granted', read, readGrant, owner: name });
  pluginReports.push(hear());
  const revoked = sys.revoke(notices, args.plugin.name);
  log(`revoked ${revoked} grant(s)`);
  tell({ phase: 'revoked', owner: name });
  pluginReports.push(hear());

  const remaining: string[] = [];
  for (;;) {
    try {
      remaining.push(new TextDecoder().decode(sys.recv(notices, 100, MSG_DONTWAIT)));
    } catch {
      break;
    }
  }
  const now = sys.getsockname(notices);
  const checks = {
    'SO_RCVTIMEO as set': sys.getsockopt(notices, SOL_SOCKET, SO_RCVTIMEO) === TIMEO,
    'blocking mode': sys.fcntl(notices, F_GETFL) === 0,
    'same address': now.addr === at.addr && now.port === at.port,
  };
  sys.close(notices);
  sys.close(control);
  return { granted: { read, readGrant }, revoked, remaining, checks, pluginReports };
});
