/**
 * The HTML report opened in a real browser: headless Chromium (Debian's
 * package) driven by playwright-core. The report is built here from a
 * fixture shaped like an ota-isolation run, so no scenario has to run.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderedTracks, renderHtmlReport, tallyCalls, type ScenarioReport, type TimelineEvent } from '@moat/sim';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`${CHROMIUM} is missing: the HTML report's browser checks are skipped (apt-get install chromium)`);

// Hostile strings, as a third-party library could choose them: each must show as text and do nothing.
const EVIL_DOMAIN = 'third-party<script>window.__pwned = "domain"</script>';
const EVIL_ATTEMPT = '<img src=x onerror="window.__pwned = \'attempt\'">';
const EVIL_LOG = '</title></text></svg><script>window.__pwned = "log"</script>';

/** A small deterministic generator, so the fixture is the same on every run. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A timeline like an ota-isolation run's: a TCP download across a lossy link while a hostile library probes the kernel. */
function fixtureTimeline(): TimelineEvent[] {
  const random = rng(7);
  const ev: TimelineEvent[] = [];
  const add = (e: TimelineEvent) => ev.push(e);
  const call = (track: string, ts: number, dur: number, name: string, result = 'OK', args: Record<string, string | number> = {}) =>
    add({ ts, dur, track, kind: 'syscall', name, args: { result, ...args } });
  const fwd = 'link:device.eth0 -> server.eth0';
  const back = 'link:server.eth0 -> device.eth0';
  const client = '10.0.0.1:24681';
  const server = '10.0.0.2:24680';
  const conn = `${client} > ${server}`;
  const move = (track: string, ts: number, from: string, to: string) => add({ ts, track, kind: 'transition', name: `${from} -> ${to}`, args: { conn } });

  add({ ts: 0, track: 'kernel:device', kind: 'lifecycle', name: 'boot' });
  add({ ts: 0, track: 'kernel:server', kind: 'lifecycle', name: 'boot' });
  for (const [i, d] of ['update-server', EVIL_DOMAIN, 'ota'].entries()) add({ ts: 150 + i * 900, track: d, kind: 'lifecycle', name: 'spawn' });

  // The server listens.
  call('update-server', 400, 14, 'socket', 'OK', { handle: 1 });
  call('update-server', 420, 9, 'bind', 'OK', { port: 24680 });
  call('update-server', 435, 8, 'listen');
  add({ ts: 440, track: 'kernel:server', kind: 'transition', name: 'CLOSED -> LISTEN', args: { conn: `${server} listen` } });
  add({ ts: 450, track: 'update-server', kind: 'log', name: 'listening on 24680' });

  // The hostile library: port hijacks, then forged handles, all refused.
  let t = 1300;
  call(EVIL_DOMAIN, t, 12, 'socket', 'OK', { handle: 1 });
  for (const addr of ['0.0.0.0', '127.0.0.1', '10.0.0.1']) call(EVIL_DOMAIN, (t += 20), 6, 'bind', 'EADDRINUSE', { addr, port: 24681 });
  for (let h = -10; h < 300; h++) {
    t += 3 + random() * 4;
    call(EVIL_DOMAIN, t, 1 + random() * 3, ['sendto', 'recv', 'close'][h % 3]!, 'EBADF', { handle: h });
  }
  add({ ts: t + 5, track: EVIL_DOMAIN, kind: 'log', name: EVIL_LOG });
  add({ ts: t + 6, track: EVIL_DOMAIN, kind: 'log', name: 'loaded' });

  // The OTA connects: the three-way handshake.
  call('ota', 2100, 10, 'socket', 'OK', { handle: 1 });
  call('ota', 2115, 7, 'bind', 'OK', { port: 24681 });
  call('ota', 2130, 480, 'connect', 'OK', { addr: server });
  move('kernel:device', 2140, 'CLOSED', 'SYN_SENT');
  add({ ts: 2145, track: fwd, kind: 'packet', name: `tcp ${client} > ${server} [S]`, args: { len: 60 } });
  add({ ts: 2400, track: 'kernel:server', kind: 'transition', name: 'LISTEN -> SYN_RECEIVED', args: { conn } });
  add({ ts: 2410, track: back, kind: 'packet', name: `tcp ${server} > ${client} [S.]`, args: { len: 60 } });
  move('kernel:device', 2600, 'SYN_SENT', 'ESTABLISHED');
  add({ ts: 2602, track: fwd, kind: 'packet', name: `tcp ${client} > ${server} [.]`, args: { len: 52 } });
  add({ ts: 2850, track: 'kernel:server', kind: 'transition', name: 'SYN_RECEIVED -> ESTABLISHED', args: { conn } });
  call('update-server', 500, 2360, 'accept', 'OK', { handle: 2 });
  add({ ts: 2650, track: 'ota', kind: 'log', name: 'connected, downloading' });

  // The download: segments one way, ACKs the other, with the link's faults; the OTA reads as data comes.
  t = 3000;
  let seq = 1;
  for (let i = 0; i < 600; i++) {
    t += 40 + random() * 120;
    const len = 1448;
    const fault = random();
    if (fault < 0.03) add({ ts: t + 1, track: back, kind: 'fault', name: 'loss', args: { seq } });
    else if (fault < 0.045) add({ ts: t + 1, track: back, kind: 'fault', name: 'duplicate', args: { seq } });
    else if (fault < 0.05) add({ ts: t + 1, track: back, kind: 'fault', name: 'corrupt', args: { seq } });
    add({ ts: t, track: back, kind: 'packet', name: `tcp ${server} > ${client} [.] seq ${seq}:${seq + len}`, args: { len: len + 52 } });
    if (i % 2 === 1) add({ ts: t + 2100, track: fwd, kind: 'packet', name: `tcp ${client} > ${server} [.] ack ${seq + len}`, args: { len: 52 } });
    if (i % 4 === 0) call('update-server', t - 30, 8 + random() * 10, 'send', 'OK', { bytes: 4 * len });
    if (i % 3 === 0) call('ota', t + 2050, 5 + random() * 30, 'recv', 'OK', { bytes: 3 * len });
    seq += len;
  }
  // The promise API lets two calls be pending at once: a poll overlapping a recv.
  call('ota', t + 2300, 900, 'poll', 'OK');
  call('ota', t + 2500, 200, 'recv', 'OK', { bytes: 1024 });
  add({ ts: t + 3300, track: 'ota', kind: 'log', name: 'image complete, SHA-256 matches' });

  // Closing: the OTA closes first.
  const c = t + 3400;
  call('ota', c, 20, 'close');
  move('kernel:device', c + 5, 'ESTABLISHED', 'FIN_WAIT_1');
  add({ ts: c + 6, track: fwd, kind: 'packet', name: `tcp ${client} > ${server} [F.]`, args: { len: 52 } });
  move('kernel:server', c + 260, 'ESTABLISHED', 'CLOSE_WAIT');
  move('kernel:device', c + 520, 'FIN_WAIT_1', 'FIN_WAIT_2');
  call('update-server', c + 600, 15, 'close');
  move('kernel:server', c + 610, 'CLOSE_WAIT', 'LAST_ACK');
  add({ ts: c + 612, track: back, kind: 'packet', name: `tcp ${server} > ${client} [F.]`, args: { len: 52 } });
  move('kernel:device', c + 860, 'FIN_WAIT_2', 'TIME_WAIT');
  move('kernel:server', c + 1120, 'LAST_ACK', 'CLOSED');
  add({ ts: c + 1200, track: 'ota', kind: 'lifecycle', name: 'exit', args: { status: 'returned' } });
  add({ ts: c + 1300, track: EVIL_DOMAIN, kind: 'lifecycle', name: 'throw', args: { error: 'deliberate crash while holding sockets' } });
  add({ ts: c + 1310, track: 'kernel:device', kind: 'lifecycle', name: 'release', args: { domain: EVIL_DOMAIN, handles: 3 } });
  add({ ts: c + 1500, track: 'update-server', kind: 'lifecycle', name: 'exit', args: { status: 'returned' } });
  return ev.sort((a, b) => a.ts - b.ts);
}

