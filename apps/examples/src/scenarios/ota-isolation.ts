/**
 * The main job: an OTA updater downloads a firmware image over UDP from an
 * update server while a hostile third-party library, on the same machine,
 * attacks the kernel and its neighbours and finally crashes. The report says
 * per domain what it attempted and got back, and judges the run.
 */
import type { LinkFaults } from '@moat/netstack';
import { collectTimeline, Network, tallyCalls, type Attempt, type DomainOutcome, type DomainReport, type Machine, type ScenarioReport, type Verdict } from '@moat/sim';
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

export async function runOtaIsolation(options: OtaIsolationOptions = {}): Promise<ScenarioReport> {
  const o = {
    seed: 1,
    imageBytes: 4 << 20,
    chunkBytes: 4096,
    window: 32,
    floodDatagrams: 200,
    thirdPartyHandles: 32,
    timeoutMs: 60_000,
    captureDir: undefined as string | undefined,
    transport: 'tcp' as 'tcp' | 'udp',
    ...options,
    link: { ...DEFAULT_OTA_LINK, ...options.link },
  };
  const started = performance.now();
  const net = new Network(o.seed);
  const device = net.machine({
    name: 'device',
    interfaces: [{ name: 'eth0', addr: '10.0.0.1/24', mac: '02:00:00:00:00:01' }],
    captureDir: o.captureDir,
    trace: true,
    tracePackets: true,
  });
  const serverMachine = net.machine({
    name: 'server',
    interfaces: [{ name: 'eth0', addr: '10.0.0.2/24', mac: '02:00:00:00:00:02' }],
    captureDir: o.captureDir,
    trace: true,
    tracePackets: true,
  });
  try {
    await net.link({ machine: device, iface: 'eth0' }, { machine: serverMachine, iface: 'eth0' }, o.link);
    const serverPort = 24680;
    const otaPort = 24681;
    const pluginPort = 24682;
    const tcp = o.transport === 'tcp';
    const server = await serverMachine.spawn({
      name: 'update-server',
      program: program(tcp ? 'update-server-tcp' : 'update-server'),
      args: tcp
        ? ({ port: serverPort, imageBytes: o.imageBytes, seed: o.seed } satisfies UpdateServerTcpArgs)
        : ({ port: serverPort, imageBytes: o.imageBytes, chunkBytes: o.chunkBytes, seed: o.seed } satisfies UpdateServerArgs),
    });
    await server.waitForLog(/^serving/);
    const thirdParty = await device.spawn({
      name: 'third-party',
      program: program('third-party'),
      args: {
        port: pluginPort,
        otaPort,
        localAddrs: ['127.0.0.1', '10.0.0.1'],
        transport: o.transport,
        server: { addr: '10.0.0.2', port: serverPort },
        seed: o.seed,
        floodDatagrams: o.floodDatagrams,
        crash: true,
      } satisfies ThirdPartyArgs,
      limits: { maxHandles: o.thirdPartyHandles, maxBufferBytes: 1 << 20 },
      resourceLimits: { maxOldGenerationSizeMb: 64 },
    });
    await thirdParty.waitForLog(/^loaded/);
    const plugin = { addr: '127.0.0.1', port: pluginPort };
    const ota = await device.spawn({
      name: 'ota',
      program: program(tcp ? 'ota-tcp' : 'ota'),
      args: tcp
        ? ({ server: { addr: '10.0.0.2', port: serverPort }, port: otaPort, plugin } satisfies OtaTcpArgs)
        : ({ server: { addr: '10.0.0.2', port: serverPort }, port: otaPort, window: o.window, timeoutMs: 40, plugin } satisfies OtaArgs),
    });

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, o.timeoutMs)));
    const all = Promise.all([server.outcome, ota.outcome, thirdParty.outcome]);
    await Promise.race([all, timeout]);
    clearTimeout(timer);
    for (const d of [server, ota, thirdParty]) void d.kill(`scenario timeout after ${o.timeoutMs} ms`);
    const [serverOut, otaOut, thirdOut] = await all;
    const [kernel, serverKernel] = await Promise.all([device.stats(), serverMachine.stats()]);

    const domains: DomainReport[] = [
      domainReport(serverOut, 'update server'),
      domainReport(otaOut, 'OTA updater'),
      domainReport(thirdOut, 'hostile third-party library'),
    ];
    const verdicts = judge(o, otaOut, thirdOut, domains[2]!, kernel);
    return {
      scenario: OTA_ISOLATION.name,
      description: OTA_ISOLATION.description,
      seed: o.seed,
      durationMs: performance.now() - started,
      domains,
      kernel: {
        internalErrors: kernel.internalErrors,
        lastInternalError: kernel.lastInternalError,
        leaks: kernel.leaks,
        pool: kernel.pool,
        stack: kernel.stack,
      },
      links: [
        { name: 'device.eth0 -> server.eth0', faults: o.link, stats: kernel.interfaces[0]?.wire ?? {} },
        { name: 'server.eth0 -> device.eth0', faults: o.link, stats: serverKernel.interfaces[0]?.wire ?? {} },
      ],
      captures: [...kernel.interfaces, ...serverKernel.interfaces].flatMap((i) => (i.capture ? [i.capture.path] : [])),
      timeline: await collectTimeline([device, serverMachine], performance.timeOrigin + started),
      verdicts,
      passed: verdicts.every((v) => v.pass),
    };
  } finally {
    await net.shutdown();
  }
}

