/** An in-process kernel with domains whose channel ends are plain functions, for unit tests. */
import { decodeFrame, encodeRequest, RING_SIGNAL_BYTES, SendRingReader, SendRingWriter, SYS, type Reply, type SyscallName } from '@moat/abi';
import { Kernel, type KernelOptions, type Limits } from '../src/index.js';

export interface TestDomain {
  name: string;
  /** Sends a well-formed request and resolves with [errno, result]. */
  call(name: SyscallName, ...args: unknown[]): Promise<[number, any]>;
  /** Submits any message as it is; resolves with the next reply. */
  raw(message: unknown): Promise<Reply>;
  replies: Reply[];
  /** Every reply frame exactly as the kernel posted it. */
  frames: Uint8Array[];
  /** With `ring`: the domain's end of its send ring, and its signal (to write junk into). */
  ring?: { writer: SendRingWriter; signal: SharedArrayBuffer; doorbell(): void };
}

export function kernelWithDomains(options: KernelOptions = {}) {
  const kernel = new Kernel(options);
  let nextId = 1;
  /** `ring`: the domain has a send ring, as a worker domain outside lockstep does (see @moat/abi's send-ring). */
  const attach = (name: string, limits: Partial<Limits> = {}, options: Parameters<Kernel['attach']>[3] = {}, ring = false): TestDomain => {
    const signal = ring ? new SharedArrayBuffer(RING_SIGNAL_BYTES) : undefined;
    const waiting = new Map<number, (r: Reply) => void>();
    const anyReply: ((r: Reply) => void)[] = [];
    const replies: Reply[] = [];
    const frames: Uint8Array[] = [];
    const d = kernel.attach(
      name,
      {
        post(frame) {
          frames.push(frame);
          const reply = decodeFrame(frame) as Reply;
          replies.push(reply);
          const w = waiting.get(reply[0]);
          if (w) {
            waiting.delete(reply[0]);
            w(reply);
          } else anyReply.shift()?.(reply);
        },
        ring: signal && SendRingReader.of(signal),
      },
      limits,
      options,
    );
    return {
      name,
      replies,
      frames,
      ring: signal && { writer: SendRingWriter.of(signal)!, signal, doorbell: () => kernel.ringDoorbell(d) },
      call(sys, ...args) {
        const id = nextId++;
        return new Promise((resolve) => {
          waiting.set(id, (r) => resolve([r[1], r[2]]));
          kernel.submit(d, encodeRequest(id, SYS[sys], args));
        });
      },
      raw(message) {
        return new Promise((resolve) => {
          anyReply.push(resolve);
          kernel.submit(d, message);
        });
      },
    };
  };
  return { kernel, attach };
}
