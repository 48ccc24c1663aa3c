import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-write.js';
import { BYTE_TO_CHAR, fromByteLevel, preTokenize, utf8 } from './byte-level.js';
import { CodeReasonerError } from './errors.js';

export const SPECIAL_TOKENS = {
  eos: '<|endoftext|>',
  imStart: '<|im_start|>',
  imEnd: '<|im_end|>',
} as const;

/** A tokenizer file cannot be read or is not a byte-level BPE `tokenizer.json`. */
export class TokenizerError extends CodeReasonerError {
  readonly path: string | undefined;
  constructor(message: string, options: { path?: string; cause?: unknown } = {}) {
    super(
      'TOKENIZER_INVALID',
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
  /** Whether special-token strings in `text` become their ids (default true, as Hugging Face does). */
  specialTokens?: boolean;
}

interface AddedToken {
  id: number;
  content: string;
}

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

/**
 * Byte-level BPE (GPT-2 / Qwen2 family), stored as a Hugging Face `tokenizer.json`. Ids 0-255 are
 * the byte tokens, then the learned merges, then the special tokens; any UTF-8 text round-trips
 * exactly through encode → decode (a lone UTF-16 surrogate, which is not valid Unicode, becomes U+FFFD).
 */
export class Tokenizer {
  readonly vocabSize: number;
  readonly special: { eos: number; pad: number; imStart: number; imEnd: number };
  private readonly tokens: string[];
  private readonly vocab: Map<string, number>;
  private readonly tokenBytes: Uint8Array[];
  /** pair key → [rank, merged id] */
  private readonly merges: Map<number, [number, number]>;
  private readonly mergeList: [string, string][];
  private readonly addedTokens: AddedToken[];
  private readonly addedById: Map<number, string>;
  private readonly specialSplit: RegExp | undefined;
  private readonly byteIds: Int32Array;
  private readonly cache = new Map<string, readonly number[]>();

  private constructor(
    vocab: Map<string, number>,
    merges: [string, string][],
    added: AddedToken[],
    source?: string,
  ) {
    const fail = (message: string): never => {
      throw new TokenizerError(message, source === undefined ? {} : { path: source });
    };
    this.vocab = vocab;
    this.addedTokens = added;
    this.addedById = new Map(added.map((t) => [t.id, t.content]));
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
        fail(`vocab entry ${JSON.stringify(token)} has invalid id ${id}`);
      this.tokens[id] = token;
      const bytes = fromByteLevel(token);
      if (bytes === undefined && !this.addedById.has(id)) {
        fail(
          `vocab entry ${JSON.stringify(token)} is not a byte-level token (only ByteLevel BPE tokenizers are supported)`,
        );
      }
      this.tokenBytes[id] = bytes ?? utf8(token);
    }
    for (const t of added) {
      this.tokens[t.id] = t.content;
      this.tokenBytes[t.id] = utf8(t.content);
    }
    this.byteIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      const id = vocab.get(BYTE_TO_CHAR[b]!);
      if (id === undefined)
        fail(`vocab lacks the byte token for byte ${b} (${JSON.stringify(BYTE_TO_CHAR[b])})`);
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
          `merge ${rank} (${JSON.stringify(a)} ${JSON.stringify(b)}) refers to tokens missing from the vocab`,
        );
      }
      const key = pairKey(ia!, ib!);
      if (!this.merges.has(key)) this.merges.set(key, [rank, merged!]);
    });
    const find = (content: string): number => {
      const token = added.find((t) => t.content === content);
      if (token === undefined) return fail(`special token ${content} is missing from added_tokens`);
      return token.id;
    };
    const eos = find(SPECIAL_TOKENS.eos);
    this.special = {
      eos,
      pad: eos,
      imStart: find(SPECIAL_TOKENS.imStart),
      imEnd: find(SPECIAL_TOKENS.imEnd),
    };
    this.specialSplit =
      added.length === 0
        ? undefined
        : new RegExp(
            `(${[...added]
              .sort((x, y) => y.content.length - x.content.length)
              .map((t) => escapeRegExp(t.content))
              .join('|')})`,
            'u',
          );
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
    const added = specials.map((content, i) => ({ id: tokens.length + i, content }));
    return new Tokenizer(vocab, merges, added);
  }

  /** Reads a Hugging Face `tokenizer.json` object (BPE model, ByteLevel pre-tokenizer). */
  static fromJSON(json: unknown, source?: string): Tokenizer {
    const fail = (message: string): never => {
      throw new TokenizerError(message, source === undefined ? {} : { path: source });
    };
    if (typeof json !== 'object' || json === null)
      return fail('tokenizer.json must be a JSON object');
    const root = json as Record<string, unknown>;
    const model = root['model'] as Record<string, unknown> | undefined;
    if (model === undefined || model['type'] !== 'BPE')
      fail(`model.type must be "BPE", got ${JSON.stringify(model?.['type'])}`);
    const pre = root['pre_tokenizer'] as Record<string, unknown> | null | undefined;
    if (
      pre?.['type'] !== 'ByteLevel' ||
      pre['use_regex'] === false ||
      pre['add_prefix_space'] === true
    ) {
      fail(
        'pre_tokenizer must be ByteLevel with use_regex true and add_prefix_space false (the GPT-2 split)',
      );
    }
    if (root['normalizer'] !== null && root['normalizer'] !== undefined)
      fail('normalizers are not supported (normalizer must be null)');
    const vocabJson = model!['vocab'];
    if (typeof vocabJson !== 'object' || vocabJson === null)
      return fail('model.vocab must be an object of token → id');
    const vocab = new Map<string, number>(Object.entries(vocabJson as Record<string, number>));
    const mergesJson = model!['merges'];
    if (!Array.isArray(mergesJson)) return fail('model.merges must be an array');
    const merges = mergesJson.map((m: unknown, i): [string, string] => {
      if (typeof m === 'string') {
        const parts = m.split(' ');
        if (parts.length !== 2) fail(`merge ${i} ${JSON.stringify(m)} is not "a b"`);
        return [parts[0]!, parts[1]!];
      }
      if (
        Array.isArray(m) &&
        m.length === 2 &&
        typeof m[0] === 'string' &&
        typeof m[1] === 'string'
      )
        return [m[0], m[1]];
      return fail(`merge ${i} must be "a b" or ["a", "b"]`);
    });
    const addedJson = root['added_tokens'] ?? [];
    if (!Array.isArray(addedJson)) return fail('added_tokens must be an array');
    const added = addedJson.map((t: unknown, i): AddedToken => {
      const token = t as Record<string, unknown>;
      if (typeof token?.['id'] !== 'number' || typeof token['content'] !== 'string')
        fail(`added_tokens[${i}] needs id and content`);
      return { id: token['id'] as number, content: token['content'] as string };
    });
    return new Tokenizer(vocab, merges, added, source);
  }

  static async load(path: string): Promise<Tokenizer> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      throw new TokenizerError(`cannot read the tokenizer file (${(cause as Error).message})`, {
        path,
        cause,
      });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new TokenizerError(`not valid JSON (${(cause as Error).message})`, { path, cause });
    }
    return Tokenizer.fromJSON(json, path);
  }

  /** The Hugging Face `tokenizer.json` layout (loadable by `tokenizers` / `transformers`). */
  toJSON(): object {
    const vocab: Record<string, number> = {};
    for (const [token, id] of [...this.vocab].sort((x, y) => x[1] - y[1])) vocab[token] = id;
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
        normalized: false,
        special: true,
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

  /** Token ids of `text`. Special-token strings become their ids unless `specialTokens: false`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (options.specialTokens !== false && this.specialSplit !== undefined) {
      const parts = text.split(this.specialSplit);
      // split with one capture group alternates text, special, text, ...
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        if (i % 2 === 1) ids.push(this.addedTokens.find((t) => t.content === part)!.id);
        else if (part !== '') this.encodeOrdinary(part, ids);
      }
    } else {
      this.encodeOrdinary(text, ids);
    }
    return ids;
  }

  private encodeOrdinary(text: string, out: number[]): void {
    for (const piece of preTokenize(text)) {
      let ids = this.cache.get(piece);
      if (ids === undefined) {
        ids = this.bpe(utf8(piece));
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
    return new TextDecoder('utf-8').decode(this.decodeBytes(ids, options));
  }

  /** Raw bytes of `ids` (exact, for callers that stream partial UTF-8). */
  decodeBytes(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): Uint8Array {
    let length = 0;
    const parts: Uint8Array[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new TokenizerError(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
      if (options.skipSpecialTokens === true && this.addedById.has(id)) continue;
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
    return this.vocab.get(token) ?? this.addedTokens.find((t) => t.content === token)?.id;
  }

  /** Whether `id` is one of the added special tokens. */
  isSpecial(id: number): boolean {
    return this.addedById.has(id);
  }

  /** Number of merges learned. */
  get numMerges(): number {
    return this.mergeList.length;
  }
}
