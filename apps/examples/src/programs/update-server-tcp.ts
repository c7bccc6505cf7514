/**
 * The update server over TCP: for each connection that asks "GET", sends the
 * image's size and SHA-256 and then the image; stops once a client has said
 * "BYE" after its download. Anyone may download (firmware is public); what
 * matters is that nobody can tamper with the OTA's download.
 */
import { createHash } from 'node:crypto';
import { AF_INET, defineProgram, SOCK_STREAM } from '@moat/libc';
import { firmwareImage } from './update-server.js';

export interface UpdateServerTcpArgs {
  port: number;
  imageBytes: number;
  seed: number;
}

export default defineProgram<UpdateServerTcpArgs>(({ sys, args, log }) => {
  const image = firmwareImage(args.imageBytes, args.seed);
  const header = new Uint8Array(4 + 32);
  new DataView(header.buffer).setUint32(0, image.length);
  header.set(createHash('sha256').update(image).digest(), 4);
  const l = sys.socket(AF_INET, SOCK_STREAM);
  sys.bind(l, { addr: '0.0.0.0', port: args.port });
  sys.listen(l, 8);
  log(`serving ${image.length} bytes over TCP on port ${args.port}`);
  let served = 0;
  let other = 0;
  for (let done = false; !done; ) {
    const { handle } = sys.accept(l);
    try {
      const request = new TextDecoder().decode(sys.recv(handle, 16));
      if (request !== 'GET') {
        other++;
        continue;
      }
      sys.send(handle, header);
      sys.send(handle, image);
      served++;
      done = new TextDecoder().decode(sys.recv(handle, 16)) === 'BYE';
    } catch {
      other++; // a client that reset its connection: serve the next one
    } finally {
      sys.close(handle);
    }
  }
  sys.close(l);
  return { served, otherConnections: other };
});
