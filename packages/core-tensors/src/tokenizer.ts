import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@codereasoner/common';
import { BYTE_TO_CHAR, fromByteLevel, preTokenize, toByteLevel, utf8 } from './byte-level.js';
import { CodeReasonerError } from './errors.js';
import {
  onigurumaToJs,
  PatternError,
  runPreTokenizer,
  type PreTokenizerStep,
} from './pre-tokenizer.js';

export const SPECIAL_TOKENS = {
  eos: '<|endoftext|>',
  imStart: '<|im_start|>',
  imEnd: '<|im_end|>',
} as const;

/**
 * A tokenizer file cannot be read or is not a supported byte-level BPE `tokenizer.json`
 * (`TOKENIZER_INVALID`), or a ChatML id was asked of a tokenizer without ChatML (`TOKENIZER_NO_CHATML`).
 */
export class TokenizerError extends CodeReasonerError {
  readonly path: string | undefined;
  constructor(
    message: string,
    options: {
      path?: string;
      cause?: unknown;
      code?: 'TOKENIZER_INVALID' | 'TOKENIZER_NO_CHATML';
    } = {},
  ) {
    super(
      options.code ?? 'TOKENIZER_INVALID',
      options.path === undefined ? message : `${options.path}: ${message}`,
      options,
    );
    this.name = 'TokenizerError';
    this.path = options.path;
  }
}

export interface TokenizerTrainOptions {
  /** Total vocabulary size including the 256 byte tokens and the 3 special tokens. */
  vocabSize: number;
  /** Pairs seen fewer times than this are not merged (the vocabulary then stays smaller). Default 2. */
  minFrequency?: number;
}

export interface EncodeOptions {
  /**
   * Whether special added-token strings in `text` become their ids (default true, as Hugging Face
   * does). Non-special added tokens (Qwen3's `<think>`) are always matched, as with Hugging Face's
   * `split_special_tokens`.
   */
  specialTokens?: boolean;
  /**
   * Whether the file's post-processor template adds its tokens (Llama-3's `<|begin_of_text|>`).
   * Default false, unlike transformers' `add_special_tokens=True`: chat templates already write
   * the BOS token themselves, and the from-scratch tokenizer adds nothing either way.
   */
  addSpecialTokens?: boolean;
}

/** An entry of `added_tokens`: matched in the text before the BPE model runs, as Hugging Face does. */
export interface AddedToken {
  id: number;
  content: string;
  /** Special tokens can be skipped when decoding and kept as text with `specialTokens: false`. */
  special: boolean;
  /** Matched on the normalised text (true) or on the raw text (false). */
  normalized: boolean;
}

/** How text becomes pieces for the BPE model; the from-scratch tokenizer uses the defaults. */
interface Pipeline {
  nfc: boolean;
  /** undefined: the GPT-2 ByteLevel split (fast path of the from-scratch tokenizer). */
  preTokenizer: PreTokenizerStep[] | undefined;
  ignoreMerges: boolean;
  /** Ids a TemplateProcessing post-processor puts before and after a single sequence. */
  template: { prefix: number[]; suffix: number[] };
  /** The file's own sections, written back verbatim by `toJSON` (undefined for trained tokenizers). */
  raw: RawSections | undefined;
}

interface RawSections {
  root: Record<string, unknown>;
  model: Record<string, unknown>;
  addedTokens: unknown[];
  mergesAsArrays: boolean;
}

// ignoreBOM keeps a leading U+FEFF (the default decoder drops it, which broke the round trip).
const UTF8_DECODER = new TextDecoder('utf-8', { ignoreBOM: true });

const CHATML_CONTENTS = [SPECIAL_TOKENS.eos, SPECIAL_TOKENS.imStart, SPECIAL_TOKENS.imEnd];

// Pair keys pack two ids in one number; ids stay below 2^21 (Qwen2's 151k vocabulary fits).
const PAIR_SHIFT = 0x200000;
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;

