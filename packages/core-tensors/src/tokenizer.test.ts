import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BYTE_TO_CHAR, preTokenize } from './byte-level.js';
import { Rng } from '@codereasoner/common';
import { SPECIAL_TOKENS, Tokenizer, TokenizerError } from './tokenizer.js';

// A varied, seeded corpus of Python-like lines (enough distinct pairs to fill a 400-token vocabulary).
const syllables = [
  'de',
  'f',
  'ret',
  'urn',
  'pri',
  'nt',
  'val',
  'ue',
  'co',
  'unt',
  'it',
  'em',
  'la',
  'st',
  'in',
  'dex',
  'ka',
  'zu',
  'mo',
];
const corpus: string[] = (() => {
  const rng = new Rng(7);
  const word = (): string =>
    Array.from({ length: 1 + rng.int(3) }, () => syllables[rng.int(syllables.length)]).join('');
  return Array.from(
    { length: 300 },
    (_, i) =>
      `def ${word()}(${word()}, ${word()}):\n    ${word()} = ${word()} + ${i % 17}\n    return ${word()}.${word()}(${word()})\n`,
  );
})();

/** Reference BPE: apply every merge in rank order to the whole byte sequence of a piece. */
function referenceEncode(tokenizer: Tokenizer, text: string): number[] {
  const json = tokenizer.toJSON() as { model: { vocab: Record<string, number>; merges: string[] } };
  const ids: number[] = [];
  for (const piece of preTokenize(text)) {
    let symbols = Array.from(new TextEncoder().encode(piece), (b) => BYTE_TO_CHAR[b]!);
    for (const merge of json.model.merges) {
      const [a, b] = merge.split(' ') as [string, string];
      const next: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(symbols[i]!);
      }
      symbols = next;
    }
    for (const s of symbols) ids.push(json.model.vocab[s]!);
  }
  return ids;
}

describe('byte-level alphabet', () => {
  it('maps 256 bytes to 256 distinct printable characters (GPT-2 table)', () => {
    expect(new Set(BYTE_TO_CHAR).size).toBe(256);
    expect(BYTE_TO_CHAR[32]).toBe('Ġ');
    expect(BYTE_TO_CHAR[10]).toBe('Ċ');
    expect(BYTE_TO_CHAR[65]).toBe('A');
  });

  it('splits like the GPT-2 pre-tokenizer', () => {
    expect(preTokenize("Hello world's  fine\n\n    x=1")).toEqual([
      'Hello',
      ' world',
      "'s",
      ' ',
      ' fine',
      '\n\n   ',
      ' x',
      '=',
      '1',
    ]);
  });
});

