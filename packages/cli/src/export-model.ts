import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors.js';

// `cr export --checkpoint`: a trained model back into the Hugging Face layout it came in. The
// work is core-tensors' `savePretrained`; this file only reads the flags.

export interface ExportModelOptions {
  checkpoint: string;
  out: string;
  dtype?: 'bf16' | 'f16' | 'f32';
  maxShardSize?: number;
}

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
};

/** transformers' `max_shard_size` spelling: "5GB" (decimal), "500MiB" (binary) or a byte count. */
export function parseShardSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?$/i.exec(value.trim());
  const bytes = match === null ? NaN : Number(match[1]) * UNITS[(match[2] ?? 'B').toUpperCase()]!;
  if (!(bytes >= 1))
    throw new InvalidArgumentError('must be a size such as 5GB, 500MB, 2GiB or a byte count');
  return Math.floor(bytes);
}

const DTYPES = { bf16: 'BF16', f16: 'F16', f32: 'F32' } as const;

/**
 * Loads `checkpoint` (a training checkpoint of any stage, full or LoRA; LoRA adapters are merged
 * into the written weights) and writes it where `out` says in the layout of the Hugging Face
 * directory the model was loaded from: its tensor names, config.json and generation_config.json,
 * tokenizer and chat-template files, its dtype (bf16 stays bf16 although training ran in float32)
 * and sharding above `maxShardSize` (transformers' default 5GB) with model.safetensors.index.json.
 */
export async function exportModelCommand(
  io: { stdout: { write(text: string): unknown } },
  options: ExportModelOptions,
): Promise<void> {
  const core = await import('@codereasoner/core-tensors');
  await core.initBackend();
  const checkpoint = resolve(options.checkpoint);
  const out = resolve(options.out);
  if (out === checkpoint)
    throw new UsageError(`--out ${options.out}: choose another directory than the checkpoint`);
  const { model } = await core.loadCheckpoint(checkpoint, { trainable: false });
  try {
    const { files, totalBytes } = await core.savePretrained(out, model, {
      ...(options.dtype === undefined ? {} : { dtype: DTYPES[options.dtype] }),
      ...(options.maxShardSize === undefined ? {} : { maxShardBytes: options.maxShardSize }),
    });
    const weights = files.filter((file) => file.endsWith('.safetensors')).length;
    io.stdout.write(`${out}\t${weights} weight file(s), ${totalBytes} bytes\n`);
  } finally {
    model.dispose();
  }
}
