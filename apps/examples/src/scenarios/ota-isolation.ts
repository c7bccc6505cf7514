/**
 * The main job: an OTA updater downloads a firmware image from an update
 * server on another machine while a hostile third-party library, on the same
 * machine as the OTA, attacks the kernel and its neighbours and finally
 * crashes. Declared with defineScenario; the report says per domain what it
 * attempted and got back, and judges the run.
 */
import type { LinkFaults } from '@moat/netstack';
import { defineScenario, domainReport, tallyCalls, type ArgsContext, type Scenario, type ScenarioReport, type ScenarioRun, type Verdict } from '@moat/sim';
import type { OtaArgs } from '../programs/ota.js';
import type { OtaTcpArgs } from '../programs/ota-tcp.js';
import type { UpdateServerTcpArgs } from '../programs/update-server-tcp.js';
import type { ThirdPartyArgs } from '../programs/third-party.js';
import type { UpdateServerArgs } from '../programs/update-server.js';

export interface OtaIsolationOptions {
  seed?: number;
  imageBytes?: number;
  chunkBytes?: number;
  /** Chunks the OTA asks for at once. */
  window?: number;
  floodDatagrams?: number;
  /** Handle quota of the third party (its socket hoarding ends there). */
  thirdPartyHandles?: number;
  /** Give up (and fail) after this long. */
  timeoutMs?: number;
  /** The faults of the link between the device and the update server. */
  link?: Partial<LinkFaults>;
  /** Write a pcap file per interface of each machine into this folder. */
  captureDir?: string;
  /** How the image travels: a TCP stream, or UDP chunks the OTA asks for again when lost. */
  transport?: 'tcp' | 'udp';
}

/** A lossy, slightly slow link: the OTA must notice lost chunks and ask again. */
export const DEFAULT_OTA_LINK: Partial<LinkFaults> = {
  mtu: 1500,
  latencyMs: 2,
  jitterMs: 1,
  bandwidthBitsPerSecond: 1e9,
  loss: 0.02,
  duplicate: 0.01,
  reorder: 0.01,
  reorderDelayMs: 3,
  corrupt: 0.005,
};

export const OTA_ISOLATION = {
  name: 'ota-isolation',
  description:
    'An OTA updater on a device downloads a firmware image over TCP from an update server on another machine, across a lossy link. ' +
    "When the download begins it starts a hostile third-party library on the device, which tries to take the OTA's port and connection, " +
    'injects forged segments and chunks, forges handles, sends malformed frames, hoards sockets and finally crashes while holding sockets and buffers.',
};

const program = (name: string) => new URL(`../programs/${name}.js`, import.meta.url);

const SERVER_PORT = 24680;
const OTA_PORT = 24681;
const PLUGIN_PORT = 24682;

/** The scenario, declared, for these options (all but seed and captureDir, which each run takes). */
export function otaIsolation(options: Omit<OtaIsolationOptions, 'seed' | 'captureDir'> = {}): Scenario {
  const o = {
    imageBytes: 4 << 20,
    chunkBytes: 4096,
    window: 32,
    floodDatagrams: 200,
    thirdPartyHandles: 32,
    timeoutMs: 60_000,
    transport: 'tcp' as 'tcp' | 'udp',
    ...options,
    link: { ...DEFAULT_OTA_LINK, ...options.link },
  };
  const tcp = o.transport === 'tcp';
  const server = { addr: '10.0.0.2', port: SERVER_PORT };
  const plugin = { addr: '127.0.0.1', port: PLUGIN_PORT };
  return defineScenario({
    name: tcp ? OTA_ISOLATION.name : 'ota-udp',
    description: tcp ? OTA_ISOLATION.description : OTA_ISOLATION.description.replace('over TCP', 'over UDP, in chunks it asks for again when lost,'),
    machines: [
      { name: 'device', interfaces: [{ name: 'eth0', addr: '10.0.0.1/24', mac: '02:00:00:00:00:01' }] },
      { name: 'server', interfaces: [{ name: 'eth0', addr: '10.0.0.2/24', mac: '02:00:00:00:00:02' }] },
    ],
    links: [{ between: ['device.eth0', 'server.eth0'], faults: o.link }],
    domains: [
      {
        name: 'update-server',
        role: 'update server',
        machine: 'server',
        program: program(tcp ? 'update-server-tcp' : 'update-server'),
        args: ({ seed }: ArgsContext) =>
          tcp
            ? ({ port: SERVER_PORT, imageBytes: o.imageBytes, seed } satisfies UpdateServerTcpArgs)
            : ({ port: SERVER_PORT, imageBytes: o.imageBytes, chunkBytes: o.chunkBytes, seed } satisfies UpdateServerArgs),
      },
      {
        name: 'third-party',
        role: 'hostile third-party library',
        machine: 'device',
        program: program('third-party'),
        args: ({ seed }: ArgsContext) =>
          ({
            port: PLUGIN_PORT,
            otaPort: OTA_PORT,
            localAddrs: ['127.0.0.1', '10.0.0.1'],
            transport: o.transport,
            server,
            seed,
            floodDatagrams: o.floodDatagrams,
            crash: true,
          }) satisfies ThirdPartyArgs,
        limits: { maxHandles: o.thirdPartyHandles, maxBufferBytes: 1 << 20 },
        heapMb: 64,
        startAfter: { domain: 'update-server', log: '^serving' },
      },
      {
        name: 'ota',
        role: 'OTA updater',
        machine: 'device',
        program: program(tcp ? 'ota-tcp' : 'ota'),
        args: tcp
          ? ({ server, port: OTA_PORT, plugin } satisfies OtaTcpArgs)
          : ({ server, port: OTA_PORT, window: o.window, timeoutMs: 40, plugin } satisfies OtaArgs),
        startAfter: { domain: 'third-party', log: '^loaded' },
      },
    ],
    expect: otaVerdicts(o.thirdPartyHandles),
    timeoutMs: o.timeoutMs,
    // The device's kernel is the one the attacker shares with the OTA.
    reportMachine: 'device',
  });
}

