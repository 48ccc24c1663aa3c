/** What the chain writer needs from a sandbox trace (a subset of sandbox's `TraceResult`). */
export interface ChainTrace {
  status: string;
  repr?: string;
  exception?: { type: string; message: string };
  path: number[];
  states: { line: number; locals: Record<string, string>; return?: string; exception?: string }[];
  truncated: boolean;
}

export interface TraceChainOptions {
  /** Steps written out before the middle of a long trace is summarised (default 40). */
  maxSteps?: number;
  /** Values longer than this are cut with `...` (default 40 characters). */
  maxValueChars?: number;
  /** Source text of a step longer than this is cut (default 48 characters). */
  maxSourceChars?: number;
  /** Prefix each step with `L<n>` (default true). Prompts that show code without line numbers read better without them. */
  lineNumbers?: boolean;
  /** Names whose first values are not written (the call's arguments, which the prompt already shows). */
  known?: readonly string[];
  /**
   * `full` (default) repeats each executed line's source text (`L3 counter += 1 | counter=1`);
   * `compact` writes the line number and only what happened there (`L3 counter=1`): the same
   * steps in about half the tokens, so the model generates less per answer.
   */
  format?: ChainFormat;
  /**
   * Index (into the trace's steps) of the last step written. The chain then stops there, without
   * the `Result:` line, since the call's result is not reached; the caller closes it with what
   * that step decides. Steps are still read from the whole trace (a loop header's decision
   * depends on the step after it).
   */
  lastStep?: number;
}

/** How a trace chain writes its steps: see `TraceChainOptions.format`. */
export type ChainFormat = 'full' | 'compact';

export const CHAIN_FORMATS: readonly ChainFormat[] = ['full', 'compact'];

/** Where the trace teacher ends a line task's chain: see `TraceTeacherOptions.stopAt` (teachers.ts). */
export type ChainStop = 'end' | 'answer';

export const CHAIN_STOPS: readonly ChainStop[] = ['end', 'answer'];

const HEADER = /^(if|elif|while|for)\b/;

interface Step {
  line: number;
  source: string;
  locals: Record<string, string>;
  /** `True`/`False` for if/elif/while, `done` when a for loop ends. */
  decision: string | undefined;
  /** repr of the value a frame returned here (not for the last step: `Result:` says it). */
  returned: string | undefined;
  exception: string | undefined;
}

/**
 * A concise, regular reasoning chain from a real execution trace, one line per executed line:
 *
 * ```
 * L2 s = 0 | s=0
 * L3 for x in xs | x=3
 * L4 if x > 1 | True
 * L5 s += x | s=3
 * ...
 * L6 return s
 * Result: 5
 * ```
 *
 * Each line names the line number and its source, then only what changed (new variable values,
 * the branch taken, a finished loop), so that every step is a small local computation a small
 * model can learn to imitate and the last state determines the answer. When the trace is longer
 * than `maxSteps`, the middle is replaced by one line naming how many loop iterations it skipped
 * and the values they left behind.
 *
 * The `compact` format drops the source text: `L2 s=0`, `L3 x=3`, `L4 True`, `L5 s=3`, `L6`,
 * `Result: 5` (a line that changed nothing keeps its number, so the path stays readable).
 */
export function traceChain(
  code: string,
  trace: ChainTrace,
  options: TraceChainOptions = {},
): string {
  const maxSteps = options.maxSteps ?? 40;
  const maxValue = options.maxValueChars ?? 40;
  const maxSource = options.maxSourceChars ?? 48;
  const compact = options.format === 'compact';
  // a compact step has no source text, so its line number is what says where it ran
  const numbered = compact || (options.lineNumbers ?? true);
  const at = (line: number): string => (numbered ? `L${line} ` : '');
  const lines = code.split('\n');
  const allSteps = toSteps(lines, trace, maxSource);
  const cut = options.lastStep !== undefined && options.lastStep < allSteps.length - 1;
  const steps = cut ? allSteps.slice(0, Math.max(0, options.lastStep! + 1)) : allSteps;
  const out: string[] = [];
  const known = new Map<string, string>();
  const first = trace.states[0]?.locals ?? {};
  for (const name of options.known ?? [])
    if (first[name] !== undefined) known.set(name, first[name]);

  const changes = (locals: Record<string, string>): string[] => {
    const changed: string[] = [];
    for (const [name, value] of Object.entries(locals)) {
      if (known.get(name) !== value) {
        known.set(name, value);
        changed.push(`${name}=${clip(value, maxValue)}`);
      }
    }
    return changed;
  };
  const emit = (step: Step): void => {
    const parts = changes(step.locals);
    if (step.decision !== undefined) parts.unshift(step.decision);
    if (step.returned !== undefined) parts.push(`-> ${clip(step.returned, maxValue)}`);
    if (step.exception !== undefined) parts.push(`raises ${step.exception}`);
    if (compact) {
      // a line that changed nothing still shows the path taken (path and coverage need it)
      out.push(parts.length > 0 ? `L${step.line} ${parts.join(' ')}` : `L${step.line}`);
      return;
    }
    out.push(
      parts.length > 0
        ? `${at(step.line)}${step.source} | ${parts.join(' ')}`
        : `${at(step.line)}${step.source}`,
    );
  };

  if (steps.length <= maxSteps) {
    steps.forEach(emit);
  } else {
    const head = Math.ceil(maxSteps * 0.6);
    const tail = maxSteps - head;
    steps.slice(0, head).forEach(emit);
    const middle = steps.slice(head, steps.length - tail);
    out.push(summarise(middle, changes, at, compact));
    steps.slice(steps.length - tail).forEach(emit);
  }
  if (cut) return out.join('\n');
  if (trace.truncated) out.push('... (trace limit reached)');
  if (trace.status === 'ok') out.push(`Result: ${trace.repr ?? 'None'}`);
  else if (trace.exception)
    out.push(`Raises ${trace.exception.type}: ${clip(trace.exception.message, maxValue)}`);
  else out.push(`Ends with ${trace.status}`);
  return out.join('\n');
}

