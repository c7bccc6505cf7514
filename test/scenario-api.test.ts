/** defineScenario: the checks that name the field, supervision, faults and expectations, on real workers. */
import { describe, expect, it } from 'vitest';
import { defineScenario, renderReport, ScenarioError, type ScenarioDefinition } from '@moat/sim';

const program = (name: string) => new URL(`./fixtures/programs/${name}.mjs`, import.meta.url);

const base = (): ScenarioDefinition => ({
  name: 'echo',
  description: 'an echo server and its client on one machine',
  machines: [{ name: 'm' }],
  domains: [
    { name: 'server', machine: 'm', program: program('udp-echo'), args: { port: 7000 }, awaited: false, shutdownMs: 10_000 },
    { name: 'client', machine: 'm', program: program('echo-client'), args: { server: { addr: '127.0.0.1', port: 7000 }, count: 5 }, startAfter: { domain: 'server', log: '^listening' } },
  ],
  timeoutMs: 20_000,
});

/** Gives machine m two interfaces joined by a link with these faults. */
function twoInterfaces(d: ScenarioDefinition, faults: NonNullable<ScenarioDefinition['links']>[number]['faults']): void {
  d.machines[0]!.interfaces = [
    { name: 'eth0', addr: '10.0.0.1/24' },
    { name: 'eth1', addr: '10.0.1.1/24' },
  ];
  d.links = [{ between: ['m.eth0', 'm.eth1'], faults }];
}

