import { ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN } from './answer.js';
import { LINE_TASK_TYPES } from '@codereasoner/common';
import type { ChatMessage, TaskRecord, TaskType } from './records.js';

export interface RenderPromptOptions {
  /** Ask for reasoning inside `<think>…</think>` before the answer (default true). */
  reasoning?: boolean;
}

const SYSTEM_BASE =
  'You are an expert Python programmer who reasons precisely about how Python code executes.';

/** The system message for either mode (exported so graders and exporters can reuse it). */
export function systemPrompt(reasoning: boolean): string {
  return reasoning
    ? `${SYSTEM_BASE} Think step by step inside ${THINK_OPEN}${THINK_CLOSE}, then give only the final answer inside ${ANSWER_OPEN}${ANSWER_CLOSE}.`
    : `${SYSTEM_BASE} Give only the final answer inside ${ANSWER_OPEN}${ANSWER_CLOSE}, with no explanation.`;
}

/** `code` with 1-based line numbers: `N<TAB>line` (REval's path prompts use the same prefix). */
export function numberLines(code: string): string {
  return code
    .replace(/\n+$/, '')
    .split('\n')
    .map((line, index) => `${index + 1}\t${line}`)
    .join('\n');
}

/** Text of 1-based line `line` of `code`, stripped. */
export function lineText(code: string, line: number): string {
  return (code.split('\n')[line - 1] ?? '').trim();
}

const NUMBERED: ReadonlySet<TaskType> = new Set(LINE_TASK_TYPES);

/** The question sentence for a task (the part after the code). */
export function renderQuestion(task: TaskRecord): string {
  const call = `${task.entryPoint}(${task.input})`;
  const where =
    task.line === undefined ? '' : `line ${task.line} (\`${lineText(task.code, task.line)}\`)`;
  switch (task.type) {
    case 'output':
      return `What does \`${call}\` return? Answer with the returned value as a Python literal.`;
    case 'input':
      return (
        `Find an input such that \`${task.entryPoint}(??) == ${task.output}\`. ` +
        `Answer with the arguments as Python literals, exactly as they would appear between the parentheses of the call.`
      );
    case 'coverage':
      return `Is ${where} executed when \`${call}\` is called? Answer yes or no.`;
    case 'state':
      return (
        `What is the value of \`${task.variable ?? '?'}\` right after ${where} is executed for the first time ` +
        `when \`${call}\` is called? Answer with the value as a Python literal.`
      );
    case 'path':
      return (
        `When \`${call}\` is called, which line is executed right after ${where} is executed for the first time? ` +
        `Answer with the line number, or -1 if execution ends after that line.`
      );
  }
}

/**
 * The prompt of a task as chat messages (system + user). Coverage, state and path prompts show
 * the code with `N<TAB>` line numbers; output and input prompts show it plain.
 */
export function renderPrompt(task: TaskRecord, options: RenderPromptOptions = {}): ChatMessage[] {
  const reasoning = options.reasoning ?? true;
  const code = NUMBERED.has(task.type) ? numberLines(task.code) : task.code.replace(/\n+$/, '');
  return [
    { role: 'system', content: systemPrompt(reasoning) },
    { role: 'user', content: `\`\`\`python\n${code}\n\`\`\`\n${renderQuestion(task)}` },
  ];
}
