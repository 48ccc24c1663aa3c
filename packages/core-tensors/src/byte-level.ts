/**
 * GPT-2 byte-level alphabet: every byte maps to one printable unicode character, so BPE runs on
 * strings while covering every byte sequence. Identical to Hugging Face `ByteLevel`.
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const chars = new Array<string>(256);
  const set = new Set(printable);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    chars[b] = set.has(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  }
  return chars;
})();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(
  BYTE_TO_CHAR.map((c, b) => [c, b]),
);

/**
 * The GPT-2 pre-tokenizer split (Hugging Face `ByteLevel` with `use_regex: true`): contractions,
 * letter runs, digit runs, punctuation runs, each optionally led by one space; whitespace runs keep
 * their last space for the following word. Every character of the input falls in some piece.
 */
export const GPT2_SPLIT =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** The byte-level string (one char per byte) of a piece of text. */
export function toByteLevel(text: string): string {
  const bytes = encoder.encode(text);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]!]!;
  return out;
}

/** Bytes of a byte-level token string, or undefined when it holds a character outside the alphabet. */
export function fromByteLevel(token: string): Uint8Array | undefined {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = CHAR_TO_BYTE.get(token[i]!);
    if (b === undefined) return undefined;
    out[i] = b;
  }
  return out;
}

export function preTokenize(text: string): string[] {
  return text.match(GPT2_SPLIT) ?? [];
}
