/**
 * The Node permission model flags a domain child process starts with: reads
 * only of what it must load, and no file-system writes, child processes,
 * workers, addons or WASI (each is off unless its --allow flag is given, and
 * none is). The model does not cover the network (net, dgram, http) nor
 * process.kill: docs/isolation.md says what that leaves open.
 *
 * What a child must read: libc's package (its entry) with the packages libc
 * depends on, and its program's package with the packages that one depends
 * on, each found as Node's resolver finds it: the first node_modules/<name>
 * up from the dependent's real directory. Both the path found (often a
 * workspace symlink) and its real path are allowed, because the resolver
 * stats the link before it follows it.
 */
import { existsSync, lstatSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROCESS_RUNTIME_URL } from '@moat/libc';

export interface ProcessPermissions {
  /** The flag that turned the model on (`--permission`, or `--experimental-permission` on Node 20). */
  flag: string;
  /** Everything the child may read (directories include what is below them). */
  fsRead: string[];
}

const FLAGS = process.allowedNodeEnvironmentFlags;

/** The permission model's switch on this Node, if it has one. */
export const PERMISSION_FLAG: string | undefined = FLAGS.has('--permission')
  ? '--permission'
  : FLAGS.has('--experimental-permission')
    ? '--experimental-permission'
    : undefined;

/** Node 20 prints an ExperimentalWarning for the model in every child; the host knows already. */
const QUIET = PERMISSION_FLAG === '--experimental-permission' && FLAGS.has('--disable-warning') ? ['--disable-warning=ExperimentalWarning'] : [];

/**
 * Each package's reads (it and the packages it needs at run time), by its
 * directory, worked out once: walking the manifests takes milliseconds of
 * synchronous file-system calls, and a run spawns the same programs again.
 */
const packageReads = new Map<string, Set<string>>();

function readsOf(root: string): Set<string> {
  let reads = packageReads.get(root);
  if (!reads) {
    reads = new Set();
    addPackage(root, reads, new Set());
    packageReads.set(root, reads);
  }
  return reads;
}

let libcRoot: string | undefined;

/**
 * The read allow-list for a child running `programPath` (undefined for a
 * program that is not a file), plus `extra` paths, or undefined where this
 * Node has no permission model.
 */
export function processPermissions(programPath: string | undefined, extra: readonly string[] = []): ProcessPermissions | undefined {
  if (!PERMISSION_FLAG) return undefined;
  if (!libcRoot) {
    libcRoot = packageRoot(dirname(fileURLToPath(PROCESS_RUNTIME_URL)));
    if (!libcRoot) throw new Error(`no package.json above ${fileURLToPath(PROCESS_RUNTIME_URL)}: cannot tell a process domain what to read`);
  }
  const readable = new Set(readsOf(libcRoot));
  if (programPath !== undefined) {
    const root = packageRoot(dirname(programPath));
    if (root) for (const path of readsOf(root)) readable.add(path);
    else addPath(dirname(programPath), readable);
  }
  for (const path of extra) addPath(resolve(path), readable);
  return { flag: PERMISSION_FLAG, fsRead: outermost(readable) };
}

/** The command-line flags for `permissions`. */
export function permissionFlags(permissions: ProcessPermissions | undefined): string[] {
  if (!permissions) return [];
  return [permissions.flag, ...QUIET, ...permissions.fsRead.map((p) => `--allow-fs-read=${p}`)];
}

/** The nearest directory at or above `dir` that has a package.json. */
function packageRoot(dir: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) return undefined;
  }
}

/** Allows a package directory and, recursively, the packages it needs at run time. */
function addPackage(dir: string, into: Set<string>, visited: Set<string>): void {
  addPath(dir, into);
  const real = realpathSync(dir);
  if (visited.has(real)) return;
  visited.add(real);
  let manifest: { dependencies?: Record<string, string>; peerDependencies?: Record<string, string>; peerDependenciesMeta?: Record<string, { optional?: boolean }> };
  try {
    manifest = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8'));
  } catch {
    return; // not a readable manifest: nothing more to follow
  }
  const peers = Object.keys(manifest.peerDependencies ?? {}).filter((p) => !manifest.peerDependenciesMeta?.[p]?.optional);
  for (const name of [...Object.keys(manifest.dependencies ?? {}), ...peers]) {
    const found = findPackage(name, real);
    if (found) addPackage(found, into, visited);
  }
}

/** Where Node's resolver finds package `name` from a module in `dir`. */
function findPackage(name: string, dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(d) === d) return undefined;
  }
}

/** The paths sorted, without those inside another (a directory allows what is below it). */
function outermost(paths: Set<string>): string[] {
  const sorted = [...paths].sort();
  const inside = (p: string, dir: string) => p !== dir && p.startsWith(dir.endsWith(sep) ? dir : dir + sep);
  return sorted.filter((p) => !sorted.some((dir) => inside(p, dir)));
}

/**
 * Allows a path and its real path. A symlink above it (a linked scope
 * directory, say) is stat-ed too when the resolver takes the real path, so
 * that link is allowed as well.
 */
function addPath(path: string, into: Set<string>): void {
  into.add(path);
  for (let d = dirname(path); dirname(d) !== d; d = dirname(d)) {
    try {
      if (lstatSync(d).isSymbolicLink()) into.add(d);
    } catch {
      break; // does not exist: neither does anything below it
    }
  }
  try {
    into.add(realpathSync(path));
  } catch {
    // a path that does not exist (yet) is allowed as given
  }
}
