/**
 * On Node 20 a SIGUSR1 sent to the host opens its inspector on 127.0.0.1:9229,
 * and any domain can send one (`process.kill(process.pid, 'SIGUSR1')` from a
 * worker, `process.ppid` from a child) and then connect to it: code in the
 * host. A listener of the host's own stops the inspector from opening, so
 * every host that starts a machine installs one, once.
 */
let guarded = false;

/** The SIGUSR1 signals counted since the guard went up (each one a domain's try, or an operator's). */
export const hostGuard = { sigusr1: 0 };

export function guardHostInspector(): void {
  if (guarded || process.platform === 'win32') return;
  guarded = true;
  process.on('SIGUSR1', () => {
    hostGuard.sigusr1++;
  });
}
