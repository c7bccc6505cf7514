import type { RunOptions, ScenarioReport } from '@moat/sim';
import { otaIsolation, runOtaIsolation, type OtaIsolationOptions } from './scenarios/ota-isolation.js';
import { LIBRARY } from './scenarios/library/index.js';

export { otaIsolation, runOtaIsolation, type OtaIsolationOptions };
export { firmwareImage } from './programs/update-server.js';
export { LIBRARY };
/** What a run takes (a seed, a capture folder, extra faults): @moat/sim's, as every entry here is a defineScenario. */
export type { RunOptions };

export interface ScenarioEntry {
  name: string;
  description: string;
  run(options: RunOptions): Promise<ScenarioReport>;
}

/** The scenarios the `moat` command knows by name. */
export const SCENARIOS: ScenarioEntry[] = [
  // Each a defineScenario, which fits an entry as it is.
  otaIsolation(),
  otaIsolation({ transport: 'udp' }),
  ...LIBRARY,
];
