/** Faults the host plans in the kernel: delivered at the Nth call or at a time, kills asked of the host, the watchdog. */
import { describe, expect, it } from 'vitest';
import { AF_INET, FAULT_ERRNO, SOCK_DGRAM } from '@moat/abi';
import { planFault } from '../src/index.js';
import { kernelWithDomains } from './harness.js';

describe('fault plans', () => {
  it('refuses a malformed request with a reason', () => {
    expect(planFault({ kind: 'throw' }, 0)).toMatch(/exactly one of atCall and afterMs/);
    expect(planFault({ kind: 'throw', atCall: 0 }, 0)).toMatch(/atCall must be an integer >= 1/);
    expect(planFault({ kind: 'melt' as never, atCall: 1 }, 0)).toMatch(/unknown fault kind "melt"/);
    expect(planFault({ kind: 'exit', afterMs: 5 }, 100)).toEqual({ kind: 'exit', at: 105, detail: 'fault: exit after 5 ms' });
  });

  it('delivers a fault as the reply to the Nth call, and only that one', async () => {
    const { kernel, attach } = kernelWithDomains();
    const d = attach('victim', {}, { faults: [{ kind: 'throw', atCall: 3 }] });
    expect((await d.call('null'))[0]).toBe(0);
    expect((await d.call('null'))[0]).toBe(0);
    const [errno, result] = await d.call('null');
    expect(errno).toBe(FAULT_ERRNO);
    expect(result).toEqual({ fault: 'throw', detail: 'fault: throw at syscall 3' });
    expect((await d.call('null'))[0]).toBe(0);
    expect(kernel.stats().domains[0]!.calls['(fault)']).toEqual({ throw: 1 });
    kernel.shutdown();
  });

  it('asks the host to kill at the Nth call, and answers nothing to it', async () => {
    let killed: [string, string] | undefined;
    const { kernel, attach } = kernelWithDomains({ onKill: (name, reason) => (killed = [name, reason]) });
    const d = attach('victim', {}, { faults: [{ kind: 'kill', atCall: 2 }] });
    await d.call('null');
    void d.call('null');
    await new Promise((r) => setImmediate(r));
    expect(killed).toEqual(['victim', 'fault: kill at syscall 2']);
    expect(d.replies).toHaveLength(1);
    kernel.shutdown();
  });

  it('delivers a timed fault to a call parked in the kernel', async () => {
    const { kernel, attach } = kernelWithDomains();
    const d = attach('victim');
    const [, s] = await d.call('socket', AF_INET, SOCK_DGRAM, 0);
    await d.call('bind', s, { addr: '127.0.0.1', port: 4000 });
    const waiting = d.call('recvfrom', s, 100, 0); // parks: nothing will arrive
    kernel.injectFault('victim', { kind: 'exit', afterMs: 20 });
    const [errno, result] = await waiting;
    expect(errno).toBe(FAULT_ERRNO);
    expect(result).toEqual({ fault: 'exit', detail: 'fault: exit after 20 ms' });
    kernel.detach('victim', 'exited');
    expect(kernel.stats().leaks).toEqual([]);
    kernel.shutdown();
  });

  it('has a domain killed when it runs past its watchdog with no call in the kernel, not while it waits in one', async () => {
    const kills: string[] = [];
    let onKill!: () => void;
    const fired = new Promise<void>((r) => (onKill = r));
    const { kernel, attach } = kernelWithDomains({
      onKill: (name, reason) => {
        kills.push(`${name}: ${reason}`);
        onKill();
      },
    });
    const waiter = attach('waiter', {}, { watchdogMs: 30 });
    const [, s] = await waiter.call('socket', AF_INET, SOCK_DGRAM, 0);
    await waiter.call('bind', s, { addr: '127.0.0.1', port: 4001 });
    void waiter.call('recvfrom', s, 100, 0); // parked: waiting in the kernel is not hanging
    const spinner = attach('spinner', {}, { watchdogMs: 30 });
    await spinner.call('null'); // then nothing: as a domain spinning in its own code
    await fired;
    expect(kills).toEqual(['spinner: watchdog: ran 30 ms without a syscall']);
    kernel.shutdown();
  });
});