describe('Tokenizer', () => {
  let tokenizer: Tokenizer;
  beforeAll(() => {
    tokenizer = Tokenizer.train(corpus, { vocabSize: 400 });
  });

  it('learns merges deterministically, specials last', () => {
    const again = Tokenizer.train(corpus, { vocabSize: 400 });
    expect(again.toJSON()).toEqual(tokenizer.toJSON());
    expect(tokenizer.vocabSize).toBe(400);
    expect(tokenizer.special.eos).toBe(397);
    expect(tokenizer.special.imStart).toBe(398);
    expect(tokenizer.special.imEnd).toBe(399);
    expect(tokenizer.special.pad).toBe(tokenizer.special.eos);
    // frequent words become single tokens
    expect(tokenizer.encode(' return')).toHaveLength(1);
    expect(tokenizer.encode('def')).toHaveLength(1);
    expect(tokenizer.encode(corpus[0]!)).toEqual(referenceEncode(tokenizer, corpus[0]!));
  });

  it('picks the most frequent pair first, ties by smaller ids', () => {
    const tiny = Tokenizer.train(['aaab aaab aaab cd'], { vocabSize: 262, minFrequency: 1 });
    const json = tiny.toJSON() as { model: { merges: string[] } };
    // a a (10×) first; then aa·a and a·b tie at 5 and the smaller ids (a, b) win; then aa·ab.
    expect(json.model.merges).toEqual(['a a', 'a b', 'aa ab']);
    expect(tiny.encode('aaab aaa')).toEqual([258, 32, 256, 97]);
  });

  it.each([
    ['ascii code', 'def f(x):\n\treturn x ** 2  # square\n'],
    ['emoji and ZWJ sequences', '👩‍👩‍👧‍👦 ok 🎉🎉 😀'],
    ['CJK and accents', '世界你好, héllo wörld, Ελληνικά, עברית'],
    ['whitespace runs', '   \n\n\t\t  x  \r\n     \u00a0\u2003 '],
    ['special-looking text', 'a <|im_start|> b <|endoftext|>c<|im_end|>'],
    ['control bytes', '\u0000\u0001\u007f\u0080\u00ff'],
    ['empty', ''],
  ])('round-trips %s exactly', (_name, text) => {
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    expect(tokenizer.decode(tokenizer.encode(text, { specialTokens: false }))).toBe(text);
  });

  it('replaces lone surrogates (not valid Unicode) with U+FFFD and round-trips the rest', () => {
    const text = 'a\ud800b\udfffc';
    expect(tokenizer.decode(tokenizer.encode(text))).toBe('a\ufffdb\ufffdc');
  });

  it('encodes special tokens as single ids unless disabled', () => {
    const ids = tokenizer.encode('<|im_start|>user\nhi<|im_end|>');
    expect(ids[0]).toBe(tokenizer.special.imStart);
    expect(ids[ids.length - 1]).toBe(tokenizer.special.imEnd);
    expect(tokenizer.encode('<|im_end|>', { specialTokens: false }).length).toBeGreaterThan(1);
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe('user\nhi');
  });

  it('matches a reference BPE on short pieces and on very long ones (heap path)', () => {
    const text =
      corpus.slice(0, 20).join('') +
      ' ' +
      corpus
        .join('')
        .replace(/[^a-z]/g, '')
        .slice(0, 3000);
    expect(tokenizer.encode(text)).toEqual(referenceEncode(tokenizer, text));
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
  });

  it('writes a Hugging Face tokenizer.json and reads it back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tok-'));
    try {
      const path = join(dir, 'tokenizer.json');
      await tokenizer.save(path);
      const json = JSON.parse(await readFile(path, 'utf8'));
      expect(json.model.type).toBe('BPE');
      expect(json.pre_tokenizer).toMatchObject({
        type: 'ByteLevel',
        use_regex: true,
        add_prefix_space: false,
      });
      expect(json.decoder.type).toBe('ByteLevel');
      expect(json.added_tokens.map((t: { content: string }) => t.content)).toEqual([
        SPECIAL_TOKENS.eos,
        SPECIAL_TOKENS.imStart,
        SPECIAL_TOKENS.imEnd,
      ]);
      expect(json.added_tokens.every((t: { special: boolean }) => t.special)).toBe(true);
      expect(json.model.vocab['Ġ']).toBe(BYTE_TO_CHAR.indexOf('Ġ'));
      expect(json.model.merges.length).toBe(400 - 256 - 3);
      const loaded = await Tokenizer.load(path);
      const text = corpus.join('|') + ' 世界 🎉';
      expect(loaded.encode(text)).toEqual(tokenizer.encode(text));
      // the newer ["a", "b"] merge layout loads too
      json.model.merges = json.model.merges.map((m: string) => m.split(' '));
      expect(Tokenizer.fromJSON(json).encode(text)).toEqual(tokenizer.encode(text));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects files that are not byte-level BPE with a TokenizerError naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tok-'));
    try {
      const path = join(dir, 'tokenizer.json');
      await writeFile(path, '{"model": {"type": "WordPiece"}}');
      await expect(Tokenizer.load(path)).rejects.toThrow(TokenizerError);
      await expect(Tokenizer.load(path)).rejects.toThrow(`${path}: model.type must be "BPE"`);
      await writeFile(path, '{not json');
      await expect(Tokenizer.load(path)).rejects.toThrow(/not valid JSON/);
      await expect(Tokenizer.load(join(dir, 'missing.json'))).rejects.toThrow(/cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(() => Tokenizer.train(corpus, { vocabSize: 100 })).toThrow(TokenizerError);
    expect(() => tokenizer.decode([tokenizer.vocabSize])).toThrow(/outside the vocabulary/);
  });

  it('stops merging when pairs fall below minFrequency', () => {
    const small = Tokenizer.train(['abc'], { vocabSize: 1000 });
    expect(small.vocabSize).toBe(259);
    expect(small.decode(small.encode('abc xyz'))).toBe('abc xyz');
  });
});