function domainReport(out: DomainOutcome, role: string): DomainReport {
  const summary = (out.value ?? out.published) as { attempts?: Attempt[] } | undefined;
  return {
    name: out.name,
    role,
    status: out.status,
    error: out.error,
    summary: summary && 'attempts' in summary ? { ...summary, attempts: undefined } : summary,
    attempts: summary?.attempts ?? [],
    calls: out.final?.calls ?? {},
    malformedFrames: out.final?.malformed ?? 0,
    final: out.final?.accounting,
    restarts: 0,
  };
}

type Stats = Awaited<ReturnType<Machine['stats']>>;

function judge(
  o: { thirdPartyHandles: number },
  ota: DomainOutcome,
  third: DomainOutcome,
  thirdReport: DomainReport,
  kernel: Stats,
): Verdict[] {
  // The device's kernel is the one the attacker shares with the OTA.
  const result = ota.value as { intact?: boolean; sha256?: string; bytes?: number; foreignDatagrams?: number } | undefined;
  const attempts = thirdReport.attempts;
  const breaches = attempts.reduce((n, a) => n + a.breaches, 0);
  // Attacks where any success is a breach (the others are judged by their own verdicts).
  const unjudged = ['open sockets until refused', 'forged chunks to the OTA port', 'random frames', 'inject TCP segments'];
  const hostileTries = attempts.filter((a) => !unjudged.includes(a.name));
  const hoard = attempts.find((a) => a.name === 'open sockets until refused');
  const flood = attempts.find((a) => a.name === 'forged chunks to the OTA port');
  const random = attempts.find((a) => a.name === 'random frames');
  const final = third.final?.accounting;
  const noSocketDrops = kernel.stack['drop.udp.noSocket'] ?? 0;
  return [
    {
      name: 'OTA image intact',
      pass: ota.status === 'returned' && result?.intact === true,
      detail:
        ota.status === 'returned'
          ? `${result?.bytes} bytes, SHA-256 ${result?.intact ? 'matches' : 'DOES NOT match'} (${result?.sha256?.slice(0, 16)}...)`
          : `OTA ${ota.status}: ${ota.error}`,
    },
    {
      name: 'Every hostile call refused',
      pass: hostileTries.length > 0 && breaches === 0 && hostileTries.every((a) => a.tries > 0 && !a.outcomes.OK),
      detail: `${hostileTries.reduce((n, a) => n + a.tries, 0)} port-hijack, stale and forged-handle, malformed-frame and reply-memory probes, ${breaches} breached`,
    },
    {
      name: 'Socket hoarding contained',
      pass: !!hoard && hoard.outcomes.EMFILE === 1 && (hoard.outcomes.OK ?? 0) <= o.thirdPartyHandles,
      detail: hoard ? `refused with EMFILE after ${hoard.outcomes.OK ?? 0} sockets (quota ${o.thirdPartyHandles} handles)` : 'attempt missing',
    },
    {
      name: 'Forged datagrams never reached the OTA',
      pass: !!flood && result?.foreignDatagrams === 0 && noSocketDrops >= (flood.outcomes.OK ?? 0),
      detail: `${flood?.outcomes.OK ?? 0} forged chunks sent, ${result?.foreignDatagrams ?? '?'} received by the OTA, ${noSocketDrops} dropped by the stack for want of a matching socket`,
    },
    {
      name: 'Third-party crash contained, nothing leaked',
      pass:
        third.status === 'threw' &&
        !!final &&
        final.handles + final.buffers + final.bufferBytes + final.sockets + final.pendingCalls === 0 &&
        kernel.leaks.length === 0 &&
        kernel.pool.inUseBuffers === 0 &&
        kernel.internalErrors === 0 &&
        (random?.tries ?? 0) > 0,
      detail:
        `third-party ${third.status}${third.error ? ` (${third.error})` : ''}; after release it holds ` +
        `${final?.handles ?? '?'} handles, ${final?.buffers ?? '?'} buffers; kernel: ${kernel.leaks.length} leaks, ` +
        `${kernel.pool.inUseBuffers} buffers in use, ${kernel.internalErrors} internal errors after ${tallyCalls(thirdReport.calls).total} of its calls ` +
        `(${random?.tries ?? 0} random frames among them)`,
    },
  ];
}
