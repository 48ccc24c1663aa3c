import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@codereasoner/data';

/** The stages of `cr run-all`, in order. Each writes `<run>/<stage>/.done` when its outputs are complete. */
export const STAGES = ['data', 'sft', 'grpo', 'eval', 'bench'] as const;
export type StageName = (typeof STAGES)[number];

export interface StageMarker {
  stage: StageName;
  finishedAt: string;
  seconds: number;
  /** Paths (relative to the run directory) of what the stage produced. */
  artifacts: Record<string, string>;
  /** Figures worth showing in the summary (counts, accuracies, steps). */
  figures: Record<string, unknown>;
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export class RunDirectory {
  constructor(readonly root: string) {}

  stageDir(stage: StageName): string {
    return join(this.root, stage);
  }

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  markerPath(stage: StageName): string {
    return join(this.stageDir(stage), '.done');
  }

  async marker(stage: StageName): Promise<StageMarker | undefined> {
    return readJsonIfExists<StageMarker>(this.markerPath(stage));
  }

  async markDone(marker: Omit<StageMarker, 'finishedAt'>): Promise<StageMarker> {
    const full: StageMarker = { ...marker, finishedAt: new Date().toISOString() };
    await writeJsonAtomic(this.markerPath(marker.stage), full);
    return full;
  }

  /** Deletes a stage's marker, then its outputs and checkpoints, so that it runs again from scratch. */
  async reset(stage: StageName): Promise<void> {
    await rm(this.markerPath(stage), { force: true });
    await rm(this.stageDir(stage), { recursive: true, force: true });
  }
}
