/**
 * The OTA download protocol over UDP, shared by the OTA and update-server
 * programs. The client asks for the image's metadata, then for ranges of
 * chunks; lost chunks are asked for again. Every message is one datagram.
 */
export const MSG_HELLO = 1; // client -> server: []
export const MSG_META = 2; // server -> client: [size u32][chunkSize u32][chunks u32][sha256 32 bytes]
export const MSG_GET = 3; // client -> server: [first u32][count u32]
export const MSG_CHUNK = 4; // server -> client: [index u32][data]
export const MSG_BYE = 5; // client -> server: []

export interface Meta {
  size: number;
  chunkSize: number;
  chunks: number;
  sha256: Uint8Array;
}

export function encode(type: number, ...words: number[]): Uint8Array {
  const out = new Uint8Array(1 + 4 * words.length);
  const view = new DataView(out.buffer);
  out[0] = type;
  words.forEach((w, i) => view.setUint32(1 + 4 * i, w));
  return out;
}

export function word(msg: Uint8Array, i: number): number {
  return new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getUint32(1 + 4 * i);
}

export function encodeMeta(m: Meta): Uint8Array {
  const out = new Uint8Array(13 + 32);
  out.set(encode(MSG_META, m.size, m.chunkSize, m.chunks));
  out.set(m.sha256, 13);
  return out;
}

export function decodeMeta(msg: Uint8Array): Meta | undefined {
  if (msg[0] !== MSG_META || msg.length !== 45) return undefined;
  return { size: word(msg, 0), chunkSize: word(msg, 1), chunks: word(msg, 2), sha256: msg.slice(13) };
}

export function encodeChunk(index: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out.set(encode(MSG_CHUNK, index));
  out.set(data, 5);
  return out;
}
