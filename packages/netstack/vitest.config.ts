import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Property tests and the 16 MiB TCP transfers take seconds; CI runs packages side by side on two cores.
    testTimeout: 30_000,
    setupFiles: ['../../vitest.seed.ts'],
  },
});