/** A binary max-heap of [count, key] entries; ties go to the smaller key so training is deterministic. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }
  pop(): [number, number] | undefined {
    const n = this.counts.length;
    if (n === 0) return undefined;
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (n > 1) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < n - 1 && this.above(l, best)) best = l;
        if (r < n - 1 && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const DEFAULT_PIPELINE: Pipeline = {
  nfc: false,
  preTokenizer: undefined,
  ignoreMerges: false,
  template: { prefix: [], suffix: [] },
  raw: undefined,
};

type Fail = (message: string) => never;

function typeOf(section: unknown): unknown {
  return typeof section === 'object' && section !== null
    ? (section as Record<string, unknown>)['type']
    : section;
}

/** `normalizer`: null, NFC, or a Sequence of NFC. Returns whether NFC applies. */
function parseNormalizer(section: unknown, fail: Fail, path = 'normalizer'): boolean {
  if (section === null || section === undefined) return false;
  const type = typeOf(section);
  if (type === 'NFC') return true;
  if (type === 'Sequence') {
    const list = (section as Record<string, unknown>)['normalizers'];
    if (!Array.isArray(list)) return fail(`${path}.normalizers must be an array`);
    let nfc = false;
    list.forEach((n, i) => {
      nfc = parseNormalizer(n, fail, `${path}.normalizers[${i}]`) || nfc;
    });
    return nfc;
  }
  return fail(
    `${path}.type ${JSON.stringify(type)} is not supported (null, NFC or a Sequence of NFC)`,
  );
}

/** `pre_tokenizer`: ByteLevel, or a Sequence of `Split` (Isolated) steps ending in ByteLevel. */
function parsePreTokenizer(section: unknown, fail: Fail): PreTokenizerStep[] | undefined {
  const byteLevel = (step: Record<string, unknown>, path: string): PreTokenizerStep[] => {
    if (step['add_prefix_space'] === true)
      fail(`${path}.add_prefix_space true is not supported (must be false)`);
    return step['use_regex'] === false ? [] : [{ kind: 'gpt2' }];
  };
  if (typeof section !== 'object' || section === null)
    return fail('pre_tokenizer must be ByteLevel or a Sequence ending in ByteLevel');
  const root = section as Record<string, unknown>;
  if (root['type'] === 'ByteLevel') {
    const steps = byteLevel(root, 'pre_tokenizer');
    // The plain GPT-2 split keeps the from-scratch fast path.
    return steps.length === 1 ? undefined : steps;
  }
  if (root['type'] !== 'Sequence')
    return fail(
      `pre_tokenizer.type ${JSON.stringify(root['type'])} is not supported (ByteLevel or Sequence of Split and ByteLevel)`,
    );
  const list = root['pretokenizers'];
  if (!Array.isArray(list) || list.length === 0)
    return fail('pre_tokenizer.pretokenizers must be a non-empty array');
  const steps: PreTokenizerStep[] = [];
  list.forEach((item: unknown, i) => {
    const path = `pre_tokenizer.pretokenizers[${i}]`;
    const step = (item ?? {}) as Record<string, unknown>;
    if (step['type'] === 'ByteLevel') {
      if (i !== list.length - 1) fail(`${path}: ByteLevel must be the last step`);
      steps.push(...byteLevel(step, path));
      return;
    }
    if (step['type'] !== 'Split')
      fail(`${path}.type ${JSON.stringify(step['type'])} is not supported (Split or ByteLevel)`);
    if (step['behavior'] !== 'Isolated')
      fail(`${path}.behavior ${JSON.stringify(step['behavior'])} is not supported (Isolated only)`);
    if (step['invert'] === true) fail(`${path}.invert true is not supported`);
    const pattern = (step['pattern'] ?? {}) as Record<string, unknown>;
    let source: string;
    if (typeof pattern['Regex'] === 'string') {
      try {
        source = onigurumaToJs(pattern['Regex']);
      } catch (cause) {
        if (!(cause instanceof PatternError)) throw cause;
        return fail(`${path}.pattern.Regex: ${cause.message}`);
      }
    } else if (typeof pattern['String'] === 'string' && pattern['String'] !== '')
      source = escapeRegExp(pattern['String']);
    else return fail(`${path}.pattern must be { Regex: string } or { String: string }`);
    try {
      steps.push({ kind: 'split', regex: new RegExp(source, 'gu') });
    } catch (cause) {
      fail(`${path}.pattern does not compile as a JavaScript regexp (${(cause as Error).message})`);
    }
  });
  if (typeOf(list[list.length - 1]) !== 'ByteLevel')
    fail('pre_tokenizer: the Sequence must end with ByteLevel (byte-level BPE only)');
  return steps;
}

