import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { writeFileAtomic } from '@codereasoner/common';
import { RunStateError } from './errors.js';

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
  /**
   * Every file under `artifacts` (relative to the run directory, `/`-separated) with its size and
   * sha256 when the stage finished, so a later command can tell that an output it would build on
   * has been truncated or replaced since. Absent in markers written before it existed.
   */
  outputs?: Record<string, { bytes: number; sha256: string }>;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function filesUnder(path: string): Promise<string[]> {
  const info = await stat(path);
  if (info.isFile()) return [path];
  if (!info.isDirectory()) return [];
  const files: string[] = [];
  for (const entry of (await readdir(path)).sort()) {
    // markers and the temp files of atomic writes are not outputs
    if (entry === '.done' || entry.includes('.tmp')) continue;
    files.push(...(await filesUnder(join(path, entry))));
  }
  return files;
}

/** Sizes and hashes of every file the artifacts name (files, or directories walked in full). */
export async function hashOutputs(
  root: string,
  artifacts: Record<string, string>,
): Promise<NonNullable<StageMarker['outputs']>> {
  const outputs: NonNullable<StageMarker['outputs']> = {};
  for (const artifact of new Set(Object.values(artifacts))) {
    let files: string[];
    try {
      files = await filesUnder(join(root, artifact));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    for (const file of files) {
      const key = relative(root, file).split(sep).join('/');
      outputs[key] = { bytes: (await stat(file)).size, sha256: await sha256File(file) };
    }
  }
  return outputs;
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

  /** The stage's marker, undefined when it has not finished; a marker that is not valid JSON is a RunStateError naming it. */
  async marker(stage: StageName): Promise<StageMarker | undefined> {
    const path = this.markerPath(stage);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const marker = JSON.parse(text) as StageMarker;
      if (typeof marker !== 'object' || marker === null || typeof marker.artifacts !== 'object')
        throw new Error('not a stage marker');
      return marker;
    } catch (error) {
      throw new RunStateError(
        path,
        `${path} is damaged (${(error as Error).message}), so whether ${stage} finished is unknown: run \`cr ${stage === 'data' ? 'data build' : stage} --out ${this.root}\` to run the stage again (it resumes from its outputs), or add --force to start it from scratch`,
        { cause: error },
      );
    }
  }

  async markDone(marker: Omit<StageMarker, 'finishedAt' | 'outputs'>): Promise<StageMarker> {
    const full: StageMarker = {
      ...marker,
      finishedAt: new Date().toISOString(),
      outputs: await hashOutputs(this.root, marker.artifacts),
    };
    await writeJsonAtomic(this.markerPath(marker.stage), full);
    return full;
  }

  /**
   * What has changed since the stage finished among the outputs its marker vouches for: a file
   * gone, another size (truncated), or other bytes. Empty when all is as recorded.
   */
  async changedOutputs(marker: StageMarker): Promise<string[]> {
    const changes: string[] = [];
    for (const [file, recorded] of Object.entries(marker.outputs ?? {})) {
      const path = join(this.root, file);
      let bytes: number;
      try {
        bytes = (await stat(path)).size;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        changes.push(`${file} is missing`);
        continue;
      }
      if (bytes !== recorded.bytes) {
        changes.push(`${file} has ${bytes} bytes, ${recorded.bytes} when the stage finished`);
      } else if ((await sha256File(path)) !== recorded.sha256) {
        changes.push(`${file} has other contents than when the stage finished (sha256 differs)`);
      }
    }
    return changes;
  }

  /** Deletes a stage's marker, then its outputs and checkpoints, so that it runs again from scratch. */
  async reset(stage: StageName): Promise<void> {
    await rm(this.markerPath(stage), { force: true });
    await rm(this.stageDir(stage), { recursive: true, force: true });
  }
}
