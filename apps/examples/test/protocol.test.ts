import { describe, expect, it } from 'vitest';
import { decodeMeta, encode, encodeChunk, encodeMeta, MSG_CHUNK, MSG_GET, word } from '../src/programs/protocol.js';
import { firmwareImage } from '../src/programs/update-server.js';

describe('OTA protocol', () => {
  it('round-trips metadata and rejects anything else', () => {
    const meta = { size: 4 << 20, chunkSize: 8192, chunks: 512, sha256: new Uint8Array(32).fill(7) };
    expect(decodeMeta(encodeMeta(meta))).toEqual(meta);
    expect(decodeMeta(encode(MSG_GET, 1, 2))).toBeUndefined();
    expect(decodeMeta(encodeMeta(meta).subarray(0, 44))).toBeUndefined();
  });

  it('frames requests and chunks big-endian', () => {
    const get = encode(MSG_GET, 3, 16);
    expect([...get]).toEqual([MSG_GET, 0, 0, 0, 3, 0, 0, 0, 16]);
    const chunk = encodeChunk(258, new Uint8Array([9, 8]));
    expect(chunk[0]).toBe(MSG_CHUNK);
    expect(word(chunk, 0)).toBe(258);
    expect([...chunk.subarray(5)]).toEqual([9, 8]);
  });
});

describe('firmware image', () => {
  it('is the same for a seed and differs between seeds', () => {
    expect(firmwareImage(100, 1)).toEqual(firmwareImage(100, 1));
    expect(firmwareImage(100, 1)).not.toEqual(firmwareImage(100, 2));
    expect(firmwareImage(1000, 1).subarray(0, 100)).toEqual(firmwareImage(100, 1));
  });
});