/** One run with the given options: what the tests and the built-in entries call. */
export function runOtaIsolation(options: OtaIsolationOptions = {}): Promise<ScenarioReport> {
  const { seed, captureDir, ...rest } = options;
  return otaIsolation(rest).run({ seed, captureDir });
}

/** The scenario's own verdicts, as expectations on the finished run. */
function otaVerdicts(thirdPartyHandles: number) {
  const verdict = (name: string, judge: (run: ScenarioRun) => Omit<Verdict, 'name'>) => ({ name, check: judge });
  const facts = (run: ScenarioRun) => {
    const ota = run.outcomes.ota;
    const third = run.outcomes['third-party'];
    const thirdReport = third && domainReport(third, 'hostile third-party library');
    const attempts = thirdReport?.attempts ?? [];
    return { ota, third, thirdReport, attempts, kernel: run.kernels.device!, result: ota?.value as OtaResult | undefined };
  };
  // Attacks where any success is a breach (the others are judged by their own verdicts).
  const unjudged = ['open sockets until refused', 'forged chunks to the OTA port', 'random frames', 'inject TCP segments'];
  return [
    verdict('OTA image intact', (run) => {
      const { ota, result } = facts(run);
      return {
        pass: ota?.status === 'returned' && result?.intact === true,
        detail:
          ota?.status === 'returned'
            ? `${result?.bytes} bytes, SHA-256 ${result?.intact ? 'matches' : 'DOES NOT match'} (${result?.sha256?.slice(0, 16)}...)`
            : `OTA ${ota?.status ?? 'never started'}: ${ota?.error}`,
      };
    }),
    verdict('Every hostile call refused', (run) => {
      const { attempts } = facts(run);
      const breaches = attempts.reduce((n, a) => n + a.breaches, 0);
      const hostile = attempts.filter((a) => !unjudged.includes(a.name));
      return {
        pass: hostile.length > 0 && breaches === 0 && hostile.every((a) => a.tries > 0 && !a.outcomes.OK),
        detail: `${hostile.reduce((n, a) => n + a.tries, 0)} port-hijack, stale and forged-handle, malformed-frame and reply-memory probes, ${breaches} breached`,
      };
    }),
    verdict('Socket hoarding contained', (run) => {
      const hoard = facts(run).attempts.find((a) => a.name === 'open sockets until refused');
      return {
        pass: !!hoard && hoard.outcomes.EMFILE === 1 && (hoard.outcomes.OK ?? 0) <= thirdPartyHandles,
        detail: hoard ? `refused with EMFILE after ${hoard.outcomes.OK ?? 0} sockets (quota ${thirdPartyHandles} handles)` : 'attempt missing',
      };
    }),
    verdict('Forged datagrams never reached the OTA', (run) => {
      const { attempts, result, kernel } = facts(run);
      const flood = attempts.find((a) => a.name === 'forged chunks to the OTA port');
      const noSocketDrops = kernel.stack['drop.udp.noSocket'] ?? 0;
      return {
        pass: !!flood && result?.foreignDatagrams === 0 && noSocketDrops >= (flood.outcomes.OK ?? 0),
        detail: `${flood?.outcomes.OK ?? 0} forged chunks sent, ${result?.foreignDatagrams ?? '?'} received by the OTA, ${noSocketDrops} dropped by the stack for want of a matching socket`,
      };
    }),
    verdict('Third-party crash contained, nothing leaked', (run) => {
      const { third, thirdReport, attempts, kernel } = facts(run);
      const random = attempts.find((a) => a.name === 'random frames');
      const final = third?.final?.accounting;
      return {
        pass:
          third?.status === 'threw' &&
          !!final &&
          final.handles + final.grantedHandles + final.buffers + final.bufferBytes + final.sockets + final.streamBytes + final.pendingCalls === 0 &&
          kernel.leaks.length === 0 &&
          kernel.pool.inUseBuffers === 0 &&
          kernel.internalErrors === 0 &&
          (random?.tries ?? 0) > 0,
        detail:
          `third-party ${third?.status}${third?.error ? ` (${third.error})` : ''}; after release it holds ` +
          `${final?.handles ?? '?'} handles, ${final?.buffers ?? '?'} buffers; kernel: ${kernel.leaks.length} leaks, ` +
          `${kernel.pool.inUseBuffers} buffers in use, ${kernel.internalErrors} internal errors after ${thirdReport ? tallyCalls(thirdReport.calls).total : 0} of its calls ` +
          `(${random?.tries ?? 0} random frames among them)`,
      };
    }),
  ];
}

interface OtaResult {
  intact?: boolean;
  sha256?: string;
  bytes?: number;
  foreignDatagrams?: number;
}
