import { describe, expect, it } from 'vitest';
import { renderTerminalSummary, type RunSummary } from './summary.js';

const dataOnly: RunSummary = {
  run: '/runs/x',
  stages: [{ stage: 'data', seconds: 2.3, finishedAt: '2026-11-24T00:00:00.000Z' }],
  totalSeconds: 2.3,
  evaluation: [],
  evalTasks: undefined,
  benchmarks: [],
  artifacts: { 'data.manifest': 'data/manifest.json' },
  figures: {},
};

describe('renderTerminalSummary', () => {
  it('says there is no evaluation yet instead of printing an empty accuracy table', () => {
    const text = renderTerminalSummary(dataOnly, '/runs/x/report.html');
    expect(text).toContain('no evaluation yet');
    expect(text).not.toMatch(/model\s+output\s+input/);
    expect(text).toMatch(/data\s+2\.3s/);
    expect(text).toContain('Report: /runs/x/report.html');
  });

  it('prints the accuracy table once a model was evaluated', () => {
    const evaluated: RunSummary = {
      ...dataOnly,
      evalTasks: 10,
      evaluation: [
        {
          model: 'base',
          checkpoint: 'sft/base',
          accuracy: { output: 0.5, input: 0, coverage: 1, state: 0, path: 0 },
          counts: {} as RunSummary['evaluation'][number]['counts'],
          overall: 0.3,
          seconds: 1,
        },
      ],
    };
    const text = renderTerminalSummary(evaluated, '/runs/x/report.html');
    expect(text).toContain('Held-out accuracy (%), 10 tasks:');
    expect(text).toMatch(/base\s+50\.0\s+0\.0\s+100\.0\s+0\.0\s+0\.0\s+30\.0/);
  });
});