describe('defineScenario checks the declaration and names the field', () => {
  const cases: [string, (d: ScenarioDefinition) => void, RegExp][] = [
    ['an unknown restart policy', (d) => (d.domains[1]!.restart = { when: 'sometimes' as never }), /domains\[1\]\.restart\.when: expected one of "never", "on-failure", "always", got "sometimes"/],
    ['a domain on a machine not declared', (d) => (d.domains[0]!.machine = 'nowhere'), /domains\[0\]\.machine: no machine named 'nowhere'/],
    ['a misspelt field', (d) => ((d.domains[0] as unknown as Record<string, unknown>).restrat = {}), /domains\[0\]\.restrat: unknown field/],
    ['a name used twice', (d) => (d.domains[1]!.name = 'server'), /domains\[1\]\.name: 'server' is declared twice/],
    ['startAfter a later domain', (d) => (d.domains[0]!.startAfter = { domain: 'client', log: 'x' }), /domains\[0\]\.startAfter\.domain: 'client' must be a domain declared before/],
    ['a bad regular expression', (d) => (d.domains[1]!.startAfter = { domain: 'server', log: '(' }), /domains\[1\]\.startAfter\.log: not a regular expression/],
    ['a link to an interface that does not exist', (d) => (d.links = [{ between: ['m.eth0', 'm.eth1'] }]), /links\[0\]\.between\[0\]: machine 'm' has no interface 'eth0'/],
    ['an unknown link fault', (d) => twoInterfaces(d, { lose: 0.1 } as never), /links\[0\]\.faults\.lose: unknown fault/],
    ['a loss above 1', (d) => twoInterfaces(d, { loss: 2 }), /links\[0\]\.faults: .*loss/],
    ['a fault with no time', (d) => (d.faults = [{ domain: 'server', kind: 'throw' }]), /faults\[0\]: give exactly one of afterMs and atSyscall/],
    ['an oom fault without a heap limit', (d) => (d.faults = [{ domain: 'server', kind: 'oom', atSyscall: 3 }]), /faults\[0\]\.kind: 'oom' needs the domain's heapMb/],
    ['a fault for an unknown domain', (d) => (d.faults = [{ domain: 'ghost', kind: 'kill', afterMs: 1 }]), /faults\[0\]\.domain: no domain named 'ghost'/],
    ['a negative heap', (d) => (d.domains[0]!.heapMb = -1), /domains\[0\]\.heapMb: .*got -1/],
    ['no program', (d) => (d.domains[0]!.program = ''), /domains\[0\]\.program: expected a module path or file URL/],
    ['no machines', (d) => (d.machines = []), /machines: .*got \[\]/],
  ];
  it.each(cases)('refuses %s', (_, mutate, message) => {
    const d = base();
    mutate(d);
    expect(() => defineScenario(d)).toThrow(ScenarioError);
    expect(() => defineScenario(d)).toThrow(message);
  });
});

describe('running a declared scenario', () => {
  it('runs its domains in order and judges the run by its expectations and the kernel', async () => {
    const scenario = defineScenario({
      ...base(),
      expect: [{ name: 'every echo intact', check: (run) => (run.outcomes.client?.value as { intact: number }).intact === 5 }],
    });
    const report = await scenario.run({ seed: 3 });
    expect(report.seed).toBe(3);
    expect(report.verdicts.map((v) => [v.name, v.pass])).toEqual([
      ['every echo intact', true],
      ['Kernels survived, nothing leaked', true],
    ]);
    expect(report.passed).toBe(true);
    expect(report.domains.map((d) => [d.name, d.status])).toEqual([
      ['server', 'returned'],
      ['client', 'returned'],
    ]);
  });

  it('restarts a failing domain as its policy says, with the restarts in the report', async () => {
    const scenario = defineScenario({
      name: 'supervised',
      description: 'a domain that always crashes, restarted at most twice',
      machines: [{ name: 'm' }],
      domains: [{ name: 'crashy', machine: 'm', program: program('crashy'), args: { crash: true }, restart: { when: 'on-failure', max: 2, backoffMs: 5 } }],
      expect: [{ name: 'three lives', check: (run) => run.lives.crashy?.length === 3 }],
      timeoutMs: 20_000,
    });
    const report = await scenario.run();
    const crashy = report.domains[0]!;
    expect(crashy.restarts).toBe(2);
    expect(crashy.lives?.map((l) => l.status)).toEqual(['threw', 'threw', 'threw']);
    expect(crashy.final).toEqual({ handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, streamBytes: 0, pendingCalls: 0 });
    expect(report.passed).toBe(true);
  });

  it('does not restart a domain that returned when the policy is on-failure, and kills on a timed fault', async () => {
    const scenario = defineScenario({
      name: 'faulted',
      description: 'a clean domain, and a spinning one killed by a fault',
      machines: [{ name: 'm' }],
      domains: [
        { name: 'fine', machine: 'm', program: program('crashy'), args: { crash: false }, restart: { when: 'on-failure' } },
        { name: 'spinner', machine: 'm', program: program('spin') },
      ],
      faults: [{ domain: 'spinner', kind: 'kill', afterMs: 50 }],
      timeoutMs: 20_000,
    });
    const report = await scenario.run();
    expect(report.domains.map((d) => [d.name, d.status, d.restarts])).toEqual([
      ['fine', 'returned', 0],
      ['spinner', 'killed', 0],
    ]);
    expect(report.domains[1]!.error).toBe('fault: kill after 50 ms');
  });

  it('injects each domain fault at the syscall it names, and the kernel releases what the domain held', async () => {
    const looper = (name: string, extra: Partial<ScenarioDefinition['domains'][number]> = {}) => ({ name, machine: 'm', program: program('looper'), args: { rounds: 200 }, ...extra });
    const scenario = defineScenario({
      name: 'faults',
      description: 'one domain per fault kind, each faulted at its 7th syscall',
      machines: [{ name: 'm' }],
      domains: [looper('thrower'), looper('exiter'), looper('hanger', { watchdogMs: 300 }), looper('hog', { heapMb: 16 }), looper('killed'), looper('clean')],
      faults: [
        { domain: 'thrower', kind: 'throw', atSyscall: 7 },
        { domain: 'exiter', kind: 'exit', atSyscall: 7 },
        { domain: 'hanger', kind: 'hang', atSyscall: 7 },
        { domain: 'hog', kind: 'oom', atSyscall: 7 },
        { domain: 'killed', kind: 'kill', atSyscall: 7 },
      ],
      timeoutMs: 30_000,
    });
    const report = await scenario.run();
    const by = Object.fromEntries(report.domains.map((d) => [d.name, d]));
    expect(by.thrower!.status).toBe('threw');
    expect(by.thrower!.error).toContain('fault: throw at syscall 7');
    expect(by.exiter!.status).toBe('exited');
    expect(by.hanger!.status).toBe('killed');
    expect(by.hanger!.error).toBe('watchdog: ran 300 ms without a syscall');
    expect(by.hog!.status).toBe('out-of-memory');
    expect(by.killed!.status).toBe('killed');
    expect(by.killed!.error).toBe('fault: kill at syscall 7');
    expect(by.clean!.status).toBe('returned');
    // The terminal report says which fault each suffered.
    const text = renderReport(report);
    expect(text).toMatch(/thrower\s+thrower\s+threw\s+0\s+throw 1/);
    expect(text).toMatch(/hanger\s+hanger\s+killed\s+0\s+hang 1, watchdog/);
    expect(text).toMatch(/killed\s+killed\s+killed\s+0\s+kill 1\s+\d/);
    for (const d of report.domains) {
      expect(d.final, d.name).toEqual({ handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, streamBytes: 0, pendingCalls: 0 });
      // Six calls answered before the fault (three rounds of socket and close), none after.
      if (d.name !== 'clean') expect(d.calls.socket?.OK, `${d.name} ${JSON.stringify(d.calls)} ${JSON.stringify(d.final)}`).toBe(3);
    }
    expect(report.passed).toBe(true);
  });

  it('fails the run, and stops every domain, at its timeout', async () => {
    const scenario = defineScenario({
      name: 'stuck',
      description: 'a domain that never ends',
      machines: [{ name: 'm' }],
      domains: [{ name: 'spinner', machine: 'm', program: program('spin') }],
      timeoutMs: 100,
    });
    const report = await scenario.run();
    expect(report.passed).toBe(false);
    expect(report.verdicts.find((v) => v.name === 'Finished in time')?.pass).toBe(false);
    expect(report.domains[0]!.status).toBe('killed');
  });
});