function fixtureReport(): ScenarioReport {
  const events = fixtureTimeline();
  const zero = { handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, pendingCalls: 0, streamBytes: 0 };
  return {
    scenario: 'ota-isolation',
    description: 'An OTA updater downloads firmware over TCP across a lossy link while a hostile third-party library attacks its sockets.',
    seed: 1,
    durationMs: (events[events.length - 1]!.ts + 500) / 1000,
    domains: [
      {
        name: 'update-server',
        role: 'update server',
        status: 'returned',
        summary: { bytes: 4 << 20, sha256: '5e1f'.repeat(16) },
        attempts: [],
        calls: { socket: { OK: 1 }, bind: { OK: 1 }, listen: { OK: 1 }, accept: { OK: 1 }, send: { OK: 150 }, close: { OK: 1 } },
        malformedFrames: 0,
        final: zero,
        restarts: 0,
      },
      {
        name: 'ota',
        role: 'OTA updater',
        status: 'returned',
        summary: { received: 4 << 20, intact: true },
        attempts: [],
        calls: { socket: { OK: 1 }, bind: { OK: 1 }, connect: { OK: 1 }, recv: { OK: 201 }, poll: { OK: 1 }, close: { OK: 1 } },
        malformedFrames: 0,
        final: zero,
        restarts: 0,
      },
      {
        name: EVIL_DOMAIN,
        role: 'hostile third-party library',
        status: 'threw',
        error: 'deliberate crash while holding sockets',
        attempts: [
          { name: 'bind the OTA port', tries: 3, outcomes: { EADDRINUSE: 3 }, breaches: 0 },
          { name: 'forged handles -10..4096', tries: 12_321, outcomes: { EBADF: 12_321 }, breaches: 0, note: 'sendto, recv and close on each' },
          { name: EVIL_ATTEMPT, tries: 2, outcomes: { EINVAL: 1, OK: 1 }, breaches: 1, note: 'a breach, to show how one looks' },
          { name: 'hoard sockets', tries: 33, outcomes: { OK: 32, EMFILE: 1 }, breaches: 0 },
        ],
        calls: { socket: { OK: 33, EMFILE: 1 }, bind: { EADDRINUSE: 3 }, sendto: { EBADF: 4107 }, recv: { EBADF: 4107 }, close: { EBADF: 4107, OK: 1 } },
        malformedFrames: 212,
        final: zero,
        restarts: 0,
      },
    ],
    kernel: {
      internalErrors: 0,
      leaks: [],
      pool: { capacityBytes: 64 << 20, inUseBytes: 0, inUseBuffers: 0, allocations: 9_214, failures: 0, reservedBytes: 0, injectedFailures: 0 },
      stack: { 'drop.udp.noSocket': 200, 'drop.tcp.badChecksum': 4, 'tcp.segmentsIn': 412, 'tcp.segmentsOut': 640 },
    },
    links: [
      {
        name: 'device.eth0 -> server.eth0',
        faults: { mtu: 1500, latencyMs: 2, jitterMs: 1, loss: 0.02, duplicate: 0.01, reorder: 0.01, corrupt: 0.005 },
        stats: { offered: 306, delivered: 300, lost: 6, duplicated: 3, reordered: 2, corrupted: 1 },
      },
      {
        name: 'server.eth0 -> device.eth0',
        faults: { mtu: 1500, latencyMs: 2, jitterMs: 1, loss: 0.02, duplicate: 0.01, reorder: 0.01, corrupt: 0.005 },
        stats: { offered: 602, delivered: 585, lost: 17, duplicated: 9, reordered: 5, corrupted: 3 },
      },
    ],
    captures: ['/tmp/moat/device-eth0.pcap', '/tmp/moat/server-eth0.pcap'],
    timeline: { events, dropped: 0, hash: 'a3f1'.repeat(16) },
    verdicts: [
      { name: 'OTA image intact', pass: true, detail: 'SHA-256 of 4194304 bytes matches the server' },
      { name: 'Every hostile call refused', pass: false, detail: `1 breach: ${EVIL_ATTEMPT}` },
      { name: 'Socket hoarding contained', pass: true, detail: 'EMFILE at 32 handles' },
      { name: 'Third-party crash contained, nothing leaked', pass: true, detail: 'all zero after release' },
    ],
    passed: false,
  };
}

