import type { AnyFaultDefinition, ScenarioReport } from '@moat/sim';
import { otaIsolation, runOtaIsolation, type OtaIsolationOptions } from './scenarios/ota-isolation.js';
import { LIBRARY } from './scenarios/library/index.js';

export { otaIsolation, runOtaIsolation, type OtaIsolationOptions };
export { firmwareImage } from './programs/update-server.js';
export { LIBRARY };

export interface RunOptions {
  seed?: number;
  /** Write a pcap file per interface into this folder. */
  captureDir?: string;
  /** Faults besides the scenario's own (a declared scenario only: `moat run --fault`). */
  faults?: AnyFaultDefinition[];
}

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
