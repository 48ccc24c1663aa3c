import { scoreSamples } from './cruxeval.js';
import { BenchmarkDataError } from './errors.js';
import { extractLcbOutput } from './extract.js';
import { readDataJsonl } from './jsonl.js';
import { OFFICIAL_SYSTEM_MESSAGE, lcbCotPrompt, lcbDirectPrompt } from './official-prompts.js';
import {
  callArguments,
  protocolCompletion,
  protocolExtract,
  protocolMessages,
} from './protocol.js';
import type { SandboxLike } from './types.js';
import {
  liveCodeBenchIndexRecordSchema,
  liveCodeBenchRecordSchema,
  validate,
  type LiveCodeBenchIndexRecord,
  type LiveCodeBenchRecord,
} from './schemas.js';
import type { BenchItem, PromptStyle, SampleVerdict } from './types.js';

export const LCB_TIMEOUT_MS = 3000;
/** Number of samples in `livecodebench/execution-v2` (split `test`). */
export const LCB_EXPECTED_SAMPLES = 479;

/**
 * `BASE_IMPORTS` of `lcb_runner/evaluation/utils_execute.py`, prepended to every check. The
 * official header imports numpy and pandas unconditionally; the Pyodide sandbox has neither, so
 * those two imports are guarded here (no record uses them; without the guard every check would
 * fail with ImportError).
 */
export const LCB_BASE_IMPORTS = `from itertools import accumulate, chain, combinations, count, permutations, product, groupby, islice, repeat
from copy import deepcopy
from string import ascii_lowercase
from math import floor, log2, log10, sqrt, comb, gcd, ceil, inf, isqrt
from collections import defaultdict, deque, Counter
from bisect import bisect, bisect_left, bisect_right, insort
from heapq import heappush, heappop, heapify, merge
from functools import reduce, cache, lru_cache
from random import randrange, shuffle
from operator import itemgetter, sub
from re import search as re_search  # Assuming 're' refers to a regex search
from os.path import commonprefix
from typing import List, Tuple, Dict, Set, Optional, Union, Any, Callable, Iterable, Iterator, Generator
import copy
import string
import math
import collections
import bisect
import heapq
import functools
import random
import itertools
import operator
import re
try:
    import numpy as np
except ImportError:
    pass
try:
    import pandas as pd
except ImportError:
    pass
from math import log, prod  # 'log' and 'prod' are functions in the math module
from collections import deque, defaultdict, Counter, OrderedDict
from itertools import accumulate, permutations, combinations, product, groupby, islice, chain, repeat, zip_longest, cycle
from functools import lru_cache, reduce, partial
# from sortedcontainers import SortedList, SortedDict, SortedSet
# import sortedcontainers
from operator import iand
import sys
`;

function sampleNumber(id: string): number {
  return Number.parseInt(id.slice('sample_'.length), 10);
}

/**
 * Reads a JSONL export of `livecodebench/execution-v2` (one record per line, the dataset's
 * columns). Records are returned sorted by the integer after `sample_`, as the runner sorts them.
 */
export async function loadLiveCodeBench(path: string): Promise<LiveCodeBenchRecord[]> {
  const records: LiveCodeBenchRecord[] = [];
  const seen = new Map<string, number>();
  for (const { line, value } of await readDataJsonl(path, 'LiveCodeBench execution export')) {
    const id =
      typeof (value as { id?: unknown })?.id === 'string'
        ? (value as { id: string }).id
        : undefined;
    const issues = validate(liveCodeBenchRecordSchema, value);
    if (issues.length > 0) {
      throw new BenchmarkDataError(path, line, issues, {
        recordId: id,
        hint: 'Export the Hugging Face set with load_dataset("livecodebench/execution-v2", split="test").to_json(path, lines=True).',
      });
    }
    const record = value as LiveCodeBenchRecord;
    if (!new RegExp(`(^|\\n)def ${record.function_name}\\(`).test(record.code)) {
      throw new BenchmarkDataError(
        path,
        line,
        [`code: does not define function_name ${record.function_name}`],
        { recordId: id },
      );
    }
    if (!record.input.trim().startsWith(`${record.function_name}(`)) {
      throw new BenchmarkDataError(
        path,
        line,
        [
          `input: expected a call of ${record.function_name}(...), got ${JSON.stringify(record.input.slice(0, 60))}`,
        ],
        {
          recordId: id,
        },
      );
    }
    const previous = seen.get(record.id);
    if (previous !== undefined) {
      throw new BenchmarkDataError(
        path,
        line,
        [`id: ${record.id} already used on line ${previous}`],
        { recordId: record.id },
      );
    }
    seen.set(record.id, line);
    records.push(record);
  }
  if (records.length === 0) throw new BenchmarkDataError(path, 0, ['the file holds no records']);
  return records.sort((a, b) => sampleNumber(a.id) - sampleNumber(b.id));
}

