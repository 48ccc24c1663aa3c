import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { CorpusError } from './errors.js';
import { ALLOWED_BUILTINS } from './python-env.js';
import type { SyntaxNode } from './python-parser.js';
import { hashText } from '@codereasoner/common';

// Deduplication by a normalized-tree hash (identifiers renamed by first appearance, comments
// and layout ignored) and decontamination by token n-gram overlap with benchmark programs.

/** Hash of a tree with local identifiers renamed in order of first appearance. */
export function normalizedTreeHash(root: SyntaxNode): string {
  const names = new Map<string, string>();
  const parts: string[] = [];
  const visit = (node: SyntaxNode): void => {
    if (node.type === 'comment') return;
    if (node.childCount === 0 || node.type === 'string') {
      if (node.type === 'identifier') {
        const parent = node.parent;
        const isAttribute =
          parent?.type === 'attribute' && parent.childForFieldName('attribute')?.id === node.id;
        if (isAttribute || ALLOWED_BUILTINS.has(node.text)) parts.push(node.text);
        else {
          let canonical = names.get(node.text);
          if (canonical === undefined) {
            canonical = `v${names.size}`;
            names.set(node.text, canonical);
          }
          parts.push(canonical);
        }
      } else parts.push(node.type === node.text ? node.type : `${node.type}:${node.text}`);
      return;
    }
    parts.push(`(${node.type}`);
    for (const child of node.children) if (child !== null) visit(child);
    parts.push(')');
  };
  visit(root);
  return hashText(parts.join(' '));
}

const TOKEN =
  /[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|==|!=|<=|>=|\/\/|\*\*|->|[+\-*/%<>=()[\]{}:,.]/g;

/**
 * Code tokens for n-gram overlap: comments and layout dropped, identifiers other than
 * builtins, keywords and attribute names replaced by `ID` (renaming must not hide a copy).
 */
export function codeTokens(code: string): string[] {
  const withoutComments = code.replace(/#[^\n]*/g, '');
  const tokens: string[] = [];
  let previous = '';
  for (const match of withoutComments.matchAll(TOKEN)) {
    const token = match[0];
    if (
      /^[A-Za-z_]/.test(token) &&
      !KEYWORDS.has(token) &&
      !ALLOWED_BUILTINS.has(token) &&
      previous !== '.'
    )
      tokens.push('ID');
    else tokens.push(token);
    previous = token;
  }
  return tokens;
}

const KEYWORDS = new Set([
  'and',
  'as',
  'assert',
  'break',
  'class',
  'continue',
  'def',
  'del',
  'elif',
  'else',
  'except',
  'finally',
  'for',
  'from',
  'global',
  'if',
  'import',
  'in',
  'is',
  'lambda',
  'nonlocal',
  'not',
  'or',
  'pass',
  'raise',
  'return',
  'try',
  'while',
  'with',
  'yield',
]);

export function ngrams(tokens: string[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= tokens.length; i += 1) out.push(tokens.slice(i, i + n).join(' '));
  return out;
}

export interface ContaminationIndex {
  n: number;
  grams: Set<string>;
  /** Whole token sequences: catches programs shorter than n tokens. */
  whole: Set<string>;
  /** Programs read from the benchmark files. */
  programs: number;
  files: string[];
}

async function collectFiles(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new CorpusError(
      'DECONTAMINATION_PATH',
      `Decontamination path ${path} does not exist: give benchmark files or folders that exist.`,
      {
        path,
        cause: error,
      },
    );
  }
  if (info.isFile()) return [path];
  const files: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(await collectFiles(full)));
    else if (['.jsonl', '.py'].includes(extname(entry.name))) files.push(full);
  }
  return files;
}

/**
 * Reads benchmark programs from files or folders: JSONL records with a `code` field
 * (CRUXEval's `cruxeval.jsonl`, REval's `DREval_data.jsonl`, LiveCodeBench's `execution-v2.jsonl`;
 * records without `code` are skipped) and `.py` files.
 */
export async function buildContaminationIndex(
  paths: string[],
  n: number,
): Promise<ContaminationIndex> {
  const grams = new Set<string>();
  const whole = new Set<string>();
  let programs = 0;
  const files: string[] = [];
  for (const path of paths) {
    for (const file of await collectFiles(path)) {
      files.push(file);
      const add = (code: string): void => {
        programs += 1;
        const tokens = codeTokens(code);
        whole.add(tokens.join(' '));
        for (const gram of ngrams(tokens, n)) grams.add(gram);
      };
      if (file.endsWith('.py')) {
        add(await readFile(file, 'utf8'));
        continue;
      }
      const lines = createInterface({
        input: createReadStream(file, { encoding: 'utf8' }),
        crlfDelay: Infinity,
      });
      for await (const line of lines) {
        if (line.trim() === '') continue;
        try {
          const record = JSON.parse(line) as { code?: unknown };
          if (typeof record.code === 'string') add(record.code);
        } catch {
          // Not a code record (an index file, a partial line): nothing to compare against.
        }
      }
    }
  }
  return { n, grams, whole, programs, files };
}

/**
 * Fraction of the program's token n-grams that occur in the benchmark index; 1 when its whole
 * token sequence equals a benchmark program's (short programs have no n-grams).
 */
export function contaminationScore(code: string, index: ContaminationIndex): number {
  const tokens = codeTokens(code);
  if (index.whole.has(tokens.join(' '))) return 1;
  const grams = ngrams(tokens, index.n);
  if (grams.length === 0) return 0;
  let hits = 0;
  for (const gram of grams) if (index.grams.has(gram)) hits += 1;
  return hits / grams.length;
}
