import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // In-process TCP transfers take a second or more; CI runs packages side by side on two cores.
    testTimeout: 30_000,
  },
});
