import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { maskedRuns } from '../../../test-support/hf-chat.js';
import { HF_FIXTURES, readFixtureJson } from './__fixtures__/hf-tokenizers.js';
import { encodeChat, renderChat, type ChatMessage } from './chat.js';
import {
  ChatTemplate,
  ChatTemplateError,
  chatMLFormat,
  loadHfChat,
  type TemplateMessage,
} from './chat-template.js';
import { Tokenizer } from './tokenizer.js';

// The expected strings below are written by hand from the templates in the fixtures' tokenizer_config.json.
describe('Qwen3 chat template', { timeout: 120_000 }, () => {
  let tokenizer: Tokenizer;
  let chat: ChatTemplate;
  beforeAll(async () => {
    ({ tokenizer, chat } = await loadHfChat(HF_FIXTURES.qwen3));
  }, 120_000);

  it('renders system and user turns and the generation prompt', () => {
    const messages = [
      { role: 'system', content: 'You reason about code.' },
      { role: 'user', content: 'What is f(2)?' },
    ];
    expect(chat.render(messages, { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou reason about code.<|im_end|>\n<|im_start|>user\nWhat is f(2)?<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(chat.render(messages)).toBe(
      '<|im_start|>system\nYou reason about code.<|im_end|>\n<|im_start|>user\nWhat is f(2)?<|im_end|>\n',
    );
    // enable_thinking=false pre-fills an empty thinking block.
    expect(
      chat.render(messages.slice(1), {
        addGenerationPrompt: true,
        templateKwargs: { enable_thinking: false },
      }),
    ).toBe(
      '<|im_start|>user\nWhat is f(2)?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
  });

  it('keeps the thinking of the turn after the last user message and drops earlier ones', () => {
    const messages: TemplateMessage[] = [
      { role: 'user', content: 'U1' },
      { role: 'assistant', content: '<think>\nR1\n</think>\n\nA1' },
      { role: 'user', content: 'U2' },
      { role: 'assistant', content: '<think>\nR2\n</think>\n\nA2' },
    ];
    expect(chat.render(messages)).toBe(
      '<|im_start|>user\nU1<|im_end|>\n' +
        '<|im_start|>assistant\nA1<|im_end|>\n' +
        '<|im_start|>user\nU2<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\nR2\n</think>\n\nA2<|im_end|>\n',
    );
    // reasoning_content is used as the thinking; a last turn without any gets an empty block.
    expect(
      chat.render([
        { role: 'user', content: 'U' },
        { role: 'assistant', content: 'A', reasoning_content: 'R' },
      ]),
    ).toBe(
      '<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\nA<|im_end|>\n',
    );
    expect(
      chat.render([
        { role: 'user', content: 'U' },
        { role: 'assistant', content: 'A' },
      ]),
    ).toBe(
      '<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n',
    );
  });

  it('masks exactly each assistant turn (thinking included) and its <|im_end|>', () => {
    const messages: TemplateMessage[] = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'U1' },
      { role: 'assistant', content: 'def f(x):\n    return x' },
      { role: 'user', content: 'U2' },
      { role: 'assistant', content: '<think>\nR2\n</think>\n\n6' },
    ];
    const { ids, assistantMask } = chat.encode(messages);
    expect(ids.length).toBe(assistantMask.length);
    expect(maskedRuns(tokenizer, ids, assistantMask)).toEqual([
      'def f(x):\n    return x<|im_end|>',
      '<think>\nR2\n</think>\n\n6<|im_end|>',
    ]);
    expect(tokenizer.decode(ids)).toBe(chat.render(messages));
    // The prompt before each assistant turn is tokenized as generation would see it.
    const prompt = chat.render(messages.slice(0, 2), { addGenerationPrompt: true });
    const promptIds = tokenizer.encode(prompt);
    expect(ids.slice(0, promptIds.length)).toEqual(promptIds);
    expect(assistantMask.slice(0, promptIds.length).every((m) => m === 0)).toBe(true);
    expect(assistantMask[promptIds.length]).toBe(1);
    // The newline after <|im_end|> is not trained.
    expect(tokenizer.decode([ids[ids.length - 1]!])).toBe('\n');
    expect(assistantMask[assistantMask.length - 1]).toBe(0);
  });

  it('masks past turns when enable_thinking=false pre-fills a thinking block they lack', () => {
    const messages: TemplateMessage[] = [
      { role: 'user', content: 'U1' },
      { role: 'assistant', content: 'A1' },
      { role: 'user', content: 'U2' },
      { role: 'assistant', content: 'A2' },
    ];
    const options = { templateKwargs: { enable_thinking: false } };
    expect(chat.render(messages, options)).toBe(
      '<|im_start|>user\nU1<|im_end|>\n' +
        '<|im_start|>assistant\nA1<|im_end|>\n' +
        '<|im_start|>user\nU2<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\n\n</think>\n\nA2<|im_end|>\n',
    );
    const { ids, assistantMask } = chat.encode(messages, options);
    // The last turn's empty thinking block is the generation prompt's pre-fill: not trained.
    expect(maskedRuns(tokenizer, ids, assistantMask)).toEqual(['A1<|im_end|>', 'A2<|im_end|>']);
    expect(tokenizer.decode(ids)).toBe(chat.render(messages, options));
  });

  it('stops at the eos of tokenizer_config.json and pads with its pad token', () => {
    expect(chat.stopTokenIds).toEqual([151645]);
    expect(chat.padTokenId).toBe(151643);
    expect(chat.bosTokenId).toBeUndefined();
  });
});

describe('Llama-3 chat template', { timeout: 120_000 }, () => {
  let tokenizer: Tokenizer;
  let chat: ChatTemplate;
  beforeAll(async () => {
    ({ tokenizer, chat } = await loadHfChat(HF_FIXTURES.llama3));
  }, 120_000);

  it('renders headers, trims contents, writes the BOS once and masks up to <|eot_id|>', () => {
    const messages = [
      { role: 'system', content: 'S' },
      { role: 'user', content: ' U \n' },
      { role: 'assistant', content: 'A = 1\n' },
    ];
    const text = chat.render(messages);
    // This template always ends with the assistant header (it ignores add_generation_prompt).
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nA = 1<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const { ids, assistantMask } = chat.encode(messages);
    expect(ids[0]).toBe(128000);
    expect(ids.filter((id) => id === 128000)).toHaveLength(1);
    expect(maskedRuns(tokenizer, ids, assistantMask)).toEqual(['A = 1<|eot_id|>']);
    expect(tokenizer.decode(ids)).toBe(text);
  });

  it('takes stop ids from generation_config.json over tokenizer_config.json, lists allowed', () => {
    expect(chat.stopTokenIds).toEqual([128001]);
    expect(chat.bosTokenId).toBe(128000);
    const withGeneration = ChatTemplate.fromConfig(
      {
        tokenizerConfig: readFixtureJson('llama3', 'tokenizer_config.json'),
        generationConfig: { eos_token_id: [128001, 128009] },
        modelConfig: { eos_token_id: 128001 },
      },
      tokenizer,
    );
    expect(withGeneration.stopTokenIds).toEqual([128001, 128009]);
    expect(withGeneration.padTokenId).toBe(128001);
    const fromModel = ChatTemplate.fromConfig(
      {
        tokenizerConfig: readFixtureJson('llama3', 'tokenizer_config.json'),
        modelConfig: { eos_token_id: 128009 },
      },
      tokenizer,
    );
    expect(fromModel.stopTokenIds).toEqual([128009]);
    expect(() =>
      ChatTemplate.fromConfig(
        {
          tokenizerConfig: readFixtureJson('llama3', 'tokenizer_config.json'),
          generationConfig: { eos_token_id: [999_999] },
        },
        tokenizer,
      ),
    ).toThrow(/generation_config.json eos_token_id \[999999\]/);
  });
});

describe('Llama-3.1 chat template', { timeout: 120_000 }, () => {
  let tokenizer: Tokenizer;
  let chat: ChatTemplate;
  beforeAll(async () => {
    ({ tokenizer, chat } = await loadHfChat(HF_FIXTURES.llama31));
  }, 120_000);

  it('adds the assistant header only with add_generation_prompt and stops at <|eot_id|>', () => {
    const messages = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'U' },
    ];
    const turns =
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>';
    expect(chat.render(messages)).toBe(turns);
    expect(chat.render(messages, { addGenerationPrompt: true })).toBe(
      turns + '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    expect(chat.stopTokenIds).toEqual([128009]);
    expect(chat.padTokenId).toBe(128009);
    expect(chat.bosTokenId).toBe(128000);
    const { ids, assistantMask } = chat.encode([...messages, { role: 'assistant', content: 'A' }]);
    // The template writes the BOS; encoding adds none (this file's post-processor would).
    expect(ids.filter((id) => id === 128000)).toEqual([128000]);
    expect(maskedRuns(tokenizer, ids, assistantMask)).toEqual(['A<|eot_id|>']);
    expect(assistantMask[assistantMask.length - 1]).toBe(1);
  });
});

describe('chat template errors and the ChatML format', { timeout: 120_000 }, () => {
  let llama: Tokenizer;
  beforeAll(async () => {
    llama = await Tokenizer.load(HF_FIXTURES.llama3);
  }, 120_000);

  it('refuses a config without a template, naming the file', () => {
    const config = readFixtureJson('llama3', 'tokenizer_config.json');
    delete config['chat_template'];
    expect(() => ChatTemplate.fromConfig({ tokenizerConfig: config, source: '/m' }, llama)).toThrow(
      ChatTemplateError,
    );
    expect(() => ChatTemplate.fromConfig({ tokenizerConfig: config, source: '/m' }, llama)).toThrow(
      '/m: tokenizer_config.json has no chat_template',
    );
  });

  it('refuses masks when earlier turns render differently once later ones exist', () => {
    // A template that numbers turns from the end: every prefix renders differently.
    const config = {
      ...readFixtureJson('llama3', 'tokenizer_config.json'),
      chat_template:
        "{% for m in messages %}{{ (messages|length - loop.index0)|string + m['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '>' }}{% endif %}",
    };
    const chat = ChatTemplate.fromConfig({ tokenizerConfig: config }, llama);
    expect(() =>
      chat.encode([
        { role: 'user', content: 'u' },
        { role: 'assistant', content: 'a' },
      ]),
    ).toThrow(/assistant messages\[1\]: neither/);
  });

  it('reads chat_template.jinja and named templates, and generation_config.json from a directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chat-'));
    try {
      const config = readFixtureJson('llama3', 'tokenizer_config.json');
      config['chat_template'] = [{ name: 'default', template: '{{ messages[0].content }}' }];
      await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
      await writeFile(join(dir, 'generation_config.json'), '{"eos_token_id": [128001, 128009]}');
      const chat = await ChatTemplate.load(dir, llama);
      expect(chat.render([{ role: 'user', content: 'hi' }])).toBe('hi');
      expect(chat.stopTokenIds).toEqual([128001, 128009]);
      await writeFile(join(dir, 'chat_template.jinja'), '[{{ messages[0].content }}]');
      expect((await ChatTemplate.load(dir, llama)).render([{ role: 'user', content: 'hi' }])).toBe(
        '[hi]',
      );
      await writeFile(join(dir, 'generation_config.json'), '{not json');
      await expect(ChatTemplate.load(dir, llama)).rejects.toThrow(
        /generation_config.json is not a JSON object/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('offers the from-scratch ChatML path through the same interface', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'f(2)?' },
      { role: 'assistant', content: '6' },
    ];
    const tokenizer = Tokenizer.train([renderChat(messages).repeat(5)], { vocabSize: 300 });
    const format = chatMLFormat(tokenizer);
    expect(format.render(messages)).toBe(renderChat(messages));
    expect(format.encode(messages)).toEqual(encodeChat(tokenizer, messages));
    expect(format.stopTokenIds).toEqual([tokenizer.special.imEnd, tokenizer.special.eos]);
    expect(format.padTokenId).toBe(tokenizer.special.pad);
    expect(() => chatMLFormat(llama)).toThrow(/no ChatML tokens/);
  });
});
