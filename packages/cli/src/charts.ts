/** Small dependency-free SVG charts, so a report is one self-contained HTML file. */

export interface Series {
  name: string;
  points: [number, number][];
  /** Drawn dashed, without points: a reference such as a baseline. */
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
  /**
   * Exponential moving average weight in [0, 1) (TensorBoard's smoothing): each series is drawn
   * smoothed, its raw points faint behind. 0 (default) draws the raw line.
   */
  smoothing?: number;
  /** Only integer ticks on the x axis (steps). */
  integerX?: boolean;
  /** Values are fractions shown as percentages (ticks `40%`). */
  percent?: boolean;
}

const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** "Nice" tick values (1, 2, 5 × 10^k) covering [min, max]; with `integer`, steps of at least 1. */
export function niceTicks(min: number, max: number, count = 5, integer = false): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) return integer && !Number.isInteger(min) ? [] : [min];
  const span = max - min;
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  let step =
    [1, 2, 5, 10].map((f) => f * magnitude).find((s) => span / s <= count) ?? 10 * magnitude;
  if (integer) step = Math.max(1, Math.round(step));
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return ticks;
}

function formatTick(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e4 || abs < 1e-3) return value.toExponential(1);
  return String(Number(value.toPrecision(4)));
}

/** TensorBoard's smoothing: an exponential moving average, debiased at the start. */
export function smooth(points: readonly [number, number][], weight: number): [number, number][] {
  if (!(weight >= 0 && weight < 1))
    throw new RangeError(`smoothing must be in [0, 1), got ${weight}`);
  let last = 0;
  let debias = 1;
  return points.map(([x, y]) => {
    last = last * weight + (1 - weight) * y;
    debias *= weight;
    return [x, last / (1 - debias)];
  });
}

export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 560;
  const height = options.height ?? 300;
  // the legend sits in rows between the title and the plot, never over the data
  const legendRows = legendLayout(options.series, width - 76);
  const margin = { top: 34 + 16 * legendRows.rows, right: 16, bottom: 44, left: 60 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const finite = options.series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const title = `<text x="${width / 2}" y="20" text-anchor="middle" font-weight="600">${escapeHtml(options.title)}</text>`;
  if (finite.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">${title}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#666">no data</text></svg>`;
  }
  let [xMin, xMax] = [Math.min(...finite.map((p) => p[0])), Math.max(...finite.map((p) => p[0]))];
  let [yMin, yMax] = [Math.min(...finite.map((p) => p[1])), Math.max(...finite.map((p) => p[1]))];
  if (xMin === xMax) [xMin, xMax] = [xMin - 1, xMax + 1];
  if (yMin === yMax)
    [yMin, yMax] = [yMin - Math.abs(yMin || 1) * 0.1, yMax + Math.abs(yMax || 1) * 0.1];
  const sx = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number) => margin.top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;
  const parts: string[] = [title];
  const yTick = (t: number) =>
    options.percent === true ? `${formatTick(Number((100 * t).toPrecision(12)))}%` : formatTick(t);
  for (const t of niceTicks(yMin, yMax)) {
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e7eb"/>`,
      `<text x="${margin.left - 6}" y="${sy(t) + 4}" text-anchor="end">${yTick(t)}</text>`,
    );
  }
  for (const t of niceTicks(xMin, xMax, 5, options.integerX === true)) {
    parts.push(
      `<text x="${sx(t)}" y="${margin.top + plotH + 16}" text-anchor="middle">${formatTick(t)}</text>`,
    );
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#9ca3af"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 6}" text-anchor="middle">${escapeHtml(options.xLabel)}</text>`,
    `<text transform="translate(14 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(options.yLabel)}</text>`,
  );
  const weight = options.smoothing ?? 0;
  const path = (points: [number, number][]) =>
    points
      .map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
      .join('');
  options.series.forEach((series, index) => {
    const color = PALETTE[index % PALETTE.length];
    const points = series.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (points.length === 0) return;
    if (series.dashed === true) {
      parts.push(
        `<path d="${path(points)}" fill="none" stroke="${color}" stroke-width="1.4" stroke-dasharray="5 4"/>`,
      );
    } else if (weight > 0 && points.length > 2) {
      // raw values faint behind the smoothed line
      parts.push(
        `<path d="${path(points)}" fill="none" stroke="${color}" stroke-width="1" stroke-opacity="0.25"/>`,
        `<path d="${path(smooth(points, weight))}" fill="none" stroke="${color}" stroke-width="2"/>`,
      );
    } else {
      parts.push(`<path d="${path(points)}" fill="none" stroke="${color}" stroke-width="1.8"/>`);
      if (points.length <= 40)
        for (const [x, y] of points)
          parts.push(
            `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`,
          );
    }
    const at = legendRows.positions[index]!;
    const legendX = margin.left + at.x;
    const legendY = 34 + 12 + 16 * at.row;
    parts.push(
      series.dashed === true
        ? `<line x1="${legendX}" x2="${legendX + 12}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${color}" stroke-width="2" stroke-dasharray="3 2"/>`
        : `<rect x="${legendX}" y="${legendY - 9}" width="10" height="10" fill="${color}"/>`,
      `<text x="${legendX + 15}" y="${legendY}">${escapeHtml(series.name)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12" role="img" aria-label="${escapeHtml(options.title)}">${parts.join('')}</svg>`;
}

/** Legend entries laid out in rows above the plot (about 6.5 px per character at 12 px). */
function legendLayout(
  series: readonly Series[],
  width: number,
): { rows: number; positions: { row: number; x: number }[] } {
  const positions: { row: number; x: number }[] = [];
  let row = 0;
  let x = 0;
  for (const entry of series) {
    const size = 15 + Math.ceil(entry.name.length * 6.5) + 14;
    if (x > 0 && x + size > width) {
      row += 1;
      x = 0;
    }
    positions.push({ row, x });
    x += size;
  }
  return { rows: series.length === 0 ? 0 : row + 1, positions };
}
