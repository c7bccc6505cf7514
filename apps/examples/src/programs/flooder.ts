/**
 * A syscall flooder: between a 'start' and a 'stop' datagram on its control
 * port it issues null syscalls as fast as it can, either blocking ones back
 * to back ('sync') or asynchronous ones, about `inFlight` of them in flight at
 * all times ('async'). After 'stop' it answers with what it did; 'end' ends it.
 */
import { encodeRequest, SYS } from '@moat/abi/core';
import { AF_INET, defineProgram, errnoOf, MSG_DONTWAIT, SOCK_DGRAM, type SockAddr } from '@moat/libc';

/** The call id of the raw requests: far above the channel's own, so their replies match no call of its own and are dropped. */
const RAW_ID = 0xf0000000;

export interface FlooderArgs {
  controlPort: number;
  mode: 'sync' | 'async';
  /** Async mode: null requests kept in flight (between half and all of this many). */
  inFlight?: number;
}

export interface FloodReport {
  mode: 'sync' | 'async';
  /** Calls completed during floods, in all. */
  calls: number;
  /** Halves whose closing call was refused with EAGAIN (beyond its pending-call share). */
  eagain: number;
  /** Milliseconds spent flooding, in all. */
  ms: number;
  floods: number;
}

export default defineProgram<FlooderArgs>(async ({ sys, async, channel, args, log }) => {
  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(control, { addr: '127.0.0.1', port: args.controlPort });
  log('loaded');
  const report: FloodReport = { mode: args.mode, calls: 0, eagain: 0, ms: 0, floods: 0 };
  const answer = (to: SockAddr, text: string) => sys.sendto(control, new TextEncoder().encode(text), to);
  for (;;) {
    const { data, from } = sys.recvfrom(control, 64);
    const command = new TextDecoder().decode(data);
    if (command === 'end') break;
    if (command !== 'start') continue;
    report.floods++;
    const began = performance.now();
    answer(from, 'flooding');
    if (args.mode === 'sync') {
      // Blocking calls back to back; a look at the control socket every 16 (under a flood each call may take milliseconds).
      for (let stop = false; !stop; ) {
        for (let i = 0; i < 16; i++) sys.null();
        report.calls += 16;
        stop = errnoOf(() => sys.recv(control, 64, MSG_DONTWAIT)) === 0;
      }
    } else {
      // Null requests posted pre-encoded, back to back (so the flood costs the kernel far more than
      // this thread), in two halves of `inFlight`, each closed by an ordinary call: the kernel serves a
      // domain's requests in order, so when that call returns its half has been answered, and the
      // next half is already queued behind it. The kernel never runs out of this domain's calls.
      const half = Math.max(1, Math.floor((args.inFlight ?? 1000) / 2));
      const frame = encodeRequest(RAW_ID, SYS.null, []);
      let stop = false;
      const stopped = async.recv(control, 64).then(() => (stop = true));
      const postHalf = () => {
        for (let i = 0; i < half; i++) channel.rawPost(frame); // copied as it is posted
        return async.null().then(
          () => void (report.calls += half + 1),
          (err: { code?: string }) => {
            if (err.code !== 'EAGAIN') throw err;
            report.eagain++;
          },
        );
      };
      let previous = postHalf();
      while (!stop) {
        const next = postHalf();
        await previous;
        previous = next;
      }
      await previous;
      await stopped;
    }
    report.ms += performance.now() - began;
    answer(from, JSON.stringify(report));
  }
  sys.close(control);
  report.ms = Math.round(report.ms);
  return report;
});
