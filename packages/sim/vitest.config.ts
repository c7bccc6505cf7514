import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // fast-check properties from a fixed seed (see the root's vitest.seed.ts).
    setupFiles: ['../../vitest.seed.ts'],
  },
});
