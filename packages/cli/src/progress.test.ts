import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { colorEnabled, createReporter, formatSeconds } from './progress.js';

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream;
  const chunks: string[] = [];
  (stream as unknown as PassThrough).on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  return { stream, text: () => chunks.join('') };
}

describe('createReporter', () => {
  it('writes plain lines when not attached to a terminal', () => {
    const out = capture();
    const reporter = createReporter({ stream: out.stream, env: {} });
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
  });
});
