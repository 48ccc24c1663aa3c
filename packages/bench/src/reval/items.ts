import {
  completeRevalOutput,
  extractRevalAnswer,
  parseRevalCoverage,
  parseRevalPath,
  pyRstrip,
  type RevalTask,
} from '../extract.js';
import {
  OFFICIAL_SYSTEM_MESSAGE,
  revalPrompt,
  type RevalPromptFields,
} from '../official-prompts.js';
import {
  protocolAnswerBlock,
  protocolCompletion,
  protocolExtract,
  protocolMessages,
  protocolSnippetMessages,
  type ProtocolQuestion,
} from '../protocol.js';
import type { SandboxLike } from '../types.js';
import type { BenchItem, ChatMessage, PromptStyle, SampleVerdict } from '../types.js';
import type { RevalGroup, RevalProblem } from './data.js';
import {
  checkRevalOutputs,
  checkRevalStates,
  type RevalGroupTruth,
  type StateAnswers,
} from './truth.js';

export type { RevalTask };

/** Everything scoring needs about one item (kept beside the item, never sent to the model). */
export interface RevalItemContext {
  problem: RevalProblem;
  group: RevalGroup;
  truth: RevalGroupTruth;
  /** Probe index within the group (coverage/state/path). */
  probe: number;
}

const SETUP_HEADER = '\n# setup code executed previously\n';

/**
 * The setUp text shown in a ClassEval prompt. `evaluation.py` builds it twice over: Path and
 * Output as `header + '# ' + '\n# '.join(lines[1:])`, Coverage and State as
 * `header + '\n# '.join(lines[1:])`, so there (quirk) the first setUp line is shown as code, not
 * as a comment. `setup` is the harness's Path/Output form.
 */
export function revalSetupText(setup: string, task: RevalTask): string {
  if ((task === 'coverage' || task === 'state') && setup.startsWith(`${SETUP_HEADER}# `))
    return SETUP_HEADER + setup.slice(SETUP_HEADER.length + 2);
  return setup;
}

const OUTPUT_PRELUDE =
  '\n# Test code starts here. Only write the completed test code in your answer.\n';
const COT_THOUGHT = 'The oracle knows the answer.\n[/THOUGHT]\n[ANSWER]\n';

/** The call REval shows for a function problem: `fn` + the args tuple without its trailing `,)` + `)`. */
export function revalInvocation(problem: RevalProblem, group: RevalGroup): string {
  const input = problem.inputs[group.inputIdx]!;
  return `${problem.entryPoint}${input.slice(0, -2)})`;
}

function numberedCode(code: string): string {
  return code
    .split('\n')
    .map((line, i) => `${i + 1}\t${line}\n`)
    .join('');
}

/** Class problems in protocol style: the test snippet as a `test()` function after the class (line numbers unchanged). */
function protocolClassProgram(
  problem: RevalProblem,
  group: RevalGroup,
  truth: RevalGroupTruth,
): string {
  const body = `${truth.setup}\n${problem.inputs[group.inputIdx]!.replace(/\n+$/, '')}`
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => `    ${line.replace(/\t/g, '    ')}`)
    .join('\n');
  return `${problem.code.replace(/\n+$/, '')}\n\n\ndef test():\n${body}\n`;
}

function protocolQuestion(
  problem: RevalProblem,
  group: RevalGroup,
  truth: RevalGroupTruth,
): Pick<ProtocolQuestion, 'code' | 'entryPoint' | 'input'> {
  if (problem.kind === 'function') {
    return {
      code: problem.code,
      entryPoint: problem.entryPoint,
      input: problem.inputs[group.inputIdx]!.trim().slice(1, -2),
    };
  }
  return { code: protocolClassProgram(problem, group, truth), entryPoint: 'test', input: '' };
}

function officialMessages(prompt: string): ChatMessage[] {
  return [
    { role: 'system', content: OFFICIAL_SYSTEM_MESSAGE },
    { role: 'user', content: prompt },
  ];
}

function officialOracle(answer: string, cot: boolean): string {
  return `${cot ? COT_THOUGHT : ''}${answer}\n[/ANSWER]\n`;
}

