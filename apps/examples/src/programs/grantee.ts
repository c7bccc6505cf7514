/**
 * The plugin of grant-revoke: it is lent the OTA's notice socket through two
 * grants (READ, and READ|GRANT) and tries everything with them.
 *
 * While granted: reading must work and must return the OTA's next notice;
 * poll must not report writability (no WRITE right); every write, control
 * and grant call its rights do not cover must be refused with EACCES; a
 * re-grant wider than what it holds must be refused, a narrower one (READ, to
 * the bystander domain) is allowed; closing its own entry must leave the
 * OTA's socket alive. It hands the narrowed grant to the bystander, which
 * reads through it and reports.
 *
 * After the OTA revokes: every call on either number must be refused as a
 * bad handle, and it asks the bystander to try its derived grant again.
 */
import { AF_INET, defineProgram, errnoName, errnoOf, F_SETFL, MSG_DONTWAIT, O_NONBLOCK, POLLIN, POLLNVAL, POLLOUT, Rights, RIGHTS_ALL, SHUT_RDWR, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET, type SockAddr } from '@moat/libc';
import { attempt, record, type Attempt } from './library-kit.js';
import type { GrantMessage } from './grantor-ota.js';

export interface GranteeArgs {
  controlPort: number;
  bystander: { name: string; port: number };
}

export interface BystanderMessage {
  phase: 'granted' | 'revoked';
  handle: number;
}

export interface GranteeResult {
  attempts: Attempt[];
  /** The notice it read through the READ grant. */
  readNotice: string;
  /** Its number for the READ grant it passed on to the bystander. */
  passedOn: number;
  bystanderReports: string[];
}

