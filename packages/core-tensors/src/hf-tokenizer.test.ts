import { createRequire } from 'node:module';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  cruxevalSources,
  HF_FIXTURES,
  mixedStrings,
  qwen25Json,
  readFixtureJson,
  revalSources,
} from './__fixtures__/hf-tokenizers.js';
import { Tokenizer, TokenizerError } from './tokenizer.js';

// The reference: Hugging Face's own `tokenizers` (the Rust library behind transformers' fast
// tokenizers), through its Node binding.
const require = createRequire(import.meta.url);
interface RefEncoding {
  getIds(): number[];
}
interface RefTokenizer {
  encodeBatch(inputs: string[], options: { addSpecialTokens: boolean }): Promise<RefEncoding[]>;
  decodeBatch(ids: number[][], skipSpecialTokens: boolean): Promise<string[]>;
}
const reference = require('tokenizers') as {
  Tokenizer: { fromFile(path: string): RefTokenizer; fromString(json: string): RefTokenizer };
};

/**
 * The strings each family is checked on: CRUXEval and REval programs whole (also with CRLF) and
 * line by line, CRUXEval's inputs and outputs, and mixed text.
 */
function corpusFor(addedTokens: readonly string[], seed: number): string[] {
  const strings: string[] = [];
  for (const { code, input, output } of cruxevalSources()) {
    strings.push(code, input, output, code.replaceAll('\n', '\r\n'));
    strings.push(...code.split('\n'));
  }
  for (const code of revalSources()) {
    strings.push(code, code.replaceAll('\n', '\r\n'));
    strings.push(...code.split('\n'));
  }
  strings.push(...mixedStrings(4000, seed, addedTokens));
  return strings;
}

// Loading a 150k-token file takes a second or two on a loaded machine: load each once.
const memo = <T>(make: () => Promise<T>): (() => Promise<T>) => {
  let value: Promise<T> | undefined;
  return () => (value ??= make());
};
const qwen3 = memo(() => Tokenizer.load(HF_FIXTURES.qwen3));
const llama3 = memo(() => Tokenizer.load(join(HF_FIXTURES.llama3, 'tokenizer.json')));
const llama31 = memo(() => Tokenizer.load(HF_FIXTURES.llama31));

const families = [
  {
    name: 'Qwen3',
    load: qwen3,
    reference: () => reference.Tokenizer.fromFile(join(HF_FIXTURES.qwen3, 'tokenizer.json')),
    nfc: true,
  },
  {
    name: 'Qwen2.5 layout ("a b" merges, 22 added tokens)',
    load: () => Promise.resolve(Tokenizer.fromJSON(qwen25Json())),
    reference: () => reference.Tokenizer.fromString(JSON.stringify(qwen25Json())),
    nfc: true,
  },
  {
    name: 'Llama-3',
    load: llama3,
    reference: () => reference.Tokenizer.fromFile(join(HF_FIXTURES.llama3, 'tokenizer.json')),
    nfc: false,
  },
  {
    name: 'Llama-3.1 (TemplateProcessing BOS)',
    load: llama31,
    reference: () => reference.Tokenizer.fromFile(join(HF_FIXTURES.llama31, 'tokenizer.json')),
    nfc: false,
  },
];

// Timeouts are generous caps for a loaded machine (files of 9-11 MB), not speed checks.
describe.each(families)(
  '$name tokenizer.json against Hugging Face tokenizers',
  { timeout: 300_000 },
  (family) => {
    let ours: Tokenizer;
    let ref: RefTokenizer;
    let strings: string[];
    beforeAll(async () => {
      ours = await family.load();
      ref = family.reference();
      strings = corpusFor(
        ours.addedTokens.map((t) => t.content),
        family.nfc ? 3 : 4,
      );
    }, 300_000);

    it('gives identical ids on at least 10,000 strings, and decode(encode(x)) == x', async () => {
      expect(strings.length).toBeGreaterThanOrEqual(10_000);
      const expected = await ref.encodeBatch(strings, { addSpecialTokens: false });
      const mismatches: string[] = [];
      const ids = strings.map((text, i) => {
        const got = ours.encode(text);
        const want = expected[i]!.getIds();
        if (got.length !== want.length || got.some((id, j) => id !== want[j]))
          mismatches.push(
            `${JSON.stringify(text)}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`,
          );
        return got;
      });
      expect(mismatches.slice(0, 5)).toEqual([]);
      const refDecoded = await ref.decodeBatch(ids, false);
      let roundTrips = 0;
      strings.forEach((text, i) => {
        const decoded = ours.decode(ids[i]!);
        // NFC files return the composed form; a lone surrogate cannot be encoded (none are generated).
        expect(decoded).toBe(family.nfc ? text.normalize('NFC') : text);
        expect(decoded).toBe(refDecoded[i]);
        roundTrips++;
      });
      expect(roundTrips).toBe(strings.length);
    });

    it('matches special tokens only when asked, and skips them when decoding on request', async () => {
      const special = ours.addedTokens.filter((t) => t.special);
      const text = `x${special[1]!.content}y${special[2]!.content}`;
      const ids = ours.encode(text);
      expect(ids).toContain(special[1]!.id);
      const plain = ours.encode(text, { specialTokens: false });
      expect(plain).not.toContain(special[1]!.id);
      expect(ours.decode(plain)).toBe(text);
      expect(ours.decode(ids, { skipSpecialTokens: true })).toBe('xy');
      const [refSkipped] = await ref.decodeBatch([ids], true);
      expect(refSkipped).toBe('xy');
    });
  },
);