/** Items of one group for the selected tasks (probe questions first, in probe order, then output). */
export function revalGroupItems(
  problem: RevalProblem,
  group: RevalGroup,
  truth: RevalGroupTruth,
  tasks: readonly RevalTask[],
  options: { cot: boolean; style: PromptStyle },
): { item: BenchItem; context: RevalItemContext }[] {
  const out: { item: BenchItem; context: RevalItemContext }[] = [];
  const codeLines = problem.code.split('\n');
  const isFunction = problem.kind === 'function';
  const invocationOf = (task: RevalTask): string =>
    isFunction
      ? revalInvocation(problem, group)
      : `${revalSetupText(truth.setup, task)}\n${pyRstrip(problem.inputs[group.inputIdx]!)}`;
  const invocationAbbr = isFunction ? revalInvocation(problem, group) : 'the above test code';
  for (const task of tasks) {
    if (task === 'output') {
      const id = group.key;
      let messages: ChatMessage[];
      let oracle: string;
      if (options.style === 'official') {
        const fields: RevalPromptFields = {
          code: problem.code,
          invocation: isFunction
            ? `\n${group.outputPred}`
            : `${truth.setup}${OUTPUT_PRELUDE}${group.outputPred}`,
          invocationAbbr,
          line: 0,
          codeline: '',
          variable: '',
        };
        messages = officialMessages(revalPrompt('output', options.cot, fields));
        oracle = officialOracle(truth.outputGold ?? '', options.cot);
      } else if (isFunction) {
        messages = protocolMessages(
          { type: 'output', ...protocolQuestion(problem, group, truth) },
          id,
          options.cot,
        );
        oracle = protocolCompletion(truth.returnRepr ?? '', options.cot);
      } else {
        messages = protocolSnippetMessages(
          problem.code,
          `${truth.setup}\n${group.outputPred}`.trim(),
          options.cot,
        );
        oracle = protocolCompletion(truth.outputGold ?? '', options.cot);
      }
      const answerable =
        truth.outputGold !== null &&
        truth.outputGoldPasses &&
        completeRevalOutput(truth.outputGold, group.outputPred).penalty === undefined;
      out.push({
        item: { key: `output/${id}`, task, id, messages, oracle, answerable, group: group.key },
        context: { problem, group, truth, probe: -1 },
      });
      continue;
    }
    group.probes.forEach((probe, k) => {
      const t = truth.probes[k]!;
      const id = `${group.key}@${k}:L${probe.line}:${probe.variable}`;
      let messages: ChatMessage[];
      let oracle: string;
      let answerable = true;
      if (options.style === 'official') {
        const fields: RevalPromptFields = {
          code: task === 'path' && isFunction ? numberedCode(problem.code) : problem.code,
          invocation: invocationOf(task),
          invocationAbbr,
          line: probe.line,
          codeline: codeLines[probe.line - 1] ?? '',
          variable: probe.variable,
        };
        messages = officialMessages(revalPrompt(task, options.cot, fields));
        let answer: string;
        if (task === 'coverage') answer = t.covered ? 'YES' : 'NO';
        else if (task === 'path')
          answer =
            t.next[0] === -1 || t.next[0] === undefined
              ? '-1'
              : (codeLines[t.next[0] - 1] ?? '').trim();
        else {
          answerable = t.gold !== null;
          answer = t.gold ?? `${t.values[0] ?? 'Nil'}; ${t.types[0] ?? ''}`;
        }
        oracle = officialOracle(answer, options.cot);
      } else {
        const base = protocolQuestion(problem, group, truth);
        messages = protocolMessages(
          {
            type: task,
            ...base,
            line: probe.line,
            ...(task === 'state' ? { variable: probe.variable } : {}),
          },
          id,
          options.cot,
        );
        let answer: string;
        if (task === 'coverage') answer = t.covered ? 'yes' : 'no';
        else if (task === 'path') answer = String(t.next[0] ?? -1);
        else {
          answer = t.nil ? 'Nil' : (t.values[0] ?? 'Nil');
          answerable = t.gold !== null;
        }
        oracle = protocolCompletion(answer, options.cot);
      }
      out.push({
        item: { key: `${task}/${id}`, task, id, messages, oracle, answerable, group: group.key },
        context: { problem, group, truth, probe: k },
      });
    });
  }
  return out;
}

