/**
 * A vitest setup file: every fast-check property runs from a fixed seed, so a
 * test run is the same run every time (a failure prints its seed and path).
 */
import fc from 'fast-check';

fc.configureGlobal({ seed: 0x6d6f6174 });
