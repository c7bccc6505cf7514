/**
 * The syscall numbers, apart from their argument schemas (syscalls.ts): what
 * a domain needs to make a call. Kept free of the schema library, so that a
 * domain, which never validates a request, does not load it.
 */
export const SYS = {
  null: 0,
  socket: 1,
  bind: 2,
  connect: 3,
  sendto: 4,
  recvfrom: 5,
  close: 6,
  getsockname: 7,
  getpeername: 8,
  setsockopt: 9,
  getsockopt: 10,
  fcntl: 11,
  poll: 12,
  grant: 13,
  revoke: 14,
  stats: 15,
  listen: 16,
  accept: 17,
  shutdown: 18,
} as const;

export type SyscallName = keyof typeof SYS;

export const SYSCALL_BY_NUMBER: ReadonlyArray<SyscallName | undefined> = (() => {
  const table: (SyscallName | undefined)[] = [];
  for (const [name, no] of Object.entries(SYS)) table[no] = name as SyscallName;
  return table;
})();
