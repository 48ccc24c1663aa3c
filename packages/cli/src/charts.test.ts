import { describe, expect, it } from 'vitest';
import { escapeHtml, lineChart, niceTicks, smooth } from './charts.js';

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

describe('smooth', () => {
  it("is TensorBoard's debiased moving average", () => {
    // weight 0.5: 0.5·y1 / 0.5 = y1; then (0.25·2 + 0.5·4) / 0.75 = 10/3
    const out = smooth(
      [
        [1, 2],
        [2, 4],
      ],
      0.5,
    );
    expect(out[0]).toEqual([1, 2]);
    expect(out[1]![0]).toBe(2);
    expect(out[1]![1]).toBeCloseTo(10 / 3, 12);
    expect(() => smooth([], 1)).toThrow(RangeError);
  });
});

describe('lineChart for training curves', () => {
  const points: [number, number][] = Array.from({ length: 7 }, (_, i) => [i + 1, 0.1 * i]);
  const svg = lineChart({
    title: 'reward',
    xLabel: 'step',
    yLabel: 'accuracy',
    integerX: true,
    percent: true,
    smoothing: 0.6,
    series: [
      { name: 'verified', points },
      {
        name: 'best baseline',
        dashed: true,
        points: [
          [1, 0.3],
          [7, 0.3],
        ],
      },
    ],
  });
  const xTicks = [
    ...svg.matchAll(/<text x="[\d.]+" y="(\d+(?:\.\d+)?)" text-anchor="middle">([^<]+)</g),
  ]
    .filter((m) => m[2] !== 'step' && m[2] !== 'reward')
    .map((m) => m[2]!);

  it('draws the raw line faint behind the smoothed one, and baselines dashed', () => {
    expect(svg).toContain('stroke-opacity="0.25"');
    expect(svg.match(/<path /g)).toHaveLength(3);
    expect(svg).toContain('stroke-dasharray="5 4"');
  });

  it('labels steps with integers only and values in percent', () => {
    expect(xTicks.length).toBeGreaterThan(1);
    for (const tick of xTicks) expect(Number.isInteger(Number(tick)), tick).toBe(true);
    expect(svg).toContain('>60%<');
    expect(niceTicks(1, 3, 5, true)).toEqual([1, 2, 3]);
  });

  it('puts the legend above the plot, not over the data', () => {
    const plotTop = Number(
      /<rect x="60" y="(\d+)" width="[\d.]+" height="[\d.]+" fill="none"/.exec(svg)![1],
    );
    const legendYs = [...svg.matchAll(/<text x="[\d.]+" y="(\d+)">(verified|best baseline)</g)].map(
      (m) => Number(m[1]),
    );
    expect(legendYs).toHaveLength(2);
    for (const y of legendYs) expect(y).toBeLessThan(plotTop);
  });
});
