/** Fault specs as the command line gives them, and extra faults added to a declared scenario. */
import { describe, expect, it } from 'vitest';
import { defineScenario, parseFaultSpec, withFaults, ScenarioError } from '../src/index.js';

describe('parseFaultSpec', () => {
  it('reads a fault at a syscall, after a time, and allocation failures', () => {
    expect(parseFaultSpec('third-party:oom@100')).toEqual({ domain: 'third-party', kind: 'oom', atSyscall: 100 });
    expect(parseFaultSpec('ota:kill@250ms')).toEqual({ domain: 'ota', kind: 'kill', afterMs: 250 });
    expect(parseFaultSpec('device:alloc@50')).toEqual({ machine: 'device', kind: 'alloc', at: 50, count: 1 });
    expect(parseFaultSpec('device:alloc@50x10')).toEqual({ machine: 'device', kind: 'alloc', at: 50, count: 10 });
  });

  it.each([
    ['ota', /expected domain:kind@N/],
    ['ota:melt@3', /unknown kind 'melt'/],
    ['device:alloc@5ms', /counts allocations, not time/],
    ['ota:throw@3x2', /expected domain:kind@N/],
  ])('refuses %s with a message', (spec, message) => {
    expect(() => parseFaultSpec(spec)).toThrow(message);
  });
});

describe('withFaults', () => {
  const scenario = defineScenario({
    name: 's',
    description: 'two machines, one domain',
    machines: [{ name: 'a' }, { name: 'b' }],
    domains: [{ name: 'd', machine: 'a', program: 'x.mjs' }],
  });

  it('puts domain faults in faults and allocation faults on their machine', () => {
    const def = withFaults(scenario.definition, [parseFaultSpec('d:throw@3'), parseFaultSpec('b:alloc@7x2')]);
    expect(def.faults).toEqual([{ domain: 'd', kind: 'throw', atSyscall: 3 }]);
    expect(def.machines[1]!.allocationFaults).toEqual([{ at: 7, count: 2 }]);
    expect(def.machines[0]!.allocationFaults).toBeUndefined();
  });

  it('refuses a fault for a domain or machine the scenario does not have, naming the field', () => {
    expect(() => withFaults(scenario.definition, [parseFaultSpec('ghost:throw@1')])).toThrow(/faults\[0\]\.domain: no domain named 'ghost'/);
    expect(() => withFaults(scenario.definition, [parseFaultSpec('nowhere:alloc@1')])).toThrow(ScenarioError);
    expect(() => withFaults(scenario.definition, [parseFaultSpec('nowhere:alloc@1')])).toThrow(/no machine named 'nowhere'/);
  });
});
