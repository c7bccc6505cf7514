/**
 * The update server: serves a firmware image, made deterministically from a
 * seed, to whoever asks, in chunks, until the client says goodbye.
 */
import { createHash } from 'node:crypto';
import { AF_INET, defineProgram, SOCK_DGRAM } from '@moat/libc';
import { seededBytes } from './library-kit.js';
import { encodeChunk, encodeMeta, MSG_BYE, MSG_GET, MSG_HELLO, word } from './protocol.js';

export interface UpdateServerArgs {
  port: number;
  imageBytes: number;
  chunkBytes: number;
  seed: number;
}

/** The image: SHA-256 in counter mode over the seed, so any size is cheap and reproducible. */
export function firmwareImage(bytes: number, seed: number): Uint8Array {
  return seededBytes('moat-firmware', seed, bytes);
}

export default defineProgram<UpdateServerArgs>(({ sys, args, log }) => {
  const image = firmwareImage(args.imageBytes, args.seed);
  const chunks = Math.ceil(image.length / args.chunkBytes);
  const meta = encodeMeta({
    size: image.length,
    chunkSize: args.chunkBytes,
    chunks,
    sha256: createHash('sha256').update(image).digest(),
  });
  const s = sys.socket(AF_INET, SOCK_DGRAM);
  sys.bind(s, { addr: '0.0.0.0', port: args.port });
  log(`serving ${image.length} bytes in ${chunks} chunks on port ${args.port}`);
  let chunksSent = 0;
  let requests = 0;
  for (;;) {
    const { data, from } = sys.recvfrom(s, 64);
    requests++;
    if (data[0] === MSG_HELLO) sys.sendto(s, meta, from);
    else if (data[0] === MSG_GET && data.length === 9) {
      const first = word(data, 0);
      const last = Math.min(chunks, first + word(data, 1));
      for (let i = first; i < last; i++) {
        sys.sendto(s, encodeChunk(i, image.subarray(i * args.chunkBytes, (i + 1) * args.chunkBytes)), from);
        chunksSent++;
      }
    } else if (data[0] === MSG_BYE) break;
  }
  sys.close(s);
  return { requests, chunksSent };
});
