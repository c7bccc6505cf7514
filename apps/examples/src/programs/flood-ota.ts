/**
 * The OTA of syscall-flood: a request/response loop with an echo service
 * (a null call, a send, a receive of the echo), each call timed. It runs the
 * loop in quiet and flooded phases, alternating (quiet, flood, quiet, flood)
 * so a change in the machine's load during the run weighs on both alike;
 * before a flooded phase it tells the flooders to start and waits until each
 * says it is flooding, after it tells them to stop and collects their
 * reports.
 */
import { AF_INET, defineProgram, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET, type SockAddr } from '@moat/libc';
import type { FloodReport } from './flooder.js';

export interface FloodOtaArgs {
  echo: SockAddr;
  flooders: SockAddr[];
  /** Timed round trips per phase (there are two phases of each kind). */
  iterations: number;
  /** A phase ends after this long even if it has not made all its round trips (a starved OTA would take minutes). */
  phaseMs: number;
  warmup: number;
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface FloodOtaResult {
  /** Microseconds. `syscall` pools the null calls and the sends (the receive waits for the echo's own calls too). */
  quiet: Record<'null' | 'send' | 'syscall' | 'roundTrip', LatencySummary>;
  flood: Record<'null' | 'send' | 'syscall' | 'roundTrip', LatencySummary>;
  /** Echoes that came back with other bytes than were sent (must be none). */
  wrongEchoes: number;
  flooders: FloodReport[];
  ms: number;
}

export default defineProgram<FloodOtaArgs, FloodOtaResult>(({ sys, args, log }) => {
  const started = performance.now();
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.connect(s, args.echo);
  sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, 10_000);
  const control = sys.socket(AF_INET, SOCK_DGRAM);
  sys.setsockopt(control, SOL_SOCKET, SO_RCVTIMEO, 10_000);
  const request = new Uint8Array(64);
  const view = new DataView(request.buffer);
  let wrongEchoes = 0;
  let seq = 0;
  type Samples = { null: number[]; send: number[]; roundTrip: number[] };
  const phase = (into: Samples | undefined, n: number) => {
    const until = performance.now() + args.phaseMs;
    for (let i = 0; i < n && performance.now() < until; i++) {
      view.setUint32(0, ++seq);
      const t0 = performance.now();
      sys.null();
      const t1 = performance.now();
      sys.send(s, request);
      const t2 = performance.now();
      const echo = sys.recv(s, 128);
      const t3 = performance.now();
      if (echo.length !== request.length || new DataView(echo.buffer, echo.byteOffset).getUint32(0) !== seq) wrongEchoes++;
      if (into) {
        into.null.push((t1 - t0) * 1000);
        into.send.push((t2 - t1) * 1000);
        into.roundTrip.push((t3 - t1) * 1000);
      }
    }
  };
  const tellAll = (command: string): string[] =>
    args.flooders.map((f) => {
      sys.sendto(control, new TextEncoder().encode(command), f);
      return new TextDecoder().decode(sys.recv(control, 4096));
    });

  phase(undefined, args.warmup);
  const quiet: Samples = { null: [], send: [], roundTrip: [] };
  const flood: Samples = { null: [], send: [], roundTrip: [] };
  let reports: FloodReport[] = [];
  for (let round = 0; round < 2; round++) {
    phase(quiet, args.iterations);
    tellAll('start');
    phase(flood, args.iterations);
    reports = tellAll('stop').map((r) => JSON.parse(r) as FloodReport);
  }
  for (const f of args.flooders) sys.sendto(control, new TextEncoder().encode('end'), f);
  const summarise = (x: Samples) => ({
    null: summary(x.null),
    send: summary(x.send),
    syscall: summary([...x.null, ...x.send]),
    roundTrip: summary(x.roundTrip),
  });
  const result = { quiet: summarise(quiet), flood: summarise(flood), wrongEchoes, flooders: reports, ms: Math.round(performance.now() - started) };
  log(`syscall p50/p99 quiet ${result.quiet.syscall.p50}/${result.quiet.syscall.p99} us, flooded ${result.flood.syscall.p50}/${result.flood.syscall.p99} us`);
  return result;
});

function summary(samples: number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN);
  return { samples: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: Math.round(sorted.at(-1) ?? NaN) };
}
