import { CodeReasonerError } from './errors.js';
import { SPECIAL_TOKENS, type Tokenizer } from './tokenizer.js';

import type { ChatMessage } from '@codereasoner/common';

export type { ChatMessage } from '@codereasoner/common';

export interface RenderChatOptions {
  /** Append `<|im_start|>assistant\n` so the model continues as the assistant. */
  addGenerationPrompt?: boolean;
}

const ROLES = new Set(['system', 'user', 'assistant']);

function checkMessages(messages: readonly ChatMessage[]): void {
  messages.forEach((m, i) => {
    if (
      typeof m !== 'object' ||
      m === null ||
      !ROLES.has(m.role) ||
      typeof m.content !== 'string'
    ) {
      throw new CodeReasonerError(
        'CHAT_MESSAGE_INVALID',
        `messages[${i}] must be { role: 'system' | 'user' | 'assistant', content: string }, got ${JSON.stringify(m)}`,
      );
    }
  });
}

/** ChatML (Qwen2 style): `<|im_start|>{role}\n{content}<|im_end|>\n` per message. */
export function renderChat(
  messages: readonly ChatMessage[],
  options: RenderChatOptions = {},
): string {
  checkMessages(messages);
  let text = '';
  for (const m of messages)
    text += `${SPECIAL_TOKENS.imStart}${m.role}\n${m.content}${SPECIAL_TOKENS.imEnd}\n`;
  if (options.addGenerationPrompt === true) text += `${SPECIAL_TOKENS.imStart}assistant\n`;
  return text;
}

/**
 * Token ids of the ChatML rendering plus a mask of the tokens an assistant produces (its content
 * and the closing `<|im_end|>`). The role header and the content are encoded separately, so a
 * trained assistant turn is tokenized exactly as the model generates it after the generation
 * prompt; special-token strings inside contents stay plain text.
 */
export function encodeChat(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  options: RenderChatOptions = {},
): { ids: number[]; assistantMask: number[] } {
  checkMessages(messages);
  const ids: number[] = [];
  const assistantMask: number[] = [];
  const push = (tokens: readonly number[], mask: number): void => {
    for (const t of tokens) {
      ids.push(t);
      assistantMask.push(mask);
    }
  };
  const newline = tokenizer.encode('\n', { specialTokens: false });
  for (const m of messages) {
    const assistant = m.role === 'assistant' ? 1 : 0;
    push([tokenizer.special.imStart], 0);
    push(tokenizer.encode(`${m.role}\n`, { specialTokens: false }), 0);
    push(tokenizer.encode(m.content, { specialTokens: false }), assistant);
    push([tokenizer.special.imEnd], assistant);
    push(newline, 0);
  }
  if (options.addGenerationPrompt === true) {
    push([tokenizer.special.imStart], 0);
    push(tokenizer.encode('assistant\n', { specialTokens: false }), 0);
  }
  return { ids, assistantMask };
}
