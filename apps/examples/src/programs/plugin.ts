/**
 * How an updater starts its bundled third-party library and waits for its
 * start-up to end: a datagram to the library's port, and the library's answer
 * (given up after 10 s).
 */
import { AF_INET, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET, type SockAddr, type SyncSockets } from '@moat/libc';

/** Starts the plugin at `addr`; returns the socket to wait on, or undefined without one. */
export function startPlugin(sys: SyncSockets, addr: SockAddr | null): number | undefined {
  if (!addr) return undefined;
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.connect(s, addr);
  sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, 10_000);
  sys.send(s, new Uint8Array([1]));
  return s;
}

/** Waits for the plugin's answer; true if it came, false if it did not, undefined without a plugin. */
export function awaitPlugin(sys: SyncSockets, s: number | undefined): boolean | undefined {
  if (s === undefined) return undefined;
  try {
    sys.recv(s, 16);
    return true;
  } catch {
    return false;
  } finally {
    sys.close(s);
  }
}