describe('pretrained tokenizer details', { timeout: 120_000 }, () => {
  it('reads the families as published: sizes, added tokens, ChatML availability', async () => {
    const qwen = await qwen3();
    expect(qwen.vocabSize).toBe(151669);
    expect(qwen.hasChatML).toBe(true);
    expect(qwen.special).toEqual({ eos: 151643, pad: 151643, imStart: 151644, imEnd: 151645 });
    const think = qwen.addedTokens.find((t) => t.content === '<think>')!;
    expect(think).toEqual({ id: 151667, content: '<think>', special: false, normalized: false });
    // Non-special added tokens are matched even when special tokens are not, as in `tokenizers`.
    expect(qwen.encode('<think><|im_end|>', { specialTokens: false })[0]).toBe(151667);
    expect(qwen.isSpecial(151667)).toBe(false);
    expect(qwen.decode([151667, 151645], { skipSpecialTokens: true })).toBe('<think>');

    const llama = await llama3();
    expect(llama.vocabSize).toBe(128256);
    expect(llama.hasChatML).toBe(false);
    expect(() => llama.special).toThrow(
      expect.objectContaining({ code: 'TOKENIZER_NO_CHATML' }) as Error,
    );
    expect(llama.tokenToId('<|eot_id|>')).toBe(128009);
    // ignore_merges: a piece that is itself a vocabulary entry is one token.
    expect(llama.encode(' indentation')).toHaveLength(1);
  });

  it('adds a TemplateProcessing BOS only with addSpecialTokens, as `tokenizers` does', async () => {
    // Llama-3.1+ files carry this post-processor; the published 3.0 file has a ByteLevel one.
    const json = readFixtureJson('llama3', 'tokenizer.json');
    json['post_processor'] = {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [
            { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
          ],
          pair: [],
          special_tokens: {
            '<|begin_of_text|>': {
              id: '<|begin_of_text|>',
              ids: [128000],
              tokens: ['<|begin_of_text|>'],
            },
          },
        },
      ],
    };
    const ours = Tokenizer.fromJSON(json);
    const ref = reference.Tokenizer.fromString(JSON.stringify(json));
    for (const addSpecialTokens of [true, false]) {
      const [want] = await ref.encodeBatch(['Hello world'], { addSpecialTokens });
      expect(ours.encode('Hello world', { addSpecialTokens })).toEqual(want!.getIds());
    }
    expect(ours.encode('Hello', { addSpecialTokens: true })[0]).toBe(128000);
    // written back as read
    expect((ours.toJSON() as Record<string, unknown>)['post_processor']).toEqual(
      json['post_processor'],
    );
  });

  it('writes a loaded file back so that `tokenizers` reads the same tokenizer', async () => {
    const ours = await qwen3();
    const written = JSON.stringify(ours.toJSON());
    const again = Tokenizer.fromJSON(JSON.parse(written));
    const ref = reference.Tokenizer.fromString(written);
    const text = 'def f(x):\r\n    return "世界" + e\u0301 <think> 12345<|im_end|>';
    const [want] = await ref.encodeBatch([text], { addSpecialTokens: false });
    expect(again.encode(text)).toEqual(want!.getIds());
    expect(again.encode(text)).toEqual(ours.encode(text));
  });

  it.each([
    ['normalizer', { type: 'NFKC' }, 'normalizer.type "NFKC" is not supported'],
    [
      'pre_tokenizer',
      {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Removed', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, use_regex: false },
        ],
      },
      'pre_tokenizer.pretokenizers[0].behavior "Removed" is not supported',
    ],
    [
      'pre_tokenizer',
      {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: '(?>a+)' }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, use_regex: false },
        ],
      },
      'pre_tokenizer.pretokenizers[0].pattern.Regex: the group (?> is not supported',
    ],
    ['pre_tokenizer', { type: 'Metaspace' }, 'pre_tokenizer.type "Metaspace" is not supported'],
    ['decoder', { type: 'WordPiece' }, 'decoder "WordPiece" is not supported'],
    [
      'post_processor',
      { type: 'BertProcessing' },
      'post_processor.type "BertProcessing" is not supported',
    ],
  ])('refuses an unsupported %s naming the field', (field, value, message) => {
    const json = readFixtureJson('llama3', 'tokenizer.json');
    json[field] = value;
    expect(() => Tokenizer.fromJSON(json, 'tokenizer.json')).toThrow(TokenizerError);
    expect(() => Tokenizer.fromJSON(json, 'tokenizer.json')).toThrow(message);
  });

  it('refuses unsupported model and added-token fields naming them', () => {
    const json = readFixtureJson('llama3', 'tokenizer.json') as {
      model: Record<string, unknown>;
      added_tokens: Record<string, unknown>[];
    };
    json.model['byte_fallback'] = true;
    expect(() => Tokenizer.fromJSON(json)).toThrow('model.byte_fallback true is not supported');
    json.model['byte_fallback'] = false;
    json.added_tokens[3]!['lstrip'] = true;
    expect(() => Tokenizer.fromJSON(json)).toThrow('added_tokens[3].lstrip true');
  });
});
