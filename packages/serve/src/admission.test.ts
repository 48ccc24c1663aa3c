import { describe, expect, it } from 'vitest';
import { Admission } from './admission.js';

describe('Admission', () => {
  it('runs up to maxConcurrent, queues up to maxQueue, refuses the rest, first come first served', async () => {
    const admission = new Admission(1, 1);
    const first = await admission.acquire();
    expect('release' in first).toBe(true);
    const order: string[] = [];
    const second = admission.acquire().then((slot) => {
      order.push('second');
      return slot;
    });
    expect(admission.queued).toBe(1);
    expect(await admission.acquire()).toEqual({ refused: 'queue_full' });
    if ('release' in first) first.release();
    const granted = await second;
    expect(order).toEqual(['second']);
    expect(admission.inFlight).toBe(1);
    if ('release' in granted) {
      granted.release();
      granted.release(); // a second release is ignored
    }
    expect(admission.inFlight).toBe(0);
  });

  it('refuses everything once draining, while admitted work finishes', async () => {
    const admission = new Admission(2, 2);
    const running = await admission.acquire();
    admission.drain();
    expect(await admission.acquire()).toEqual({ refused: 'draining' });
    expect(admission.inFlight).toBe(1);
    if ('release' in running) running.release();
    expect(admission.inFlight).toBe(0);
  });
});
