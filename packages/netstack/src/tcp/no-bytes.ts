/**
 * The payload of a segment that carries none: one shared, as a fresh empty
 * array per ACK is garbage per ACK. Internal to the TCP layer (the package's
 * index does not export it): a shared array must never reach a caller, who
 * could not tell it from one of its own.
 */
export const NO_BYTES = new Uint8Array(0);
