/**
 * Bytes from hex text. Whitespace and `#` comments (to the end of the line)
 * are ignored, so golden packets can be written out field by field.
 */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/#.*$/gm, '').replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(digits)) throw new Error(`bad hex: ${digits}`);
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/** A copy of `bytes` at a non-zero offset of a larger buffer, to check that parsers respect views. */
export function atOffset(bytes: Uint8Array, offset = 3): Uint8Array {
  const backing = new Uint8Array(offset + bytes.length + offset).fill(0xee);
  backing.set(bytes, offset);
  return backing.subarray(offset, offset + bytes.length);
}