export default defineProgram<GranteeArgs, GranteeResult>(({ sys, args, log }) => {
  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(control, { addr: '127.0.0.1', port: args.controlPort });
  sys.setsockopt(control, SOL_SOCKET, SO_RCVTIMEO, 10_000);
  log('loaded');
  const hear = () => {
    const { data, from } = sys.recvfrom(control, 4096);
    return { text: new TextDecoder().decode(data), from };
  };
  const first = hear();
  const owner = first.from;
  const granted = JSON.parse(first.text) as GrantMessage;
  const g = granted.read!;
  const gg = granted.readGrant!;
  const attempts: Attempt[] = [];
  const refused = (a: Attempt, call: () => unknown, want: string) => {
    const errno = errnoOf(call);
    const outcome = errno === 0 ? 'OK' : errnoName(errno);
    record(a, outcome, outcome !== want);
  };
  const sink: SockAddr = { addr: '127.0.0.1', port: 9 };

  // ---- while granted ----
  const allowed = attempt(attempts, 'what READ allows', 'read the next notice; getsockname and getsockopt need no right');
  let readNotice = '';
  {
    const errno = errnoOf(() => (readNotice = new TextDecoder().decode(sys.recv(g, 100, MSG_DONTWAIT))));
    record(allowed, errno === 0 ? (readNotice === 'notice 1' ? 'OK' : 'wrong data') : errnoName(errno), false);
    record(allowed, errnoOf(() => sys.getsockname(g)) === 0 ? 'OK' : 'refused');
    record(allowed, errnoOf(() => sys.getsockopt(g, SOL_SOCKET, SO_RCVTIMEO)) === 0 ? 'OK' : 'refused');
  }
  const polled = attempt(attempts, 'poll without WRITE', 'POLLIN may show, POLLOUT must not');
  {
    const [revents] = sys.poll([{ handle: g, events: POLLIN | POLLOUT }], 0);
    record(polled, revents! & POLLOUT ? 'POLLOUT shown' : revents! & POLLIN ? 'POLLIN only' : `revents ${revents}`, (revents! & POLLOUT) !== 0);
  }
  const write = attempt(attempts, 'write without WRITE', 'sendto and send: EACCES');
  refused(write, () => sys.sendto(g, new Uint8Array(8), sink), 'EACCES');
  refused(write, () => sys.send(g, new Uint8Array(8)), 'EACCES');
  const control_ = attempt(attempts, 'control without CONTROL', 'bind, connect, listen, shutdown, setsockopt, fcntl(F_SETFL): EACCES');
  for (const h of [g, gg]) {
    refused(control_, () => sys.bind(h, { addr: '127.0.0.1', port: 0 }), 'EACCES');
    refused(control_, () => sys.connect(h, sink), 'EACCES');
    refused(control_, () => sys.listen(h, 1), 'EACCES');
    refused(control_, () => sys.shutdown(h, SHUT_RDWR), 'EACCES');
    refused(control_, () => sys.setsockopt(h, SOL_SOCKET, SO_RCVTIMEO, 1), 'EACCES');
    refused(control_, () => sys.fcntl(h, F_SETFL, O_NONBLOCK), 'EACCES');
  }
  const grantless = attempt(attempts, 'grant without GRANT', 'the READ grant passed on: EACCES');
  refused(grantless, () => sys.grant(g, args.bystander.name, Rights.READ), 'EACCES');
  const wider = attempt(attempts, 're-grant wider rights', 'READ|GRANT passed on with WRITE, CONTROL or all rights, to the bystander or back to the owner: EACCES');
  for (const rights of [Rights.WRITE, Rights.READ | Rights.WRITE, Rights.READ | Rights.CONTROL, Rights.READ | Rights.GRANT | Rights.WRITE, RIGHTS_ALL]) {
    refused(wider, () => sys.grant(gg, args.bystander.name, rights), 'EACCES');
    refused(wider, () => sys.grant(gg, granted.owner, rights), 'EACCES');
  }
  const narrow = attempt(attempts, 're-grant narrower rights', 'READ to the bystander: allowed');
  let passedOn = -1;
  {
    const errno = errnoOf(() => (passedOn = sys.grant(gg, args.bystander.name, Rights.READ)));
    record(narrow, errno === 0 ? 'OK' : errnoName(errno));
  }
  // The bystander reads through what it was passed, and reports.
  const bystander: SockAddr = { addr: '127.0.0.1', port: args.bystander.port };
  const ask = (m: BystanderMessage) => {
    sys.sendto(control, new TextEncoder().encode(JSON.stringify(m)), bystander);
    return hear().text;
  };
  const bystanderReports = [ask({ phase: 'granted', handle: passedOn })];
  const closeOwn = attempt(attempts, 'close its own entry', "closes the READ grant in its table only (the OTA's socket lives on)");
  record(closeOwn, errnoOf(() => sys.close(g)) === 0 ? 'OK' : 'refused');
  sys.sendto(control, new TextEncoder().encode(`granted phase done: read "${readNotice}", passed READ on as ${passedOn}`), owner);

  // ---- after the revoke ----
  const next = JSON.parse(hear().text) as GrantMessage;
  if (next.phase !== 'revoked') throw new Error(`expected the revoke, got ${next.phase}`);
  const after = attempt(attempts, 'use after revoke', 'every call on both numbers: EBADF, poll POLLNVAL');
  for (const h of [g, gg]) {
    refused(after, () => sys.recv(h, 100, MSG_DONTWAIT), 'EBADF');
    refused(after, () => sys.sendto(h, new Uint8Array(8), sink), 'EBADF');
    refused(after, () => sys.getsockname(h), 'EBADF');
    refused(after, () => sys.setsockopt(h, SOL_SOCKET, SO_RCVTIMEO, 1), 'EBADF');
    refused(after, () => sys.grant(h, args.bystander.name, Rights.READ), 'EBADF');
    refused(after, () => sys.revoke(h, args.bystander.name), 'EBADF');
    refused(after, () => sys.close(h), 'EBADF');
    const [revents] = sys.poll([{ handle: h, events: POLLIN | POLLOUT }], 0);
    record(after, revents === POLLNVAL ? 'POLLNVAL' : `revents ${revents}`, revents !== POLLNVAL);
  }
  bystanderReports.push(ask({ phase: 'revoked', handle: passedOn }));
  sys.sendto(control, new TextEncoder().encode(`revoked phase done: ${after.breaches} calls not refused`), owner);
  sys.close(control);
  log(`${attempts.reduce((n, a) => n + a.tries, 0)} calls, ${attempts.reduce((n, a) => n + a.breaches, 0)} against its rights`);
  return { attempts, readNotice, passedOn, bystanderReports };
});
