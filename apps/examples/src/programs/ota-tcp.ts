/**
 * The OTA updater over TCP: connects from a fixed local port (so the
 * scenario's attacker knows the four-tuple), asks for the image, reads its
 * size and SHA-256 and then the image as a stream, and checks it. Like the
 * UDP updater it starts the third-party library when the download begins and
 * holds its connection until the library's start-up is over.
 */
import { createHash } from 'node:crypto';
import { AF_INET, defineProgram, SOCK_STREAM, type SockAddr } from '@moat/libc';
import { awaitPlugin, startPlugin } from './plugin.js';

export interface OtaTcpArgs {
  server: SockAddr;
  /** The local port the OTA connects from. */
  port: number;
  plugin: SockAddr | null;
}

export default defineProgram<OtaTcpArgs>(({ sys, args, log }) => {
  const s = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(s, { addr: '0.0.0.0', port: args.port });
  const started = performance.now();
  sys.connect(s, args.server);
  sys.send(s, new TextEncoder().encode('GET'));
  /** Reads exactly `n` bytes (the stream may deliver them in any pieces). */
  const readExactly = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let got = 0; got < n; ) {
      const chunk = sys.recv(s, Math.min(n - got, 1 << 20));
      if (chunk.length === 0) throw new Error(`stream ended after ${got} of ${n} bytes`);
      out.set(chunk, got);
      got += chunk.length;
    }
    return out;
  };
  const header = readExactly(36);
  const size = new DataView(header.buffer, header.byteOffset).getUint32(0);
  const expected = header.slice(4);
  log(`image of ${size} bytes over TCP`);

  const plugin = startPlugin(sys, args.plugin);
  const image = readExactly(size);
  const ms = Math.round(performance.now() - started);
  const pluginAnswered = awaitPlugin(sys, plugin);
  sys.send(s, new TextEncoder().encode('BYE'));
  sys.close(s);
  const digest = createHash('sha256').update(image).digest();
  const intact = Buffer.compare(digest, expected) === 0;
  log(`image ${intact ? 'intact' : 'CORRUPT'}: sha256 ${digest.toString('hex').slice(0, 16)}...`);
  return { bytes: size, ms, pluginAnswered, foreignDatagrams: 0, sha256: digest.toString('hex'), intact };
});
