import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/** A temp path in the same directory as `path` (so the final rename is atomic on one filesystem). */
export function tempPathFor(path: string): string {
  counter += 1;
  return join(
    dirname(path),
    `.${basename(path)}.tmp-${process.pid}-${Date.now().toString(36)}-${counter}`,
  );
}

/** fsyncs a directory so a rename inside it survives a crash; some platforms cannot open directories, which is harmless. */
export async function fsyncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Directories cannot be fsynced on every platform (e.g. Windows); the rename is still atomic.
  } finally {
    await handle?.close();
  }
}

/**
 * Writes `data` to `path` atomically and durably (creating its directory): temp file in the same
 * directory, fsync, rename, fsync the directory. Readers see the old file or the new one, never
 * half, and after a power cut the new file is either there whole or not at all.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | readonly Uint8Array[],
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = tempPathFor(path);
  const handle = await open(temp, 'w');
  try {
    const chunks = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks)
      await handle.write(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDirectory(dirname(path));
}
