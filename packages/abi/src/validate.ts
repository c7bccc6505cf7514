/**
 * Compiled argument checkers, one per syscall, built from the schemas in
 * SYSCALLS on first use (only the kernel validates; domains that import the
 * ABI never pay for compiling them). The kernel runs them on every decoded
 * request before acting.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { SYSCALLS, SYSCALL_BY_NUMBER, type SyscallName } from './syscalls.js';

const checkers: (TypeCheck<TSchema> | undefined)[] = [];

function checker(sysno: number): TypeCheck<TSchema> | undefined {
  const name = SYSCALL_BY_NUMBER[sysno];
  if (!name) return undefined;
  return (checkers[sysno] ??= TypeCompiler.Compile(SYSCALLS[name].args as TSchema));
}

/** True when `args` fits the schema of syscall `sysno` (false for an unknown call). */
export function argsValid(sysno: number, args: unknown[]): boolean {
  return checker(sysno)?.Check(args) ?? false;
}

/** Why `args` do not fit: the first failing field and the reason, for traces and messages. */
export function argsProblem(sysno: number, args: unknown[]): string | undefined {
  const check = checker(sysno);
  const name: SyscallName | undefined = SYSCALL_BY_NUMBER[sysno];
  if (!check || !name) return `unknown syscall ${sysno}`;
  const first = check.Errors(args).First();
  if (!first) return undefined;
  return `${name}: argument ${first.path || '/'} ${first.message}`;
}
