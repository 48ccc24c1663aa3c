import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MODEL_CONFIG,
  fromHfConfig,
  modelConfigSchema,
  resolveModelConfig,
  toHfConfig,
} from './config.js';
import { ConfigValidationError } from './errors.js';

describe('resolveModelConfig', () => {
  it('fills defaults', () => {
    expect(resolveModelConfig({ vocabSize: 512 })).toEqual({
      ...DEFAULT_MODEL_CONFIG,
      vocabSize: 512,
    });
  });

  it('lists every schema issue as path: message', () => {
    try {
      resolveModelConfig({ hiddenSize: 0, architecture: 'gpt2' as never, typo: 1 } as never);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigValidationError);
      const issues = (error as ConfigValidationError).issues;
      expect(issues).toContain('/hiddenSize: must be >= 1');
      expect(issues).toContain(
        '/architecture: must be one of "llama", "qwen2", "qwen3" (got "gpt2")',
      );
      expect(issues).toContainEqual(expect.stringMatching(/^\/: unknown property 'typo'; known: /));
    }
  });

  it('checks head and group divisibility', () => {
    expect(() => resolveModelConfig({ hiddenSize: 100, numAttentionHeads: 3 })).toThrow(
      '/hiddenSize: must be divisible by numAttentionHeads',
    );
    expect(() => resolveModelConfig({ numAttentionHeads: 4, numKeyValueHeads: 3 })).toThrow(
      '/numKeyValueHeads: must divide numAttentionHeads',
    );
    expect(() =>
      resolveModelConfig({ hiddenSize: 12, numAttentionHeads: 4, numKeyValueHeads: 4 }),
    ).toThrow(/must be even/);
  });
});

describe('Hugging Face config.json', () => {
  it('round-trips through the HF layout', () => {
    const config = resolveModelConfig({
      architecture: 'qwen2',
      vocabSize: 1000,
      tieWordEmbeddings: false,
    });
    const hf = toHfConfig(config, { eosTokenId: 997 });
    expect(hf).toMatchObject({
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      hidden_size: config.hiddenSize,
      num_key_value_heads: config.numKeyValueHeads,
      tie_word_embeddings: false,
      eos_token_id: 997,
    });
    expect(fromHfConfig(JSON.parse(JSON.stringify(hf)))).toEqual(config);
  });

  it('refuses what it cannot run', () => {
    expect(() => fromHfConfig({ model_type: 'gpt2' })).toThrow(ConfigValidationError);
    expect(() => fromHfConfig({ ...toHfConfig(DEFAULT_MODEL_CONFIG), hidden_act: 'gelu' })).toThrow(
      '/hidden_act',
    );
    const { vocab_size: _drop, ...rest } = toHfConfig(DEFAULT_MODEL_CONFIG);
    expect(() => fromHfConfig(rest)).toThrow('/vocab_size: is required');
  });
});

describe('shipped schema', () => {
  it('schemas/model-config.json is the schema the code validates with', async () => {
    const { readFile } = await import('node:fs/promises');
    const shipped = JSON.parse(
      await readFile(new URL('../schemas/model-config.json', import.meta.url), 'utf8'),
    );
    const { $schema, ...rest } = shipped;
    expect($schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(rest).toEqual(JSON.parse(JSON.stringify(modelConfigSchema)));
  });
});
