/**
 * What a domain loads: libc's built entry points, followed through every
 * import into the workspace's packages, never reach the schema library (the
 * kernel validates; loading TypeBox took about 125 ms of a domain's start-up).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const dist = fileURLToPath(new URL('../dist/', import.meta.url));

/** Every module specifier a built file imports, statically or dynamically. */
function specifiers(file: string): string[] {
  const code = readFileSync(file, 'utf8');
  return [...code.matchAll(/(?:from\s*|import\s*\(?\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

/** The bare packages a file reaches through relative and @moat/* imports. */
function reach(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const s of specifiers(file)) {
      if (s.startsWith('.')) visit(resolve(dirname(file), s));
      else if (s.startsWith('@moat/')) visit(require.resolve(s));
      else packages.add(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);
    }
  };
  visit(entry);
  return packages;
}

describe("a domain's footprint", () => {
  it.each(['index.js', 'runtime.js', 'process-runtime.js'])('libc %s loads msgpackr and never TypeBox', (entry) => {
    const packages = reach(resolve(dist, entry));
    expect(packages).toContain('msgpackr');
    expect(packages).not.toContain('@sinclair/typebox');
  });
});
