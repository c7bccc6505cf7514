/**
 * The kernel worker's entry: a Kernel per simulated machine (one, or in
 * lockstep every machine of the run), driven by the host's control messages
 * and by the frames arriving on each domain's channel.
 */
import { createHash } from 'node:crypto';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { isLogNotice, isRestNotice, isRingDoorbell, SendRingReader, peekCallId, REPLY_SLOT_BYTES, REPLY_SLOT_OFFSET, SIGNAL_BLOCKING, postFrame, postReply, VIRTUAL_CLOCK_OFFSET, SIGNAL_REPLY_LENGTH, SIGNAL_REPLY_START, SIGNAL_SLEEPING, SIGNAL_WAITING, SIGNAL_WAKE, UNKNOWN_CALL_ID } from '@moat/abi';
import { Kernel } from './kernel.js';
import { LocalWire, SimWire } from './drivers/sim-wire.js';
import { Conductor, DomainRest } from './lockstep.js';
import { UdpWire } from './drivers/udp-wire.js';
import type { ControlReply, ControlRequest, KernelTimeline, KernelWorkerData } from './control.js';

if (!parentPort) throw new Error('@moat/kernel/worker must run in a worker thread');
const host = parentPort;
const config = (workerData ?? {}) as KernelWorkerData;
/**
 * Lockstep: every kernel of the run lives in this worker under one conductor
 * and one virtual clock (lockstep.ts); the host adds the other machines with
 * the addMachine op and joins them with the link op.
 */
const conductor = config.lockstep ? new Conductor() : undefined;

/** One simulated machine of this worker: its kernel and its domains' channels. */
interface Hosted {
  kernel: Kernel;
  ports: Map<string, MessagePort>;
  /** Where the kernel's clock starts, on this worker's performance.now() base (lockstep's virtual 0 maps here). */
  startedAtReal: number;
}
const machines = new Map<string, Hosted>();
const firstMachine = addMachine(config);

function addMachine(options: KernelWorkerData): string {
  const name = options.machineName ?? 'machine';
  if (machines.has(name)) throw new Error(`a machine named ${name} is already in this worker`);
  if (!!options.lockstep !== !!conductor) throw new Error(`machine ${name}: a worker's machines are all lockstep or none`);
  const kernel = new Kernel({
    lockstep: !!conductor,
    conductor,
    // In lockstep the ISN secret follows from the seed and the machine's name, so a replay makes the same sequence numbers.
    isnKey: conductor ? createHash('sha256').update(`moat isn|${options.seed ?? 1}|${name}`).digest().subarray(0, 16) : undefined,
    machineName: options.machineName,
    poolBytes: options.poolBytes,
    malformedLimit: options.malformedLimit,
    interfaces: options.interfaces,
    gateway: options.gateway,
    captureDir: options.captureDir,
    trace: options.trace,
    traceEvents: options.traceEvents,
    tracePackets: options.tracePackets,
    afterRound: flushWakes,
    onOops: (domain, reason) => host.postMessage({ event: 'oops', machine: name, domain, reason } satisfies ControlReply),
    onKill: (domain, reason) => host.postMessage({ event: 'kill', machine: name, domain, reason } satisfies ControlReply),
  });
  machines.set(name, { kernel, ports: new Map(), startedAtReal: performance.now() });
  return name;
}

/**
 * Wake-up words to bump once the kernel has finished the round of serving
 * that answered them. Waking a domain is a futex wake, and on a machine with
 * fewer free cores than busy threads the woken domain takes the kernel's
 * core at once: the kernel would finish its round (the stack's poll, which
 * completes the peer's recv) only after the domain yields. The kernel
 * flushes them after each round (afterRound); replies made outside a drain
 * (timeouts, deaths) are flushed by a microtask, after the event.
 */
