import type { ScenarioReport } from '@moat/sim';
import { OTA_ISOLATION, runOtaIsolation, type OtaIsolationOptions } from './scenarios/ota-isolation.js';
import { LIBRARY } from './scenarios/library/index.js';

export { runOtaIsolation, type OtaIsolationOptions };
export { firmwareImage } from './programs/update-server.js';
export { LIBRARY };

export interface RunOptions {
  seed?: number;
  /** Write a pcap file per interface into this folder. */
  captureDir?: string;
}

export interface ScenarioEntry {
  name: string;
  description: string;
  run(options: RunOptions): Promise<ScenarioReport>;
}

/** The scenarios the `moat` command knows by name. */
export const SCENARIOS: ScenarioEntry[] = [
  { ...OTA_ISOLATION, run: (options) => runOtaIsolation(options) },
  {
    name: 'ota-udp',
    description: OTA_ISOLATION.description.replace('over TCP', 'over UDP, in chunks it asks for again when lost,'),
    run: (options) => runOtaIsolation({ ...options, transport: 'udp' }),
  },
  // The isolation library: each a defineScenario, which fits an entry as it is.
  ...LIBRARY,
];
