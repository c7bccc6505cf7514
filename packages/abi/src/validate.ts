/**
 * Compiled argument checkers, one per syscall, built once from the schemas in
 * SYSCALLS. The kernel runs them on every decoded request before acting.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { SYSCALLS, SYSCALL_BY_NUMBER, type SyscallName } from './syscalls.js';

const checkers: (TypeCheck<TSchema> | undefined)[] = [];
for (const spec of Object.values(SYSCALLS)) checkers[spec.no] = TypeCompiler.Compile(spec.args as TSchema);

/** True when `args` fits the schema of syscall `sysno` (which must exist). */
export function argsValid(sysno: number, args: unknown[]): boolean {
  return checkers[sysno]!.Check(args);
}

/** Why `args` do not fit: the first failing field and the reason, for traces and messages. */
export function argsProblem(sysno: number, args: unknown[]): string | undefined {
  const checker = checkers[sysno];
  const name: SyscallName | undefined = SYSCALL_BY_NUMBER[sysno];
  if (!checker || !name) return `unknown syscall ${sysno}`;
  const first = checker.Errors(args).First();
  if (!first) return undefined;
  return `${name}: argument ${first.path || '/'} ${first.message}`;
}