describe.skipIf(!hasChromium)('the HTML report in headless Chromium', () => {
  const report = fixtureReport();
  let dir: string;
  let context: BrowserContext;
  let file: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'moat-html-'));
    file = join(dir, 'report.html');
    writeFileSync(file, renderHtmlReport(report));
    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
  });

  afterAll(async () => {
    await context?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opens without errors or requests, shows the report as it is, and runs none of its strings', async () => {
    const page = await context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    const url = pathToFileURL(file).href;
    await page.goto(url, { waitUntil: 'load' });
    if (process.env.MOAT_REPORT_SCREENSHOT) await page.screenshot({ path: process.env.MOAT_REPORT_SCREENSHOT, fullPage: true });

    // The file itself is the only thing the page ever loads.
    expect(requests).toEqual([url]);

    // Verdicts, in order, as the report has them.
    const verdicts = await page.$$eval('tr.verdict', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
    expect(verdicts).toEqual(report.verdicts.map((v) => [v.pass ? 'PASS' : 'FAIL', v.name, v.detail]));
    expect(await page.textContent('#outcome')).toBe('FAIL');

    // One row per domain with its name, role, status and call totals.
    const domains = await page.$$eval('tr.domain', (rows) =>
      rows.map((r) => ({
        attr: r.getAttribute('data-domain'),
        name: r.querySelector('.name')!.textContent,
        role: r.querySelector('.role')!.textContent,
        status: r.querySelector('.status')!.textContent,
        calls: r.querySelector('.calls')!.textContent,
        ok: r.querySelector('.ok')!.textContent,
        malformed: r.querySelector('.malformed')!.textContent,
        breaches: r.querySelector('.breaches')!.textContent,
      })),
    );
    expect(domains).toEqual(
      report.domains.map((d) => {
        const t = tallyCalls(d.calls);
        return {
          attr: d.name,
          name: d.name,
          role: d.role,
          status: d.status,
          calls: t.total.toLocaleString('en-US'),
          ok: t.ok.toLocaleString('en-US'),
          malformed: d.malformedFrames.toLocaleString('en-US'),
          breaches: String(d.attempts.reduce((s, a) => s + a.breaches, 0)),
        };
      }),
    );
    const attempts = await page.$$eval(`.domain-detail tr.attempt td.name`, (cells) => cells.map((c) => c.textContent));
    expect(attempts).toEqual(report.domains[2]!.attempts.map((a) => a.name));

    // One lane per track, in the tracks' order.
    const tracks = orderedTracks(
      report.domains.map((d) => d.name),
      report.timeline!.events,
      report.links!.map((l) => l.name),
    );
    expect(tracks).toHaveLength(7);
    const lanes = await page.$$eval('#timeline-svg g.lane', (gs) => gs.map((g) => g.getAttribute('data-track')));
    expect(lanes).toEqual(tracks);
    // Every event is drawn (merged marks count what they stand for).
    const drawn = await page.$$eval('#timeline-svg .ev', (marks) => marks.reduce((s, m) => s + Number(m.getAttribute('data-count') ?? 1), 0));
    expect(drawn).toBe(report.timeline!.events.length);

    // TCP transitions: the client's and the server's side of the connection, each in order.
    const conns = await page.$$eval('li.conn', (items) =>
      items.map((li) => ({ name: li.querySelector('.conn-name')!.textContent, states: [...li.querySelectorAll('.s')].map((s) => s.textContent) })),
    );
    expect(conns).toContainEqual({
      name: 'kernel:device 10.0.0.1:24681 > 10.0.0.2:24680',
      states: ['CLOSED', 'SYN_SENT', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'TIME_WAIT'],
    });
    expect(conns).toContainEqual({
      name: 'kernel:server 10.0.0.1:24681 > 10.0.0.2:24680',
      states: ['LISTEN', 'SYN_RECEIVED', 'ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSED'],
    });

    // The hostile strings are text on the page, and none of them ran.
    expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    expect(await page.$$eval('script', (s) => s.length)).toBe(1);
    expect(await page.$$eval('img', (s) => s.length)).toBe(0);
    expect(await page.textContent(`tr.domain .name`)).toBe('update-server');
    expect(await page.$$eval('tr.domain .name', (cells) => cells.map((c) => c.textContent))).toContain(EVIL_DOMAIN);
    const logs = await page.$$eval('details.log li', (lis) => lis.map((li) => li.textContent));
    expect(logs.some((l) => l?.endsWith(EVIL_LOG))).toBe(true);

    // The page's own script runs under its CSP: unticking a kind hides its marks.
    const packet = page.locator('#timeline-svg .ev.packet').first();
    expect(await packet.isVisible()).toBe(true);
    await page.uncheck('#kinds input[data-kind="packet"]');
    expect(await packet.isVisible()).toBe(false);
    expect(await page.locator('#timeline-svg .ev.syscall').first().isVisible()).toBe(true);

    expect(problems).toEqual([]);
    await page.close();
  });

  it('prints on A4 without errors', async () => {
    const page = await context.newPage();
    await page.goto(pathToFileURL(file).href);
    const pdf = await page.pdf({ format: 'A4', printBackground: true });
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    await page.close();
  });
});
