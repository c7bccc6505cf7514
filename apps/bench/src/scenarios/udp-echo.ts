/**
 * The campaign figure's scenario, small and fast on purpose so that the
 * figure shows what the campaign machinery gives or costs, not the work of
 * a long scenario: one machine (a kernel worker) and two domains exchange a
 * datagram made from the seed over loopback. A default export in the shape
 * `moat campaign` loads from a module path.
 */
import { Machine, type DomainOutcome, type ScenarioReport, type Verdict } from '@moat/sim';
import type { EchoClientArgs } from '../programs/echo-client.js';
import type { EchoOnceArgs } from '../programs/echo-once.js';

const program = (name: string) => new URL(`../programs/${name}.js`, import.meta.url);
const PORT = 7;

const domainReport = (o: DomainOutcome): ScenarioReport['domains'][number] => ({
  name: o.name,
  role: o.name,
  status: o.status,
  ...(o.error === undefined ? {} : { error: o.error }),
  summary: o.value,
  attempts: [],
  calls: o.final?.calls ?? {},
  malformedFrames: o.final?.malformed ?? 0,
  final: o.final?.accounting,
  restarts: 0,
});

export default {
  name: 'bench-udp-echo',
  description: 'Two domains on one machine exchange a datagram made from the seed over loopback.',
  async run({ seed = 1 }: { seed?: number } = {}): Promise<ScenarioReport> {
    const started = performance.now();
    const machine = new Machine({ name: 'box' });
    try {
      const echo = await machine.spawn({ name: 'echo', program: program('echo-once'), args: { port: PORT } satisfies EchoOnceArgs });
      await echo.waitForLog(/^listening/);
      const client = await machine.spawn({ name: 'client', program: program('echo-client'), args: { port: PORT, seed } satisfies EchoClientArgs });
      const outcomes = await Promise.all([client.outcome, echo.outcome]);
      const stats = await machine.stats();
      const value = outcomes[0].value as { intact?: boolean } | undefined;
      const verdicts: Verdict[] = [
        { name: 'datagram echoed intact', pass: value?.intact === true, detail: JSON.stringify(value ?? outcomes[0].error) },
        { name: 'nothing leaked', pass: stats.leaks.length === 0 && stats.internalErrors === 0, detail: `${stats.leaks.length} leaks, ${stats.internalErrors} internal errors` },
      ];
      return {
        scenario: 'bench-udp-echo',
        description: this.description,
        seed,
        durationMs: performance.now() - started,
        domains: outcomes.map(domainReport),
        kernel: { internalErrors: stats.internalErrors, leaks: stats.leaks, pool: stats.pool, stack: stats.stack },
        verdicts,
        passed: verdicts.every((v) => v.pass),
      };
    } finally {
      await machine.shutdown();
    }
  },
};