/** Parameter names of `def name(...)` in `code` (annotations, defaults and stars dropped). */
export function parameterNames(code: string, name: string): string[] {
  const match = new RegExp(`^def\\s+${name.replace(/[^A-Za-z0-9_]/g, '')}\\s*\\(`, 'm').exec(code);
  if (match === null) return [];
  const names: string[] = [];
  let depth = 0;
  let current = '';
  const flush = (): void => {
    const bare = /^\**\s*([A-Za-z_][A-Za-z0-9_]*)/.exec(current.trim())?.[1];
    if (bare !== undefined) names.push(bare);
    current = '';
  };
  for (const char of code.slice(match.index + match[0].length)) {
    if (char === ')' && depth === 0) break;
    if ('([{'.includes(char)) depth++;
    else if (')]}'.includes(char)) depth--;
    if (char === ',' && depth === 0) flush();
    else current += char;
  }
  flush();
  return names;
}

function toSteps(lines: string[], trace: ChainTrace, maxSource: number): Step[] {
  return trace.path.map((line, index) => {
    const text = (lines[line - 1] ?? '').trim().replace(/:$/, '');
    const next = trace.path[index + 1];
    let decision: string | undefined;
    const header = HEADER.exec(text)?.[1];
    if (header !== undefined && next !== undefined) {
      const end = blockEnd(lines, line);
      if (end > line) {
        const inside = next > line && next <= end;
        decision = header === 'for' ? (inside ? undefined : 'done') : inside ? 'True' : 'False';
      }
    }
    return {
      line,
      source: text.length > maxSource ? `${text.slice(0, maxSource - 3)}...` : text,
      locals: trace.states[index]?.locals ?? {},
      decision,
      returned: index === trace.path.length - 1 ? undefined : trace.states[index]?.return,
      exception: index === trace.path.length - 1 ? undefined : trace.states[index]?.exception,
    };
  });
}

/** Last line of the indented block that starts after the header at 1-based `line` (= line when the body is on the header line). */
function blockEnd(lines: string[], line: number): number {
  const indent = indentation(lines[line - 1] ?? '');
  let end = line;
  for (let i = line; i < lines.length; i++) {
    const text = lines[i] ?? '';
    if (text.trim() === '' || text.trim().startsWith('#')) continue;
    if (indentation(text) <= indent) break;
    end = i + 1;
  }
  return end;
}

function indentation(text: string): number {
  return text.length - text.trimStart().length;
}

function summarise(
  middle: Step[],
  changes: (locals: Record<string, string>) => string[],
  at: (line: number) => string,
  compact: boolean,
): string {
  // the loop header that repeats most often in the skipped part names what was skipped
  const counts = new Map<number, { source: string; count: number }>();
  for (const step of middle) {
    if (!/^(for|while)\b/.test(step.source)) continue;
    const entry = counts.get(step.line) ?? { source: step.source, count: 0 };
    entry.count++;
    counts.set(step.line, entry);
  }
  let loop: [number, { source: string; count: number }] | undefined;
  for (const entry of counts)
    if (loop === undefined || entry[1].count > loop[1].count) loop = entry;
  // fold every state of the middle into `known`, reporting the values it ends with
  const finalValues: Record<string, string> = {};
  for (const step of middle) Object.assign(finalValues, step.locals);
  const changed = changes(finalValues);
  const what = loop
    ? compact
      ? `L${loop[0]} x${loop[1].count}`
      : `${at(loop[0])}${loop[1].source} x${loop[1].count}`
    : `${middle.length} steps`;
  return `... skip ${what}${changed.length > 0 ? ` | ${changed.join(' ')}` : ''}`;
}

function clip(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max - 3)}...` : value;
}
