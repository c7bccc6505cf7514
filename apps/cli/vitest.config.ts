import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The tests start the built CLI and pool threads; on two busy cores a child process can take seconds.
    testTimeout: 30_000,
  },
});