/** Scores REval samples by the official rules; state and output answers are checked in the sandbox. */
export async function scoreReval(
  sandbox: SandboxLike,
  items: readonly BenchItem[],
  contexts: readonly RevalItemContext[],
  completions: readonly (readonly string[])[],
  options: { cot: boolean; style: PromptStyle; strictLiterals?: boolean },
): Promise<SampleVerdict[][]> {
  const verdicts: SampleVerdict[][] = items.map(
    (_, i) => new Array<SampleVerdict>(completions[i]!.length),
  );
  const stateRequests = new Map<
    string,
    {
      context: RevalItemContext;
      answers: StateAnswers;
      slots: { item: number; sample: number; probe: number; at: number }[];
    }
  >();
  const outputRequests: {
    item: number;
    sample: number;
    context: RevalItemContext;
    answer: string;
  }[] = [];

  items.forEach((item, i) => {
    const context = contexts[i]!;
    const truth = context.truth.probes[context.probe];
    completions[i]!.forEach((completion, s) => {
      const set = (v: SampleVerdict) => {
        verdicts[i]![s] = v;
      };
      // 1. The answer text, per prompt style.
      let text: string;
      if (options.style === 'official') {
        const extracted = extractRevalAnswer(completion, item.task as RevalTask, options.cot);
        if (!extracted.ok) {
          // CoT without [/THOUGHT]: coverage counts as NO, path as -2, state/output as ERROR.
          if (item.task === 'coverage') {
            const correct = truth!.covered === false;
            set({
              extracted: 'NO',
              verdict: correct ? 'pass' : 'fail',
              reason: `${extracted.reason}: read as NO`,
            });
          } else set({ extracted: null, verdict: 'fail', reason: extracted.reason });
          return;
        }
        text = extracted.text;
      } else if (item.task === 'output' && context.problem.kind === 'class') {
        const block = protocolAnswerBlock(completion);
        if (!block.ok) {
          set({ extracted: null, verdict: 'fail', reason: block.reason });
          return;
        }
        text = block.answer;
      } else {
        const extracted = protocolExtract(completion, item.task as RevalTask);
        if (!extracted.ok) {
          set({ extracted: null, verdict: 'fail', reason: extracted.reason });
          return;
        }
        text = extracted.answer;
      }
      // 2. The task's rule.
      switch (item.task) {
        case 'coverage': {
          const predicted =
            options.style === 'official' ? parseRevalCoverage(text) : text === 'yes';
          const correct = predicted === truth!.covered;
          set({
            extracted: predicted ? 'YES' : 'NO',
            verdict: correct ? 'pass' : 'fail',
            reason: `line ${truth!.covered ? 'runs' : 'does not run'}; answered ${predicted ? 'YES' : 'NO'}`,
          });
          return;
        }
        case 'path': {
          const lines =
            options.style === 'official'
              ? parseRevalPath(text, context.problem.code.split('\n'))
              : [Number.parseInt(text, 10)];
          const correct = lines.some((line) => truth!.next.includes(line));
          set({
            extracted: lines.join(','),
            verdict: correct ? 'pass' : 'fail',
            reason: `next line(s) ${truth!.next.join(',')}; answer maps to ${lines.join(',')}`,
          });
          return;
        }
        case 'state': {
          const key = context.group.key;
          let request = stateRequests.get(key);
          if (request === undefined) {
            request = { context, answers: {}, slots: [] };
            stateRequests.set(key, request);
          }
          const list = (request.answers[context.probe] ??= []);
          request.slots.push({ item: i, sample: s, probe: context.probe, at: list.length });
          list.push(options.style === 'official' ? text : { value: text });
          set({ extracted: text, verdict: 'fail', reason: 'not checked' });
          return;
        }
        case 'output': {
          let answer = text;
          if (options.style === 'protocol' && context.problem.kind === 'function') {
            answer = context.group.outputPred.replace('??', text);
          }
          const completed = completeRevalOutput(answer, context.group.outputPred);
          if (completed.penalty !== undefined) {
            set({
              extracted: completed.code,
              verdict: 'fail',
              reason: `rejected before execution: ${completed.penalty}`,
            });
            return;
          }
          outputRequests.push({ item: i, sample: s, context, answer: completed.code });
          set({ extracted: completed.code, verdict: 'fail', reason: 'not checked' });
          return;
        }
      }
    });
  });

  const stateList = [...stateRequests.values()];
  const stateResults = await checkRevalStates(
    sandbox,
    stateList.map((r) => ({
      problem: r.context.problem,
      group: r.context.group,
      answers: r.answers,
    })),
    { strict: options.strictLiterals ?? false },
  );
  stateList.forEach((request, r) => {
    const result = stateResults[r]!;
    for (const slot of request.slots) {
      const v = verdicts[slot.item]![slot.sample]!;
      if ('error' in result) {
        v.reason = `state check failed: ${result.error}`;
        continue;
      }
      const check = result[slot.probe]?.[slot.at];
      v.verdict = check?.correct === true ? 'pass' : 'fail';
      v.reason = check?.reason ?? 'no check result';
      if (check !== undefined) v.literal = check.literal;
    }
  });

  const outputResults = await checkRevalOutputs(
    sandbox,
    outputRequests.map((r) => ({
      problem: r.context.problem,
      group: r.context.group,
      answer: r.answer,
    })),
  );
  outputRequests.forEach((request, k) => {
    const v = verdicts[request.item]![request.sample]!;
    v.verdict = outputResults[k]!.passed ? 'pass' : 'fail';
    v.reason = outputResults[k]!.reason;
  });
  return verdicts;
}

export interface ConsistencyPoint {
  coverage: boolean;
  state: boolean;
  path: boolean;
  output: boolean;
}

/**
 * REval's incremental consistency (`class Consistency`): per probe point 1 for C,S,P,O all right,
 * 0.5 for C,S,P right and O wrong, 0.25 for C,S right and P,O wrong, 0.125 for only C right,
 * otherwise 0; the score is 100 × the mean.
 */
export function incrementalConsistency(points: readonly ConsistencyPoint[]): number | undefined {
  if (points.length === 0) return undefined;
  let score = 0;
  for (const { coverage: c, state: s, path: p, output: o } of points) {
    if (c && s && p && o) score += 1;
    else if (c && s && p && !o) score += 0.5;
    else if (c && s && !p && !o) score += 0.25;
    else if (c && !s && !p && !o) score += 0.125;
  }
  return (100 * score) / points.length;
}