/** Reads `sample_index.jsonl` ({id, question_id, contest_date} for all 479 samples). */
export async function loadLiveCodeBenchIndex(path: string): Promise<LiveCodeBenchIndexRecord[]> {
  const rows: LiveCodeBenchIndexRecord[] = [];
  for (const { line, value } of await readDataJsonl(path, 'LiveCodeBench sample index')) {
    const issues = validate(liveCodeBenchIndexRecordSchema, value);
    if (issues.length > 0) throw new BenchmarkDataError(path, line, issues);
    rows.push(value as LiveCodeBenchIndexRecord);
  }
  return rows;
}

export interface LiveCodeBenchIndexCheck {
  /** True when the export holds every indexed sample, nothing else, with matching question ids. */
  complete: boolean;
  expected: number;
  found: number;
  missing: string[];
  unexpected: string[];
  /** Samples whose question_id differs from the index's. */
  mismatched: { id: string; indexQuestionId: number; recordQuestionId: number | string }[];
}

/** Compares an export with the id index: confirms an export of all 479 samples is complete and aligned. */
export function checkLiveCodeBenchExport(
  records: readonly LiveCodeBenchRecord[],
  index: readonly LiveCodeBenchIndexRecord[],
): LiveCodeBenchIndexCheck {
  const byId = new Map(records.map((r) => [r.id, r]));
  const indexIds = new Set(index.map((row) => row.id));
  const missing = index.filter((row) => !byId.has(row.id)).map((row) => row.id);
  const unexpected = records.filter((r) => !indexIds.has(r.id)).map((r) => r.id);
  const mismatched: LiveCodeBenchIndexCheck['mismatched'] = [];
  for (const row of index) {
    const record = byId.get(row.id);
    if (record !== undefined && String(record.question_id) !== String(row.question_id)) {
      mismatched.push({
        id: row.id,
        indexQuestionId: row.question_id,
        recordQuestionId: record.question_id,
      });
    }
  }
  return {
    complete: missing.length === 0 && unexpected.length === 0 && mismatched.length === 0,
    expected: index.length,
    found: records.length,
    missing,
    unexpected,
    mismatched,
  };
}

const COT_THOUGHT = 'The oracle knows the answer.\n[/THOUGHT]\n[ANSWER]\n';

export function liveCodeBenchItems(
  records: readonly LiveCodeBenchRecord[],
  options: { cot: boolean; style: PromptStyle },
): BenchItem[] {
  return records.map((r) => {
    let messages;
    let answerWith: (answer: string) => string;
    if (options.style === 'official') {
      messages = [
        { role: 'system' as const, content: OFFICIAL_SYSTEM_MESSAGE },
        {
          role: 'user' as const,
          content: (options.cot ? lcbCotPrompt : lcbDirectPrompt)(r.code, r.input),
        },
      ];
      const thought = options.cot ? COT_THOUGHT : '';
      answerWith = (answer) => `${thought}assert ${r.input} == ${answer}\n[/ANSWER]\n`;
    } else {
      const args = callArguments(r.input, r.function_name) ?? r.input;
      messages = protocolMessages(
        { type: 'output', code: r.code, entryPoint: r.function_name, input: args },
        r.id,
        options.cot,
      );
      answerWith = (answer) => protocolCompletion(answer, options.cot);
    }
    return {
      key: `output/${r.id}`,
      task: 'output',
      id: r.id,
      messages,
      oracle: answerWith(r.output),
      gold: r.output,
      answerWith,
      answerable: true,
    };
  });
}

/**
 * Scores as `compute_code_execution_metrics.evaluate_score`: a generation containing the gold
 * call text is dropped; every other one passes when
 * `BASE_IMPORTS\n<code>\nassert <gold output> == <generation>` runs within 3 s (in the sandbox).
 */
export async function scoreLiveCodeBench(
  sandbox: SandboxLike,
  records: ReadonlyMap<string, LiveCodeBenchRecord>,
  items: readonly BenchItem[],
  completions: readonly (readonly string[])[],
  options: { cot: boolean; style: PromptStyle; strictLiterals?: boolean },
): Promise<SampleVerdict[][]> {
  return scoreSamples(
    sandbox,
    items,
    completions,
    options.strictLiterals ?? false,
    (item, completion) => {
      const record = records.get(item.id)!;
      let g: string;
      if (options.style === 'official') g = extractLcbOutput(completion, options.cot);
      else {
        const extracted = protocolExtract(completion, 'output');
        if (!extracted.ok)
          return { verdict: { extracted: null, verdict: 'fail', reason: extracted.reason } };
        g = extracted.answer;
      }
      if (g.includes(record.input))
        return {
          verdict: {
            extracted: g,
            verdict: 'skipped',
            reason: 'the answer contains the gold call (dropped by the harness)',
          },
        };
      return {
        pending: {
          code: `${LCB_BASE_IMPORTS}\n${record.code}`,
          assertion: `assert ${record.output} == ${g}`,
          answer: g,
          form: 'value',
          goldOutput: record.output,
          timeoutMs: LCB_TIMEOUT_MS,
        },
      };
    },
  );
}
