/**
 * Campaign progress on stderr: a live bar on a terminal, a line now and then
 * where stderr is a file or a CI log (a bar there is a wall of carriage
 * returns), nothing when the user asked for JSON.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, failed: number): void;
  /** A message that must not be drawn over by the bar. */
  note(message: string): void;
  stop(): void;
}

/** Plain mode prints on every tenth of the campaign, and at least this often while seeds take long. */
const LINE_INTERVAL_MS = 10_000;

export function createProgress(mode: 'bar' | 'lines' | 'none', scenario: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (mode === 'none') return { update() {}, note: (m) => void stream.write(`${m}\n`), stop() {} };
  const started = performance.now();
  const rate = (done: number) => (done / Math.max((performance.now() - started) / 1000, 1e-3)).toFixed(2);

  if (mode === 'lines') {
    let lastStep = 0;
    let lastAt = started;
    return {
      update(done, failed) {
        const step = Math.floor((done * 10) / total);
        const now = performance.now();
        if (step === lastStep && now - lastAt < LINE_INTERVAL_MS && done < total) return;
        lastStep = step;
        lastAt = now;
        stream.write(`campaign ${scenario}: ${done}/${total} done, ${failed} failed, ${rate(done)}/s\n`);
      },
      note: (m) => void stream.write(`${m}\n`),
      stop() {},
    };
  }

  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `campaign ${scenario} [{bar}] {value}/{total} | {failed} failed | {rate}/s | eta {eta_formatted}`,
      hideCursor: true,
      // A seed takes seconds: a long ETA window smooths it, and the bar need not redraw often.
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { failed: 0, rate: '0.00' });
  return {
    update: (done, failed) => bar.update(done, { failed, rate: rate(done) }),
    note(m) {
      // Move below the bar before writing, so the message is not overwritten by the next redraw.
      stream.write(`\n${m}\n`);
    },
    stop: () => bar.stop(),
  };
}