// The first `wakeCount` entries, each word once: an array and a count, not a Set, whose clear() is a call
// into V8's runtime that makes a new table, once per reply (it showed in a profile of null calls).
const wakes: (Int32Array | undefined)[] = [];
let wakeCount = 0;
let flushQueued = false;
function flushWakes(): void {
  for (let i = 0; i < wakeCount; i++) {
    const w = wakes[i]!;
    wakes[i] = undefined; // a departed domain's signal (and its reply slot and ring) is not kept alive here
    Atomics.add(w, SIGNAL_WAKE, 1);
    // Only a domain asleep in Atomics.wait needs the notify (SIGNAL_SLEEPING); one that waits for promised replies is woken by the post.
    // A bare 4-byte signal (no slot) has no such word: always notified.
    if (w.length <= SIGNAL_SLEEPING || Atomics.load(w, SIGNAL_SLEEPING) !== 0) Atomics.notify(w, SIGNAL_WAKE);
  }
  wakeCount = 0;
}
function wakeLater(word: Int32Array, kernel: Kernel): void {
  for (let i = 0; i < wakeCount; i++) if (wakes[i] === word) return;
  wakes[wakeCount++] = word;
  // In a round, the round's own flush comes (afterRound): a promise reaction per reply cost a null call 0.3-0.65 µs.
  if (flushQueued || kernel.inRounds) return;
  flushQueued = true;
  // A promise's reaction, not queueMicrotask: Node makes an AsyncResource for each of those, on every reply.
  void Promise.resolve().then(flushQueuedWakes);
}
function flushQueuedWakes(): void {
  flushQueued = false;
  flushWakes();
}

host.on('message', async (req: ControlRequest) => {
  try {
    await control(req);
  } catch (err) {
    host.postMessage({ id: req.id, error: String((err as Error)?.message ?? err) } satisfies ControlReply);
  }
  // Lockstep: whatever the host did (an attach, a detach, a hold) may let the conductor go on.
  conductor?.advance();
});

function machineOf(name: string | undefined): Hosted {
  const m = machines.get(name ?? firstMachine);
  if (!m) throw new Error(`no machine named ${name} in this kernel worker`);
  return m;
}

async function control(req: ControlRequest): Promise<void> {
  if (req.op === 'addMachine') return answer(req.id, addMachine(req.options));
  if (req.op === 'link') return link(req);
  const { kernel, ports, startedAtReal } = machineOf(req.machine);
  switch (req.op) {
    case 'attach':
      // In lockstep, at the conductor's next rest, so the domain joins at the same point every run.
      return kernel.whenAtRest(req.name, () => {
        try {
          attach(kernel, ports, req);
        } catch (err) {
          host.postMessage({ id: req.id, error: String((err as Error)?.message ?? err) } satisfies ControlReply);
        }
      });
    case 'detach': {
      if (conductor) {
        // What the domain posted before it ended comes first (a line it logged, say): the host's word of its end
        // and its last messages come by different ports, in either order.
        const port = ports.get(req.name);
        if (port) drainOf.get(port)?.();
        // Carried out when no domain runs, in attach order (Kernel.detachInStep), which also records the exit.
        kernel.detachInStep(
          req.name,
          req.reason,
          (stats) => {
            ports.get(req.name)?.close();
            ports.delete(req.name);
            answer(req.id, stats);
          },
          req.restartAfterMs,
        );
        return;
      }
      // The host's account of how the domain ended: the kernel has often released
      // it already, when its channel closed, and its own 'detach' says only that.
      kernel.recorder?.lifecycle(req.name, 'exit', { reason: req.reason });
      const stats = kernel.detach(req.name, req.reason);
      ports.get(req.name)?.close();
      ports.delete(req.name);
      return answer(req.id, stats);
    }
    case 'wire': {
      const w = req.wire;
      // Frames from another worker or a real network arrive whenever they arrive: lockstep links are the link op's.
      if (conductor) throw new Error(`interface ${req.iface}: a lockstep kernel takes links to machines of its own worker only (the link op), not a ${w.kind} wire`);
      const port = kernel.portOf(req.iface);
      // A UDP wire binds first, so a bad address is the host's error, not a silently dead link.
      const wire = w.kind === 'sim' ? new SimWire(w.port, w.faults, w.seed, kernel.now(), port) : await UdpWire.open(w, port);
      kernel.attachWire(req.iface, wire);
      return answer(req.id, true);
    }
    case 'fault': {
      const { name, kind, atCall, afterMs } = req;
      kernel.injectFault(name, { kind, atCall, afterMs });
      return answer(req.id, true);
    }
    case 'expect':
      if (!conductor) throw new Error('expect: this kernel is not in lockstep');
      for (const a of req.attaches ?? []) conductor.expectAttach(a.name, { after: a.after });
      if (req.awaited) kernel.expectEnd(req.awaited);
      return answer(req.id, true);
    case 'cancelAttach':
      conductor?.cancelAttach(req.name);
      return answer(req.id, true);
    case 'hold':
      // Every kernel of the run at once: the first machine the host asks stops them all.
      (conductor ?? kernel).hold();
      return answer(req.id, true);
    case 'poolFault':
      kernel.pool.failAllocations({ at: req.at, count: req.count });
      return answer(req.id, true);
    case 'stats':
      return answer(req.id, kernel.stats());
    case 'timeline': {
      // The kernel's clock here is this worker's performance.now(); in lockstep, virtual ms from startedAtReal.
      const startedAt = (kernel.recorder?.startedAt ?? 0) + (conductor ? startedAtReal : 0);
      return answer(req.id, { ...kernel.timeline(), startedAtEpochMs: performance.timeOrigin + startedAt, recording: !!kernel.recorder, ...(conductor ? { virtual: true } : {}) } satisfies KernelTimeline);
    }
    case 'shutdown':
      kernel.shutdown();
      for (const port of ports.values()) port.close();
      return answer(req.id, true);
  }
}

