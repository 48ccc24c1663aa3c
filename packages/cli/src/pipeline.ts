import { rm } from 'node:fs/promises';
import type { StageContext } from './context.js';
import { RunStateError } from './errors.js';
import { STAGES, writeJsonAtomic, type StageMarker, type StageName } from './run-dir.js';
import { STAGE_RUNNERS } from './stages.js';

/**
 * Stages that stop cleanly at a step boundary when the run's AbortSignal fires. For the others
 * the first Ctrl-C ends the process at once: their work is saved per item or per checkpoint, so
 * a re-run loses at most the item or steps in flight.
 */
const ABORTABLE: ReadonlySet<StageName> = new Set(['sft', 'grpo', 'eval']);
let running: StageName | undefined;

/** Whether the stage running now (if any) stops by itself when the signal fires. */
export function runningStageStopsOnSignal(): boolean {
  return running === undefined || ABORTABLE.has(running);
}

/** The stages whose outputs a stage reads: it cannot start before they have finished. */
export const STAGE_NEEDS: Readonly<Record<StageName, readonly StageName[]>> = {
  data: [],
  sft: ['data'],
  grpo: ['data', 'sft'],
  eval: ['data', 'sft'],
  bench: ['sft'],
};

function commandOf(stage: StageName): string {
  return stage === 'data' ? 'data build' : stage;
}

export interface PipelineOptions {
  /** Stages to run, in pipeline order (default: all). */
  stages?: readonly StageName[];
  /** Stages to run again although they finished; every later stage runs again too, since it used their outputs. */
  force?: readonly StageName[];
}

export interface StageReport {
  stage: StageName;
  status: 'done' | 'skipped';
  seconds: number;
  marker: StageMarker;
}

/**
 * Runs the stages in order. A stage whose `.done` marker exists is skipped; a stage without one
 * runs and resumes from whatever partial outputs and checkpoints it left before. A forced stage,
 * and every later one, starts again from scratch.
 */
export async function runPipeline(
  context: StageContext,
  options: PipelineOptions = {},
): Promise<StageReport[]> {
  const wanted = new Set(options.stages ?? STAGES);
  const firstForced = STAGES.findIndex((stage) => options.force?.includes(stage));
  const forced = (stage: StageName) => firstForced !== -1 && STAGES.indexOf(stage) >= firstForced;
  const lastWanted = Math.max(...[...wanted].map((stage) => STAGES.indexOf(stage)));
  // before anything is written: the finished stages this command builds on are intact, and the
  // stages it needs but does not run have finished
  const finished = new Map<StageName, StageMarker>();
  for (const stage of STAGES.slice(0, lastWanted + 1)) {
    if (forced(stage)) continue;
    let marker: StageMarker | undefined;
    try {
      marker = await context.run.marker(stage);
    } catch (error) {
      if (!(error instanceof RunStateError) || !wanted.has(stage)) throw error;
      // a damaged marker of a stage this command runs: the stage runs again and resumes from its outputs
      context.reporter.warn(
        `${error.path} is damaged; running ${stage} again (it resumes from its outputs)`,
      );
      await rm(error.path, { force: true });
    }
    if (!marker) continue;
    const changes = await context.run.changedOutputs(marker);
    if (changes.length > 0) {
      throw new RunStateError(
        context.run.markerPath(stage),
        `${stage} finished earlier in ${context.run.root}, but outputs its .done marker vouches for have changed since:\n` +
          `${changes.map((change) => `  - ${change}`).join('\n')}\n` +
          `Run \`cr run-all --out ${context.run.root} --force ${stage}\` to redo ${stage} and every stage after it.`,
      );
    }
    finished.set(stage, marker);
  }
  for (const stage of wanted) {
    for (const need of STAGE_NEEDS[stage]) {
      if (wanted.has(need) || (finished.has(need) && !forced(need))) continue;
      throw new RunStateError(
        context.run.markerPath(need),
        `cr ${commandOf(stage)} needs the ${need} stage, which has not finished in ${context.run.root}: ` +
          `run \`cr ${commandOf(need)} --out ${context.run.root}\` first, or \`cr run-all --out ${context.run.root}\` for every stage`,
      );
    }
  }
  await writeJsonAtomic(context.run.path('config.json'), context.config);
  context.reporter.info(`run directory: ${context.run.root}`);
  const reports: StageReport[] = [];
  // a forced stage's later stages used its outputs: all of them start again, even those not run
  // now, and before anything runs, so that an interrupted run leaves no stale later stage behind
  if (firstForced !== -1) {
    for (const stage of STAGES.slice(firstForced)) await context.run.reset(stage);
  }
  for (const stage of STAGES) {
    if (!wanted.has(stage)) continue;
    const { title, run } = STAGE_RUNNERS[stage];
    const existing = forced(stage) ? undefined : finished.get(stage);
    context.reporter.stageStart(stage, title);
    if (existing) {
      context.reporter.stageEnd(stage, {
        status: 'skipped',
        seconds: 0,
        note: 'finished earlier; --force ' + stage + ' reruns it',
      });
      reports.push({ stage, status: 'skipped', seconds: existing.seconds, marker: existing });
      continue;
    }
    if (context.signal.aborted) throw new InterruptedError(stage);
    const started = performance.now();
    running = stage;
    try {
      const outcome = await run(context);
      const seconds = (performance.now() - started) / 1000;
      if (outcome === null) {
        context.reporter.stageEnd(stage, {
          status: 'skipped',
          seconds,
          note: 'not applicable to this run',
        });
        continue;
      }
      const marker = await context.run.markDone({ stage, seconds, ...outcome });
      context.reporter.stageEnd(stage, { status: 'done', seconds });
      reports.push({ stage, status: 'done', seconds, marker });
    } catch (error) {
      context.reporter.stageEnd(stage, {
        status: 'failed',
        seconds: (performance.now() - started) / 1000,
      });
      if (context.signal.aborted) throw new InterruptedError(stage, error);
      throw error;
    } finally {
      running = undefined;
    }
  }
  return reports;
}

export class InterruptedError extends Error {
  constructor(
    readonly stage: StageName,
    cause?: unknown,
  ) {
    super(
      `interrupted during ${stage}; run the same command again to resume from the last checkpoint`,
      { cause },
    );
    this.name = 'InterruptedError';
  }
}
