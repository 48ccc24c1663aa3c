import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { colorEnabled, createReporter, EtaEstimator, formatSeconds } from './progress.js';

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  const chunks: string[] = [];
  (stream as unknown as PassThrough).on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  return { stream, text: () => chunks.join('') };
}

describe('createReporter', () => {
  it('writes plain lines when not attached to a terminal', () => {
    const out = capture();
    const reporter = createReporter({ stream: out.stream, env: {}, clock: () => 0 });
    expect(reporter.mode).toBe('plain');
    reporter.stageStart('data', 'Building the corpus');
    reporter.progress({ stage: 'corpus', completed: 10, total: 10, detail: { kept: 7 } });
    reporter.stageEnd('data', { status: 'done', seconds: 12.34 });
    expect(out.text()).toBe('> Building the corpus\n  corpus 10/10 kept=7\n  data done in 12.3s\n');
  });

  it('prints only warnings and failures in quiet mode', () => {
    const out = capture();
    const reporter = createReporter({ quiet: true, stream: out.stream, env: {} });
    reporter.stageStart('data', 'Building');
    reporter.progress({ stage: 'corpus', completed: 1, total: 1 });
    reporter.info('hello');
    reporter.warn('careful');
    reporter.stageEnd('data', { status: 'failed', seconds: 1 });
    expect(out.text()).toBe('warning: careful\n  data failed in 1.0s\n');
  });
});

describe('colorEnabled', () => {
  it('honours NO_COLOR', () => {
    expect(colorEnabled({ NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled({})).toBe(true);
  });
});

describe('formatSeconds', () => {
  it('switches to minutes past one minute', () => {
    expect(formatSeconds(5.04)).toBe('5.0s');
    expect(formatSeconds(125)).toBe('2m05s');
    expect(formatSeconds(479.6)).toBe('8m00s'); // seen as "7m60s" in a run-all progress line
    expect(formatSeconds(59.96)).toBe('1m00s');
  });
});

/** A fake clock the test moves by hand. */
function clock(): { now: () => number; advance: (seconds: number) => void } {
  let time = 0;
  return { now: () => time, advance: (seconds) => void (time += seconds) };
}

describe('EtaEstimator', () => {
  it('barely moves for one slow step, and follows a lasting slowdown', () => {
    const time = clock();
    const eta = new EtaEstimator(time.now);
    eta.update(0, 100);
    let steady = 0;
    for (let step = 1; step <= 30; step += 1) {
      time.advance(10);
      steady = eta.update(step, 100)!;
    }
    expect(steady).toBeCloseTo(700, 0); // 70 steps at 10 s
    time.advance(40); // one step 4x slower, as under a burst of load
    const afterSpike = eta.update(31, 100)!;
    expect(afterSpike / steady).toBeLessThan(1.15);
    expect(afterSpike / steady).toBeGreaterThan(1);
    for (let step = 32; step <= 62; step += 1) {
      time.advance(30);
      eta.update(step, 100);
    }
    // after five minutes at 30 s a step the estimate is the new pace: 38 steps x 30 s
    expect(eta.estimate(100)).toBeCloseTo(38 * 30, -1);
  });

  it('keeps its estimate when another progress stage comes in between', () => {
    const time = clock();
    const out = capture();
    const reporter = createReporter({ stream: out.stream, env: {}, clock: time.now });
    for (let step = 0; step <= 10; step += 1) {
      reporter.progress({ stage: 'sft', completed: step, total: 20 });
      // an evaluation inside SFT reports under its own stage name
      reporter.progress({ stage: 'sft-eval', completed: 0, total: 5 });
      time.advance(6);
    }
    const lines = out
      .text()
      .split('\n')
      .filter((line) => line.startsWith('  sft '));
    expect(lines.at(-1)).toBe('  sft 10/20 ETA 1m00s');
  });
});

describe('notice', () => {
  it('closes a terminal progress bar first, so the next redraw cannot overprint the line', () => {
    const out = capture();
    Object.assign(out.stream, { isTTY: true, columns: 80 });
    const reporter = createReporter({ stream: out.stream, env: {} });
    expect(reporter.mode).toBe('tty');
    reporter.progress({ stage: 'sft', completed: 1, total: 6 });
    reporter.notice('cr: interrupting after the current step (press Ctrl-C again to stop at once)');
    reporter.progress({ stage: 'sft', completed: 2, total: 6 });
    reporter.close();
    const text = out.text();
    const at = text.indexOf('cr: interrupting');
    // the bar turned line wrapping back on and ended its line before the notice
    expect(text.lastIndexOf('\u001b[?7h', at)).toBeGreaterThan(-1);
    expect(text.slice(0, at).endsWith('\n')).toBe(true);
    expect(text.slice(at)).toMatch(/^cr: interrupting[^\n]*at once\)\n/);
  });
});