/** Joins two interfaces of this worker's machines by a simulated link (lockstep: LocalWire, no MessagePort between them). */
function link(req: Extract<ControlRequest, { op: 'link' }>): void {
  const [a, b] = req.ends.map((end) => ({ end, kernel: machineOf(end.machine).kernel }));
  const portA = a!.kernel.portOf(a!.end.iface);
  const portB = b!.kernel.portOf(b!.end.iface);
  a!.kernel.attachWire(a!.end.iface, new LocalWire(req.faults, req.seeds[0], a!.kernel.now(), portB));
  b!.kernel.attachWire(b!.end.iface, new LocalWire(req.faults, req.seeds[1], b!.kernel.now(), portA));
  answer(req.id, true);
}

/** Takes a domain's channel's pending messages now, as its 'message' events would later (see the lockstep detach). */
const drainOf = new WeakMap<MessagePort, () => void>();

function attach(kernel: Kernel, ports: Map<string, MessagePort>, req: Extract<ControlRequest, { op: 'attach' }>): void {
  const { name, port, signal, limits, watchdogMs, faults } = req;
  const wake = new Int32Array(signal);
  // The reply slot (see CHANNEL_SIGNAL_BYTES): a copy into shared memory costs the kernel less than a message.
  const slot = signal.byteLength >= REPLY_SLOT_OFFSET + REPLY_SLOT_BYTES ? new Uint8Array(signal, REPLY_SLOT_OFFSET, REPLY_SLOT_BYTES) : undefined;
  // Lockstep: the domain's clocks read the virtual time of the last answer it had (VIRTUAL_CLOCK_OFFSET).
  const clock = conductor && signal.byteLength >= VIRTUAL_CLOCK_OFFSET + 8 ? new Float64Array(signal, VIRTUAL_CLOCK_OFFSET, 1) : undefined;
  if (clock) clock[0] = kernel.now();
  // A worker domain's send ring, outside lockstep (where each record's timing would enter the run); see @moat/abi's send-ring.
  const ring = conductor ? undefined : SendRingReader.of(signal);
  // The slot, taken for call `callId`'s reply if the domain waits for that call and the slot is free. Taken back with
  // the compare-and-exchange: no other reply can land in it meanwhile, and one that does not fit it after all goes on
  // the port (the domain reads both).
  const claimSlot = (callId: number): Uint8Array | undefined => {
    if (!slot || callId === UNKNOWN_CALL_ID || Atomics.load(wake, SIGNAL_REPLY_LENGTH) !== 0) return undefined;
    // Looked at before the locked exchange, which an async call's reply (nothing waits in the slot) need not pay.
    if (Atomics.load(wake, SIGNAL_WAITING) !== (callId | 0)) return undefined;
    return Atomics.compareExchange(wake, SIGNAL_WAITING, callId | 0, 0) === (callId | 0) ? slot : undefined;
  };
  /** Before any reply to `callId` leaves: the domain's virtual clock, and lockstep's count of what it awaits. */
  const replying = (callId: number): void => {
    if (clock) clock[0] = kernel.now();
    d.rest?.onReply(callId);
  };
  const d = kernel.attach(name, {
    ring,
    wake: () => wakeLater(wake, kernel),
    // Lockstep takes requests as their events come, never ahead of them: pulling would let arrival timing in.
    pull: conductor ? undefined : () => takePending(),
    slotFor: claimSlot,
    post(frame, callId = UNKNOWN_CALL_ID, inSlot = false) {
      replying(callId);
      // Told, not found out from frame.buffer: reading a small frame's buffer would give it one (see postFrame).
      if (inSlot && slot) {
        // Written in place (slotFor): from its start, or around data read into the slot first (SIGNAL_REPLY_START).
        Atomics.store(wake, SIGNAL_REPLY_START, frame.byteOffset - slot.byteOffset);
        Atomics.store(wake, SIGNAL_REPLY_LENGTH, frame.byteOffset - slot.byteOffset + frame.byteLength);
      } else if (slot && frame.byteLength <= slot.byteLength && claimSlot(callId)) {
        // A frame made on its own (a fault's delivery): copied in.
        slot.set(frame);
        Atomics.store(wake, SIGNAL_REPLY_START, 0);
        Atomics.store(wake, SIGNAL_REPLY_LENGTH, frame.byteLength);
      } else postFrame(port, frame);
      // Wake the domain if it is blocked in a synchronous call.
      wakeLater(wake, kernel);
    },
    postReply(callId, errno, result) {
      replying(callId);
      postReply(port, callId, errno, result);
      wakeLater(wake, kernel);
    },
  }, limits, { watchdogMs, faults });
  // Lockstep: a worker's channel says when it waits (DomainRest); a process domain's bridge does not.
  const rest = conductor && req.reportsRest ? (d.rest = new DomainRest()) : undefined;
  const onMessage = (m: unknown): void => {
    if (rest) {
      if (isRestNotice(m)) return void (rest.noticed(m), conductor!.advance());
      if (isLogNotice(m)) {
        kernel.recorder?.log(name, m.log);
        return void conductor!.logged(name, m.log);
      }
      rest.onMessage(Atomics.load(wake, SIGNAL_BLOCKING), m instanceof Uint8Array ? peekCallId(m) : UNKNOWN_CALL_ID);
    }
    if (ring && isRingDoorbell(m)) return kernel.ringDoorbell(d);
    kernel.submit(d, m, true);
    conductor?.advance();
  };
  /** The messages that have arrived but not been delivered as events yet, taken now as their events would take them. */
  const takePending = (): void => {
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) onMessage(m.message);
  };
  port.on('message', onMessage);
  drainOf.set(port, takePending);
  // Lockstep waits for the host's detach instead, which comes in any case and carries the reason.
  if (!conductor) port.on('close', () => kernel.detach(name, 'channel closed'));
  ports.set(name, port);
  answer(req.id, true);
}

function answer(id: number, value: unknown): void {
  host.postMessage({ id, value } satisfies ControlReply);
}
