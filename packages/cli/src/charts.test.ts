import { describe, expect, it } from 'vitest';
import { escapeHtml, lineChart, niceTicks } from './charts.js';

describe('niceTicks', () => {
  it('picks 1-2-5 steps covering the range', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 97)).toEqual([20, 40, 60, 80]);
    expect(niceTicks(5, 5)).toEqual([5]);
  });
});

describe('lineChart', () => {
  it('draws one path per series with a legend and escapes text', () => {
    const svg = lineChart({
      title: 'loss <sft>',
      xLabel: 'step',
      yLabel: 'loss',
      series: [
        {
          name: 'train',
          points: [
            [0, 3],
            [1, 2],
            [2, 1],
          ],
        },
        {
          name: 'eval',
          points: [
            [0, 3.5],
            [2, 1.5],
          ],
        },
      ],
    });
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg).toContain('loss &#60;sft&#62;');
    expect(svg).toContain('>train<');
    expect(svg).toContain('>eval<');
  });

  it('says "no data" rather than drawing an empty axis', () => {
    expect(
      lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [] }] }),
    ).toContain('no data');
  });

  it('ignores non-finite points', () => {
    const svg = lineChart({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 'a',
          points: [
            [0, NaN],
            [1, 2],
            [2, 3],
          ],
        },
      ],
    });
    expect(svg).toMatch(/<path d="M[\d.]+,[\d.]+L[\d.]+,[\d.]+"/);
  });

  it('escapes all HTML specials', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;',
    );
  });
});