/** `post_processor`: ByteLevel (no id changes), TemplateProcessing (single), or a Sequence of them. */
function parsePostProcessor(
  section: unknown,
  added: Map<string, number>,
  vocab: Map<string, number>,
  fail: Fail,
  path = 'post_processor',
): { prefix: number[]; suffix: number[] } {
  const result = { prefix: [] as number[], suffix: [] as number[] };
  if (section === null || section === undefined) return result;
  const root = section as Record<string, unknown>;
  const type = typeOf(section);
  if (type === 'ByteLevel') return result;
  if (type === 'Sequence') {
    const list = root['processors'];
    if (!Array.isArray(list)) return fail(`${path}.processors must be an array`);
    list.forEach((p, i) => {
      const part = parsePostProcessor(p, added, vocab, fail, `${path}.processors[${i}]`);
      result.prefix.push(...part.prefix);
      result.suffix.push(...part.suffix);
    });
    return result;
  }
  if (type !== 'TemplateProcessing')
    return fail(
      `${path}.type ${JSON.stringify(type)} is not supported (ByteLevel, TemplateProcessing or Sequence)`,
    );
  const single = root['single'];
  if (!Array.isArray(single)) return fail(`${path}.single must be an array`);
  const specials = (root['special_tokens'] ?? {}) as Record<string, { ids?: unknown }>;
  let seenSequence = false;
  single.forEach((piece: unknown, i) => {
    const p = (piece ?? {}) as Record<string, Record<string, unknown> | undefined>;
    if (p['Sequence'] !== undefined) {
      if (seenSequence || p['Sequence']['id'] !== 'A')
        fail(`${path}.single[${i}]: only one Sequence "A" is supported`);
      seenSequence = true;
      return;
    }
    const name = p['SpecialToken']?.['id'];
    if (typeof name !== 'string')
      fail(`${path}.single[${i}] must be a SpecialToken or the Sequence`);
    const listed = specials[name as string]?.ids;
    const ids = Array.isArray(listed)
      ? (listed as number[])
      : [added.get(name as string) ?? vocab.get(name as string)];
    if (ids.some((id) => typeof id !== 'number'))
      fail(`${path}.single[${i}]: special token ${JSON.stringify(name)} has no id`);
    (seenSequence ? result.suffix : result.prefix).push(...(ids as number[]));
  });
  if (!seenSequence) fail(`${path}.single has no Sequence "A"`);
  return result;
}

/** `decoder`: ByteLevel (or a Sequence holding only ByteLevel). */
function parseDecoder(section: unknown, fail: Fail): void {
  const type = typeOf(section);
  if (type === 'ByteLevel') return;
  if (type === 'Sequence') {
    const list = (section as Record<string, unknown>)['decoders'];
    if (Array.isArray(list) && list.length > 0 && list.every((d) => typeOf(d) === 'ByteLevel'))
      return;
  }
  fail(`decoder ${JSON.stringify(type ?? section)} is not supported (ByteLevel only)`);
}

/**
 * Byte-level BPE as stored in a Hugging Face `tokenizer.json`: the from-scratch tokenizer (GPT-2
 * split, ids 0-255 the byte tokens, then the learned merges, then the ChatML special tokens) and
 * the pretrained Qwen2.5 / Qwen3 / Llama-3 files (NFC, a `Split` regex before `ByteLevel`, their
 * own added tokens, `ignore_merges`, a BOS template). Any UTF-8 text round-trips exactly through
 * encode → decode (NFC files return the NFC form; a lone UTF-16 surrogate becomes U+FFFD).
 */
export class Tokenizer {
  readonly vocabSize: number;
  /** Every `added_tokens` entry, in file order. */
  readonly addedTokens: readonly AddedToken[];
  private readonly chatml: { eos: number; pad: number; imStart: number; imEnd: number } | undefined;
  private readonly tokens: string[];
  private readonly vocab: Map<string, number>;
  private readonly tokenBytes: Uint8Array[];
  /** pair key → [rank, merged id] */
  private readonly merges: Map<number, [number, number]>;
  private readonly mergeList: [string, string][];
  private readonly addedById: Map<number, AddedToken>;
  private readonly addedByContent: Map<string, AddedToken>;
  /**
   * Alternations of added tokens, longest first (leftmost-longest like `tokenizers`): those matched
   * on the raw text and those matched after normalisation, each [without, with] special tokens.
   */
  private readonly addedSplits: Record<
    'raw' | 'normalized',
    [RegExp | undefined, RegExp | undefined]
  >;
  private readonly pipeline: Pipeline;
  // Copies of the pipeline's per-piece switches as own fields (read on the hot path).
  private readonly nfc: boolean;
  private readonly preTokenizerSteps: PreTokenizerStep[] | undefined;
  private readonly ignoreMerges: boolean;
  private readonly byteIds: Int32Array;
  private readonly cache = new Map<string, readonly number[]>();

