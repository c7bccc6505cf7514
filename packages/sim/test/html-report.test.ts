/** The HTML report as text; test/html-report.test.ts opens it in a browser. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatMicros, renderHtmlReport } from '../src/html-report.js';
import type { TimelineEvent } from '../src/timeline.js';
import { CONN, fixtureReport } from './fixture.js';

const HOSTILE = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "' onmouseover='alert(1)",
  '</title></text></svg><script>alert(2)</script>',
  '&lt;already escaped&gt;',
];

describe('renderHtmlReport', () => {
  it('escapes every string the report carries, wherever it lands', () => {
    const [a, b, c, d, e] = HOSTILE as [string, string, string, string, string];
    const r = fixtureReport([
      { ts: 1, dur: 2, track: a, kind: 'syscall', name: b, args: { [c]: d } },
      { ts: 2, track: a, kind: 'log', name: d },
      { ts: 3, track: `kernel:${b}`, kind: 'transition', name: `${c} -> ${e}`, args: { conn: a } },
      { ts: 4, track: `link:${e}`, kind: 'packet', name: a },
    ]);
    r.scenario = a;
    r.description = b;
    r.domains[2]!.name = a;
    r.domains[2]!.role = c;
    r.domains[2]!.error = d;
    r.domains[2]!.attempts[0]!.name = b;
    r.domains[2]!.attempts[0]!.note = e;
    r.domains[2]!.attempts[0]!.outcomes = { [d]: 1 };
    r.domains[2]!.summary = { text: a };
    r.domains[2]!.calls = { [a]: { [b]: 1 } };
    r.verdicts[0]!.name = c;
    r.verdicts[0]!.detail = d;
    r.kernel.leaks = [a];
    r.kernel.lastInternalError = b;
    r.kernel.stack = { [`drop.${a}`]: 1, [b]: 2 };
    r.links![0]!.name = d;
    r.links![0]!.faults = { [a]: b };
    r.captures = [e];
    r.timeline!.hash = a;
    const html = renderHtmlReport(r);
    for (const s of HOSTILE) expect(html).not.toContain(s);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&amp;lt;already escaped&amp;gt;');
    // Our single script, and no element or handler the report's strings could have made.
    expect(html.match(/<script/g)).toHaveLength(1);
    const markup = html.replace(/(<style>|<script>)[\s\S]*?(<\/style>|<\/script>)/g, '$1$2');
    const tags = markup.match(/<[^>]*>/g)!;
    expect(tags.join('').length + markup.replace(/<[^>]*>/g, '').length).toBe(markup.length);
    expect(markup.replace(/<[^>]*>/g, '')).not.toMatch(/[<>]/);
    for (const tag of tags) {
      const m = /^<(!doctype html|\/?[a-z][\w-]*)((?:\s+[\w:-]+(?:="[^"<>]*")?)*)\s*\/?>$/i.exec(tag);
      expect(m, tag).not.toBeNull();
      expect(m![1]!.toLowerCase()).not.toMatch(/^(img|iframe|object|embed|link|base|button|image|use|foreignobject)$/);
      for (const [, name, value] of m![2]!.matchAll(/\s([\w:-]+)(?:="([^"]*)")?/g)) {
        expect(name!.toLowerCase()).not.toMatch(/^on|^(src|style|xlink:href)$/);
        if (name === 'href') expect(value).toMatch(/^#[a-z]+$/);
      }
    }
  });

  it("survives attempts of any shape (they are a hostile program's own report)", () => {
    const r = fixtureReport();
    const attempts: unknown[] = [
      { name: 'x', tries: '<b>7</b>', outcomes: null, breaches: '<i>1</i>' },
      { name: { toString: () => '<u>obj</u>' }, tries: 1, outcomes: { OK: '<s>1</s>' }, breaches: 1 },
      null,
      'a string',
    ];
    r.domains[2]!.attempts = attempts as never;
    const html = renderHtmlReport(r);
    expect(html).not.toMatch(/<b>7|<i>1|<u>obj|<s>1/);
    expect(html).toContain('&lt;b&gt;7&lt;/b&gt;');
    expect(html.match(/<tr class="attempt/g)).toHaveLength(2);
    expect(html).toMatch(/<td class="num breaches bad">1<\/td>/);
    r.domains[2]!.attempts = { length: 3 } as never;
    expect(() => renderHtmlReport(r)).not.toThrow();
  });

  it('refers to nothing outside itself', () => {
    const html = renderHtmlReport(fixtureReport());
    expect(html).not.toMatch(/\b(?:https?|ftp|wss?|file):/i);
    expect(html).not.toMatch(/\b(?:src|srcset|action|poster|data|xlink:href)\s*=/i);
    for (const [, href] of html.matchAll(/\bhref="([^"]*)"/g)) expect(href).toMatch(/^#[a-z]+$/);
    expect(html).not.toMatch(/@import|url\(/);
  });

  it('allows only its own style and script, by hash, and no fetch of any kind', () => {
    const html = renderHtmlReport(fixtureReport());
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)![1]!;
    const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`style-src ${hash(style)}`);
    expect(csp).toContain(`script-src ${hash(script)}`);
    // The policy comes before anything it governs.
    expect(html.indexOf('Content-Security-Policy')).toBeLessThan(html.indexOf('<style>'));
  });

  it('shows verdicts, domains, links, one lane per track and each connection in order', () => {
    const r = fixtureReport();
    const html = renderHtmlReport(r);
    expect(html.match(/<tr class="verdict /g)).toHaveLength(2);
    expect(html).toContain('<tr class="verdict fail"><td class="result">FAIL</td><td class="name">Every hostile call refused</td>');
    expect(html.match(/<tr class="domain" /g)).toHaveLength(3);
    expect(html.match(/<tr class="link" /g)).toHaveLength(2);
    const lanes = [...html.matchAll(/<g class="lane lane-(\w+)" data-track="([^"]*)"/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(lanes).toEqual([
      'domain update-server',
      'domain ota',
      'domain third-party',
      'kernel kernel:device',
      'kernel kernel:server',
      'link link:device.eth0 -&gt; server.eth0',
      'link link:server.eth0 -&gt; device.eth0',
    ]);
    const conn = /<li class="conn" data-conn="([^"]*)">([\s\S]*?)<\/li><\/ol>/.exec(html)!;
    expect(conn[1]).toBe(`kernel:device ${CONN.replace('>', '&gt;')}`);
    expect([...conn[2]!.matchAll(/<span class="s">([^<]*)<\/span>/g)].map((m) => m[1])).toEqual(['CLOSED', 'SYN_SENT', 'ESTABLISHED', 'FIN_WAIT_1']);
    expect(html).toMatch(/<details class="log" data-track="ota">[\s\S]*?image complete<\/li>/);
  });

  it('marks a gap in a connection where states were not recorded', () => {
    const html = renderHtmlReport(
      fixtureReport([
        { ts: 1, track: 'kernel:a', kind: 'transition', name: 'CLOSED -> SYN_SENT' },
        { ts: 2, track: 'kernel:a', kind: 'transition', name: 'FIN_WAIT_1 -> FIN_WAIT_2' },
      ]),
    );
    const states = [...html.matchAll(/<li class="state ([\w-]+)"[^>]*><span class="s">([^<]*)<\/span>/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(states).toEqual(['st-closed CLOSED', 'st-open SYN_SENT', 'gap …', 'st-close FIN_WAIT_2']);
  });

  it('merges marks that share a pixel, so a long run stays a small page, and counts what each stands for', () => {
    const events: TimelineEvent[] = [];
    for (let i = 0; i < 20_000; i++) events.push({ ts: i * 10, track: 'link:device.eth0 -> server.eth0', kind: 'packet', name: `frame ${i}` });
    for (let i = 0; i < 5_000; i++) events.push({ ts: i * 40, dur: 5, track: 'ota', kind: 'syscall', name: 'recv', args: { result: i % 100 ? 'OK' : 'EAGAIN' } });
    const html = renderHtmlReport(fixtureReport(events));
    const svg = html.slice(html.indexOf('<svg id="timeline-svg"'));
    const marks = [...svg.matchAll(/<(?:rect|path|circle) class="ev (\w+)[^"]*"(?: data-count="(\d+)")?/g)];
    expect(marks.length).toBeLessThan(3_000);
    const count = (kind: string) => marks.filter((m) => m[1] === kind).reduce((s, m) => s + Number(m[2] ?? 1), 0);
    expect(count('packet')).toBe(20_000);
    expect(count('syscall')).toBe(5_000);
    // Refused calls stay visible: they are never merged into successful ones.
    expect(html.match(/class="ev syscall err"/g)!.length).toBeGreaterThan(10);
    expect(html.length).toBeLessThan(2_000_000);
  });

  it('says when there is no timeline, and when the recorder dropped events', () => {
    expect(renderHtmlReport({ ...fixtureReport(), timeline: undefined })).toContain('No timeline was recorded for this run.');
    const r = fixtureReport();
    r.timeline!.dropped = 1234;
    expect(renderHtmlReport(r)).toContain('dropped 1,234 events: this timeline is incomplete');
  });

  it('formats microseconds in the unit that reads best', () => {
    expect([0, 7.25, 950, 1500, 25_000, 999_999, 2_500_000, 61_000_000].map(formatMicros)).toEqual([
      '0 µs',
      '7.3 µs',
      '950 µs',
      '1.5 ms',
      '25 ms',
      '1000 ms',
      '2.5 s',
      '61 s',
    ]);
  });
});
