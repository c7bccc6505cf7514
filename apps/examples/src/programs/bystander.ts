/**
 * The bystander of grant-revoke: the plugin passes it a READ grant it derived
 * from its own. While the plugin's grant stands, it may read through it (and
 * nothing more); once the OTA has revoked the plugin's grant, what the plugin
 * passed on must be gone too, or the plugin could have kept its access by
 * lending it to a domain the owner never dealt with.
 */
import { AF_INET, defineProgram, Errno, errnoName, errnoOf, MSG_DONTWAIT, POLLIN, POLLNVAL, Rights, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET } from '@moat/libc';
import { attempt, record, type Attempt } from './library-kit.js';
import type { BystanderMessage } from './grantee.js';

export interface BystanderArgs {
  controlPort: number;
}

export interface BystanderResult {
  attempts: Attempt[];
  /** What it read while granted, and anything it could still read after the revoke. */
  read: string[];
}

export default defineProgram<BystanderArgs, BystanderResult>(({ sys, args, log }) => {
  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(control, { addr: '127.0.0.1', port: args.controlPort });
  sys.setsockopt(control, SOL_SOCKET, SO_RCVTIMEO, 10_000);
  log('loaded');
  const attempts: Attempt[] = [];
  const read: string[] = [];
  const granted = attempt(attempts, 'derived grant, while it stands', 'read: allowed; write and grant: EACCES');
  const revoked = attempt(attempts, 'derived grant, after the revoke', "read and poll on what the plugin passed on, after the OTA revoked the plugin's grant: EBADF, POLLNVAL");
  const tryRead = (h: number) =>
    errnoOf(() => {
      read.push(new TextDecoder().decode(sys.recv(h, 100, MSG_DONTWAIT)));
    });
  for (let round = 0; round < 2; round++) {
    const { data, from } = sys.recvfrom(control, 4096);
    const m = JSON.parse(new TextDecoder().decode(data)) as BystanderMessage;
    let report: string;
    if (m.phase === 'granted') {
      const errno = tryRead(m.handle);
      record(granted, errno === 0 ? 'OK' : errnoName(errno), false);
      const write = errnoOf(() => sys.sendto(m.handle, new Uint8Array(4), { addr: '127.0.0.1', port: 9 }));
      record(granted, write === 0 ? 'OK' : errnoName(write), write !== Errno.EACCES);
      const regrant = errnoOf(() => sys.grant(m.handle, 'nobody-else', Rights.READ));
      record(granted, regrant === 0 ? 'OK' : errnoName(regrant), regrant === 0);
      report = `granted: read ${errno === 0 ? `"${read.at(-1)}"` : errnoName(errno)}, write ${errnoName(write)}`;
    } else {
      const errno = tryRead(m.handle);
      record(revoked, errno === 0 ? 'OK' : errnoName(errno), errno !== Errno.EBADF);
      const [revents] = sys.poll([{ handle: m.handle, events: POLLIN }], 0);
      record(revoked, revents === POLLNVAL ? 'POLLNVAL' : `revents ${revents}`, revents !== POLLNVAL);
      report = `revoked: read ${errno === 0 ? `"${read.at(-1)}" (STILL READABLE)` : errnoName(errno)}, poll ${revents === POLLNVAL ? 'POLLNVAL' : revents}`;
    }
    log(report);
    sys.sendto(control, new TextEncoder().encode(report), from);
  }
  sys.close(control);
  return { attempts, read };
});