  private constructor(
    vocab: Map<string, number>,
    merges: [string, string][],
    added: AddedToken[],
    pipeline: Pipeline = DEFAULT_PIPELINE,
    source?: string,
  ) {
    const fail = (message: string): never => {
      throw new TokenizerError(message, source === undefined ? {} : { path: source });
    };
    this.vocab = vocab;
    this.pipeline = pipeline;
    this.nfc = pipeline.nfc;
    this.preTokenizerSteps = pipeline.preTokenizer;
    this.ignoreMerges = pipeline.ignoreMerges;
    this.addedTokens = added;
    this.addedById = new Map(added.map((t) => [t.id, t]));
    this.addedByContent = new Map(added.map((t) => [t.content, t]));
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    for (const t of added) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;
    if (this.vocabSize >= PAIR_SHIFT)
      fail(`vocabulary of ${this.vocabSize} tokens exceeds the supported ${PAIR_SHIFT}`);
    this.tokens = new Array<string>(this.vocabSize).fill('');
    this.tokenBytes = new Array<Uint8Array>(this.vocabSize).fill(new Uint8Array(0));
    for (const [token, id] of vocab) {
      if (!Number.isInteger(id) || id < 0)
        fail(`model.vocab entry ${JSON.stringify(token)} has invalid id ${id}`);
      this.tokens[id] = token;
      const bytes = fromByteLevel(token);
      if (bytes === undefined && !this.addedById.has(id)) {
        fail(
          `model.vocab entry ${JSON.stringify(token)} is not a byte-level token (only ByteLevel BPE tokenizers are supported)`,
        );
      }
      this.tokenBytes[id] = bytes ?? utf8(token);
    }
    for (const t of added) {
      if (!Number.isInteger(t.id) || t.id < 0)
        fail(`added token ${t.content} has invalid id ${t.id}`);
      this.tokens[t.id] = t.content;
      // As the ByteLevel decoder of `tokenizers`: content made of byte-level characters maps to those bytes.
      this.tokenBytes[t.id] = fromByteLevel(t.content) ?? utf8(t.content);
    }
    this.byteIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      const id = vocab.get(BYTE_TO_CHAR[b]!);
      if (id === undefined)
        fail(`model.vocab lacks the byte token for byte ${b} (${JSON.stringify(BYTE_TO_CHAR[b])})`);
      this.byteIds[b] = id!;
    }
    this.mergeList = merges;
    this.merges = new Map();
    merges.forEach(([a, b], rank) => {
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      const merged = vocab.get(a + b);
      if (ia === undefined || ib === undefined || merged === undefined) {
        fail(
          `model.merges[${rank}] (${JSON.stringify(a)} ${JSON.stringify(b)}) refers to tokens missing from the vocab`,
        );
      }
      const key = pairKey(ia!, ib!);
      if (!this.merges.has(key)) this.merges.set(key, [rank, merged!]);
    });
    const ids = CHATML_CONTENTS.map((content) => this.addedByContent.get(content)?.id);
    this.chatml = ids.every((id) => id !== undefined)
      ? { eos: ids[0]!, pad: ids[0]!, imStart: ids[1]!, imEnd: ids[2]! }
      : undefined;
    const alternation = (keep: (t: AddedToken) => boolean): RegExp | undefined => {
      const chosen = added.filter(keep).sort((x, y) => y.content.length - x.content.length);
      return chosen.length === 0
        ? undefined
        : new RegExp(`(${chosen.map((t) => escapeRegExp(t.content)).join('|')})`, 'u');
    };
    this.addedSplits = {
      raw: [alternation((t) => !t.normalized && !t.special), alternation((t) => !t.normalized)],
      normalized: [
        alternation((t) => t.normalized && !t.special),
        alternation((t) => t.normalized),
      ],
    };
  }

  /**
   * The ChatML ids of the from-scratch path (`<|endoftext|>` as eos and pad, `<|im_start|>`,
   * `<|im_end|>`). Throws for tokenizers without them (Llama-3): use a `ChatTemplate`'s
   * `stopTokenIds` / `padTokenId` there.
   */
  get special(): { eos: number; pad: number; imStart: number; imEnd: number } {
    if (this.chatml === undefined) {
      throw new TokenizerError(
        `this tokenizer has no ChatML tokens (${CHATML_CONTENTS.join(', ')}); for a pretrained model use its chat template (loadHfChat / ChatTemplate: stopTokenIds, padTokenId)`,
        { code: 'TOKENIZER_NO_CHATML' },
      );
    }
    return this.chatml;
  }

  /** Whether the ChatML tokens exist (`special` can be read). */
  get hasChatML(): boolean {
    return this.chatml !== undefined;
  }

  /** Learns merges from `texts` with incremental pair counts (only words containing the merged pair are revisited). */
  static train(texts: Iterable<string>, options: TokenizerTrainOptions): Tokenizer {
    const specials = [SPECIAL_TOKENS.eos, SPECIAL_TOKENS.imStart, SPECIAL_TOKENS.imEnd];
    const vocabSize = options.vocabSize;
    if (
      !Number.isInteger(vocabSize) ||
      vocabSize < 256 + specials.length ||
      vocabSize >= PAIR_SHIFT
    ) {
      throw new TokenizerError(
        `vocabSize must be an integer from ${256 + specials.length} (256 bytes + ${specials.length} special tokens) to ${PAIR_SHIFT - 1}, got ${vocabSize}`,
      );
    }
    const minFrequency = Math.max(1, options.minFrequency ?? 2);
    const specialSplit = new RegExp(specials.map(escapeRegExp).join('|'), 'gu');

    // 1. Word frequencies over pre-tokenized pieces (special-token strings never join a word).
    const wordCounts = new Map<string, number>();
    for (const text of texts) {
      for (const segment of text.split(specialSplit)) {
        if (segment === '') continue;
        for (const piece of preTokenize(segment))
          wordCounts.set(piece, (wordCounts.get(piece) ?? 0) + 1);
      }
    }
    const words: number[][] = [];
    const freqs: number[] = [];
    for (const [piece, count] of wordCounts) {
      const bytes = utf8(piece);
      if (bytes.length < 2) continue; // a single byte has no pair to merge
      words.push(Array.from(bytes));
      freqs.push(count);
    }

    // 2. Initial pair counts and, per pair, the words that contain it.
    const pairCounts = new Map<number, number>();
    const where = new Map<number, Set<number>>();
    for (let w = 0; w < words.length; w++) {
      const word = words[w]!;
      const f = freqs[w]!;
      for (let i = 0; i + 1 < word.length; i++) {
        const key = pairKey(word[i]!, word[i + 1]!);
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + f);
        let set = where.get(key);
        if (set === undefined) where.set(key, (set = new Set()));
        set.add(w);
      }
    }
    const heap = new PairHeap();
    for (const [key, count] of pairCounts) heap.push(count, key);

    const tokens: string[] = [...BYTE_TO_CHAR];
    const merges: [string, string][] = [];
    const targetMerges = vocabSize - specials.length - 256;
    const delta = new Map<number, number>();
    while (merges.length < targetMerges) {
      const top = heap.pop();
      if (top === undefined) break;
      const [count, key] = top;
      const current = pairCounts.get(key) ?? 0;
      if (current !== count) {
        // Stale entry: counts of old pairs only go down, so re-queue at the true count.
        if (current > 0) heap.push(current, key);
        continue;
      }
      if (count < minFrequency) break;
      const a = Math.floor(key / PAIR_SHIFT);
      const b = key % PAIR_SHIFT;
      const newId = tokens.length;
      tokens.push(tokens[a]! + tokens[b]!);
      merges.push([tokens[a]!, tokens[b]!]);
      delta.clear();
      const affected = where.get(key);
      where.delete(key);
      pairCounts.delete(key);
      if (affected === undefined) continue;
      for (const w of affected) {
        const word = words[w]!;
        const f = freqs[w]!;
        let found = false;
        for (let i = 0; i + 1 < word.length; i++) {
          if (word[i] === a && word[i + 1] === b) {
            found = true;
            break;
          }
        }
        if (!found) continue;
        for (let i = 0; i + 1 < word.length; i++) {
          const k = pairKey(word[i]!, word[i + 1]!);
          if (k !== key) delta.set(k, (delta.get(k) ?? 0) - f);
        }
        const merged: number[] = [];
        for (let i = 0; i < word.length; i++) {
          if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
            merged.push(newId);
            i++;
          } else merged.push(word[i]!);
        }
        words[w] = merged;
        for (let i = 0; i + 1 < merged.length; i++) {
          const k = pairKey(merged[i]!, merged[i + 1]!);
          if (k === key) continue;
          delta.set(k, (delta.get(k) ?? 0) + f);
          let set = where.get(k);
          if (set === undefined) where.set(k, (set = new Set()));
          set.add(w);
        }
      }
      for (const [k, d] of delta) {
        if (d === 0) continue;
        const next = (pairCounts.get(k) ?? 0) + d;
        if (next <= 0) pairCounts.delete(k);
        else pairCounts.set(k, next);
        // Only pairs that gained count need a fresh heap entry; shrunken ones are fixed when popped.
        if (d > 0 && next > 0) heap.push(next, k);
      }
    }
    const vocab = new Map<string, number>();
    tokens.forEach((t, id) => vocab.set(t, id));
    const added = specials.map((content, i): AddedToken => ({
      id: tokens.length + i,
      content,
      special: true,
      normalized: false,
    }));
    return new Tokenizer(vocab, merges, added);
  }

  /**
   * Reads a Hugging Face `tokenizer.json` object: a BPE model over the byte-level alphabet, with the
   * normaliser, pre-tokenizer, post-processor and decoder of the GPT-2, Qwen2.5, Qwen3 and Llama-3
   * families. Anything else is refused with a `TokenizerError` naming the field.
   */
  static fromJSON(json: unknown, source?: string): Tokenizer {
    const fail = (message: string): never => {
      throw new TokenizerError(message, source === undefined ? {} : { path: source });
    };
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      return fail('tokenizer.json must be a JSON object');
    const root = json as Record<string, unknown>;
    const model = root['model'] as Record<string, unknown> | undefined;
    if (typeof model !== 'object' || model === null || model['type'] !== 'BPE')
      return fail(`model.type must be "BPE", got ${JSON.stringify(model?.['type'])}`);
    for (const field of ['truncation', 'padding'] as const) {
      if (root[field] !== null && root[field] !== undefined)
        fail(`${field} must be null (set truncation and padding in the pipeline, not the file)`);
    }
    if (model['dropout'] !== null && model['dropout'] !== undefined && model['dropout'] !== 0)
      fail(`model.dropout ${JSON.stringify(model['dropout'])} is not supported (must be null)`);
    if (model['byte_fallback'] === true) fail('model.byte_fallback true is not supported');
    for (const field of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
      const value = model[field];
      if (value !== null && value !== undefined && value !== '')
        fail(`model.${field} ${JSON.stringify(value)} is not supported (must be null or "")`);
    }
    const ignoreMerges = model['ignore_merges'] === true;

    const pipeline: Pipeline = {
      nfc: parseNormalizer(root['normalizer'], fail),
      preTokenizer: parsePreTokenizer(root['pre_tokenizer'], fail),
      ignoreMerges,
      template: { prefix: [], suffix: [] },
      raw: undefined,
    };

    const vocabJson = model['vocab'];
    if (typeof vocabJson !== 'object' || vocabJson === null || Array.isArray(vocabJson))
      return fail('model.vocab must be an object of token → id');
    const vocab = new Map<string, number>();
    for (const token in vocabJson) vocab.set(token, (vocabJson as Record<string, number>)[token]!);
    const mergesJson = model['merges'];
    if (!Array.isArray(mergesJson)) return fail('model.merges must be an array');
    const merges = mergesJson.map((m: unknown, i): [string, string] => {
      if (typeof m === 'string') {
        const parts = m.split(' ');
        if (parts.length !== 2) fail(`model.merges[${i}] ${JSON.stringify(m)} is not "a b"`);
        return parts as [string, string];
      }
      if (
        Array.isArray(m) &&
        m.length === 2 &&
        typeof m[0] === 'string' &&
        typeof m[1] === 'string'
      )
        return m as [string, string];
      return fail(`model.merges[${i}] must be "a b" or ["a", "b"]`);
    });
    const addedJson = root['added_tokens'] ?? [];
    if (!Array.isArray(addedJson)) return fail('added_tokens must be an array');
    const added = addedJson.map((t: unknown, i): AddedToken => {
      const token = t as Record<string, unknown>;
      if (
        typeof token?.['id'] !== 'number' ||
        typeof token['content'] !== 'string' ||
        token['content'] === ''
      )
        fail(`added_tokens[${i}] needs a numeric id and a non-empty content`);
      for (const flag of ['single_word', 'lstrip', 'rstrip'] as const) {
        if (token[flag] === true)
          fail(
            `added_tokens[${i}].${flag} true (${JSON.stringify(token['content'])}) is not supported`,
          );
      }
      // `tokenizers` defaults: special false; normalized = !special.
      const special = token['special'] === true;
      const normalized = typeof token['normalized'] === 'boolean' ? token['normalized'] : !special;
      return {
        id: token['id'] as number,
        content: token['content'] as string,
        special,
        normalized,
      };
    });
    const byContent = new Map(added.map((t) => [t.content, t.id]));
    pipeline.template = parsePostProcessor(root['post_processor'], byContent, vocab, fail);
    parseDecoder(root['decoder'], fail);
    const { vocab: _vocab, merges: _merges, ...modelRest } = model;
    pipeline.raw = {
      root: Object.fromEntries(
        Object.entries(root).filter(([key]) => key !== 'model' && key !== 'added_tokens'),
      ),
      model: modelRest,
      addedTokens: addedJson,
      mergesAsArrays: mergesJson.length > 0 && Array.isArray(mergesJson[0]),
    };
    return new Tokenizer(vocab, merges, added, pipeline, source);
  }

  /** Reads `tokenizer.json`, given as the file or as the model directory holding it. */
  static async load(path: string): Promise<Tokenizer> {
    let file = path;
    try {
      if ((await stat(path)).isDirectory()) file = join(path, 'tokenizer.json');
    } catch {
      // reported by the read below, with the path the user gave
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      throw new TokenizerError(`cannot read the tokenizer file (${(cause as Error).message})`, {
        path: file,
        cause,
      });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new TokenizerError(`not valid JSON (${(cause as Error).message})`, {
        path: file,
        cause,
      });
    }
    return Tokenizer.fromJSON(json, file);
  }

  /** The Hugging Face `tokenizer.json` layout (loadable by `tokenizers` / `transformers`). */
  toJSON(): object {
    const vocab: Record<string, number> = {};
    for (const [token, id] of [...this.vocab].sort((x, y) => x[1] - y[1])) vocab[token] = id;
    const raw = this.pipeline.raw;
    if (raw !== undefined) {
      // A loaded file goes back out with its own sections (flags, templates, decoder) unchanged.
      return {
        ...raw.root,
        added_tokens: raw.addedTokens,
        model: {
          ...raw.model,
          vocab,
          merges: this.mergeList.map(([a, b]) => (raw.mergesAsArrays ? [a, b] : `${a} ${b}`)),
        },
      };
    }
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: this.addedTokens.map((t) => ({
        id: t.id,
        content: t.content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: t.normalized,
        special: t.special,
      })),
      normalizer: null,
      pre_tokenizer: {
        type: 'ByteLevel',
        add_prefix_space: false,
        trim_offsets: true,
        use_regex: true,
      },
      post_processor: {
        type: 'ByteLevel',
        add_prefix_space: false,
        trim_offsets: false,
        use_regex: true,
      },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: this.mergeList.map(([a, b]) => `${a} ${b}`),
      },
    };
  }

  async save(path: string): Promise<void> {
    await writeFileAtomic(path, JSON.stringify(this.toJSON()));
  }

  /**
   * Token ids of `text`, as `tokenizers` computes them: added tokens are matched first (on the raw
   * text, or on the normalised text for `normalized` ones), the rest is normalised, pre-tokenized
   * and merged. Special-token strings become their ids unless `specialTokens: false`.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const withSpecial = options.specialTokens !== false;
    const ids: number[] = [];
    const template = options.addSpecialTokens === true ? this.pipeline.template : undefined;
    if (template !== undefined) for (const id of template.prefix) ids.push(id);
    this.encodeSegments(text, withSpecial, ids);
    if (template !== undefined) for (const id of template.suffix) ids.push(id);
    return ids;
  }

  /** First pass of `tokenizers`: added tokens that match the raw text. */
  private encodeSegments(text: string, withSpecial: boolean, out: number[]): void {
    const split = this.addedSplits.raw[withSpecial ? 1 : 0];
    if (split === undefined) {
      this.encodeNormalized(text, withSpecial, out);
      return;
    }
    const parts = text.split(split);
    // split with one capture group alternates text, added token, text, ...
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i % 2 === 1) out.push(this.addedByContent.get(part)!.id);
      else if (part !== '') this.encodeNormalized(part, withSpecial, out);
    }
  }

  /** Second pass: normalise, then match the `normalized` added tokens, then BPE. */
  private encodeNormalized(text: string, withSpecial: boolean, out: number[]): void {
    const normal = this.nfc ? text.normalize('NFC') : text;
    const split = this.addedSplits.normalized[withSpecial ? 1 : 0];
    if (split === undefined) {
      this.encodeOrdinary(normal, out);
      return;
    }
    const parts = normal.split(split);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i % 2 === 1) out.push(this.addedByContent.get(part)!.id);
      else if (part !== '') this.encodeOrdinary(part, out);
    }
  }

  private encodeOrdinary(text: string, out: number[]): void {
    const steps = this.preTokenizerSteps;
    if (steps === undefined && !this.ignoreMerges) {
      // The from-scratch tokenizer's path, kept as it was before pretrained files were supported.
      for (const piece of preTokenize(text)) {
        let ids = this.cache.get(piece);
        if (ids === undefined) {
          ids = this.bpe(utf8(piece));
          if (this.cache.size > 200_000) this.cache.clear();
          this.cache.set(piece, ids);
        }
        for (const id of ids) out.push(id);
      }
      return;
    }
    const pieces = steps === undefined ? preTokenize(text) : runPreTokenizer(steps, text);
    for (const piece of pieces) {
      let ids = this.cache.get(piece);
      if (ids === undefined) {
        // ignore_merges (Llama-3): a piece that is a vocabulary entry is that one token.
        const whole = this.ignoreMerges ? this.vocab.get(toByteLevel(piece)) : undefined;
        ids = whole === undefined ? this.bpe(utf8(piece)) : [whole];
        if (this.cache.size > 200_000) this.cache.clear();
        this.cache.set(piece, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  /** Applies merges by rank to one pre-tokenized piece (linked list + lowest-rank scan; pieces are short). */
  private bpe(bytes: Uint8Array): number[] {
    const n = bytes.length;
    const ids: number[] = new Array<number>(n);
    for (let i = 0; i < n; i++) ids[i] = this.byteIds[bytes[i]!]!;
    if (n < 2) return ids;
    if (n > 256) return this.bpeLong(ids);
    for (;;) {
      let bestRank = Infinity;
      let bestIndex = -1;
      let bestId = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const m = this.merges.get(pairKey(ids[i]!, ids[i + 1]!));
        if (m !== undefined && m[0] < bestRank) {
          bestRank = m[0];
          bestIndex = i;
          bestId = m[1];
        }
      }
      if (bestIndex < 0) return ids;
      const a = ids[bestIndex]!;
      const b = ids[bestIndex + 1]!;
      // Merge every occurrence of this pair, left to right (as the reference BPE does).
      let w = 0;
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
          ids[w++] = bestId;
          i++;
        } else ids[w++] = ids[i]!;
      }
      ids.length = w;
    }
  }

  /** O(n log n) BPE for very long pieces (e.g. a megabyte without spaces): linked list + heap of candidate merges. */
  private bpeLong(initial: number[]): number[] {
    const n = initial.length;
    const id = Int32Array.from(initial);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // Min-heap over (rank, position) encoded in one number: rank * n + position.
    const heap: number[] = [];
    const push = (v: number): void => {
      heap.push(v);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p]! <= heap[i]!) break;
        [heap[p], heap[i]] = [heap[i]!, heap[p]!];
        i = p;
      }
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < heap.length && heap[l]! < heap[m]!) m = l;
          if (r < heap.length && heap[r]! < heap[m]!) m = r;
          if (m === i) break;
          [heap[m], heap[i]] = [heap[i]!, heap[m]!];
          i = m;
        }
      }
      return top;
    };
    const consider = (i: number): void => {
      const j = next[i]!;
      if (i < 0 || j < 0) return;
      const m = this.merges.get(pairKey(id[i]!, id[j]!));
      if (m !== undefined) push(m[0] * n + i);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.length > 0) {
      const v = pop();
      const rank = Math.floor(v / n);
      const i = v - rank * n;
      const j = next[i]!;
      if (!alive[i] || j < 0) continue;
      const m = this.merges.get(pairKey(id[i]!, id[j]!));
      if (m === undefined || m[0] !== rank) continue; // stale entry
      id[i] = m[1];
      alive[j] = 0;
      next[i] = next[j]!;
      if (next[j]! >= 0) prev[next[j]!] = i;
      if (prev[i]! >= 0) consider(prev[i]!);
      consider(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) out.push(id[i]!);
    return out;
  }

  /** Text of `ids`; byte sequences that are not valid UTF-8 (a cut-off multi-byte character) decode to U+FFFD. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return UTF8_DECODER.decode(this.decodeBytes(ids, options));
  }

  /** Raw bytes of `ids` (exact, for callers that stream partial UTF-8). */
  decodeBytes(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): Uint8Array {
    let length = 0;
    const parts: Uint8Array[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenizerError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
      if (options.skipSpecialTokens === true && this.addedById.get(id)?.special === true) continue;
      const bytes = this.tokenBytes[id]!;
      parts.push(bytes);
      length += bytes.length;
    }
    const out = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }

  /** The vocabulary string of one id (byte-level form, e.g. `Ġthe`), for debugging and tests. */
  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.vocab.get(token);
  }

  /** Whether `id` is an added token marked special (skipped by `skipSpecialTokens`). */
  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }

  /** Number of merges learned. */
  get numMerges(): number {
    return this.mergeList.length;
  }
}
