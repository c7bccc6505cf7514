/**
 * The OTA updater: downloads the firmware image from the update server over
 * UDP, asks again for chunks that were lost (a full receive FIFO drops
 * datagrams, as a real one does), and checks the image's SHA-256.
 * Its socket is connected to the server, so datagrams from anyone else are
 * never delivered to it.
 */
import { createHash } from 'node:crypto';
import { AF_INET, defineProgram, SO_RCVTIMEO, SOCK_DGRAM, SOL_SOCKET, type SockAddr } from '@moat/libc';
import { awaitPlugin, startPlugin } from './plugin.js';
import { decodeMeta, encode, MSG_BYE, MSG_CHUNK, MSG_GET, MSG_HELLO, word, type Meta } from './protocol.js';

export interface OtaArgs {
  server: SockAddr;
  /** The OTA's own port, bound on every address (fixed, so the scenario's attacker knows where to aim). */
  port: number;
  /** Chunks asked for at once. */
  window: number;
  timeoutMs: number;
  /**
   * A plugin (the third-party library) that the updater starts when its
   * download begins and waits to hear back from before it lets go of its
   * port, as an app would start a library it bundles. Null: none.
   */
  plugin: SockAddr | null;
}

export default defineProgram<OtaArgs>(({ sys, args, log }) => {
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(s, { addr: '0.0.0.0', port: args.port });
  sys.connect(s, args.server);
  sys.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, args.timeoutMs);
  let timeouts = 0;
  let foreign = 0;

  /** Receives one datagram, or undefined when the receive timeout expires. */
  const receive = (): Uint8Array | undefined => {
    try {
      const { data, from } = sys.recvfrom(s, 65536);
      // A connected socket only gets the server's datagrams; count any other (there must be none).
      if (from.addr !== args.server.addr || from.port !== args.server.port) foreign++;
      return data;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') throw err;
      timeouts++;
      return undefined;
    }
  };

  let meta: Meta | undefined;
  while (!meta) {
    sys.send(s, encode(MSG_HELLO));
    const reply = receive();
    meta = reply && decodeMeta(reply);
  }
  log(`image of ${meta.size} bytes in ${meta.chunks} chunks`);

  // Start the plugin on a socket of its own (the download socket only hears the server).
  const plugin = startPlugin(sys, args.plugin);

  const started = performance.now();
  const image = new Uint8Array(meta.size);
  const have = new Uint8Array(meta.chunks);
  let received = 0;
  let requests = 0;
  let duplicates = 0;
  let next = 0; // lowest chunk possibly missing
  while (received < meta.chunks) {
    // Ask for the next `window` missing chunks, in as few ranges as they form.
    while (have[next]) next++;
    const asked = new Set<number>();
    for (let i = next; i < meta.chunks && asked.size < args.window; i++) if (!have[i]) asked.add(i);
    for (const [first, count] of ranges([...asked])) {
      sys.send(s, encode(MSG_GET, first, count));
      requests++;
    }
    while (asked.size > 0) {
      const msg = receive();
      if (!msg) break; // some were lost: ask again for what is still missing
      if (msg[0] !== MSG_CHUNK || msg.length < 5) continue;
      const index = word(msg, 0);
      if (index >= meta.chunks || have[index]) {
        duplicates++;
        continue;
      }
      image.set(msg.subarray(5), index * meta.chunkSize);
      have[index] = 1;
      asked.delete(index);
      received++;
    }
  }
  // Hold the port until the plugin says it is done with its start-up.
  const pluginAnswered = awaitPlugin(sys, plugin);
  sys.send(s, encode(MSG_BYE));
  sys.close(s);
  const digest = createHash('sha256').update(image).digest();
  const intact = Buffer.compare(digest, meta.sha256) === 0;
  log(`image ${intact ? 'intact' : 'CORRUPT'}: sha256 ${digest.toString('hex').slice(0, 16)}...`);
  return {
    bytes: meta.size,
    ms: Math.round(performance.now() - started),
    chunks: meta.chunks,
    requests,
    timeouts,
    duplicates,
    foreignDatagrams: foreign,
    pluginAnswered,
    sha256: digest.toString('hex'),
    intact,
  };
});

/** Sorted indices as [first, count] runs of consecutive ones. */
function ranges(indices: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const i of indices) {
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === i) last[1]++;
    else out.push([i, 1]);
  }
  return out;
}
