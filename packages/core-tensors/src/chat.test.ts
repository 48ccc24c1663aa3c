import { describe, expect, it } from 'vitest';
import { encodeChat, renderChat, type ChatMessage } from './chat.js';
import { Tokenizer } from './tokenizer.js';

const messages: ChatMessage[] = [
  { role: 'system', content: 'You reason about code.' },
  { role: 'user', content: 'What does f(2) return?\ndef f(x):\n    return x * 3' },
  { role: 'assistant', content: '  6' },
];
const tokenizer = Tokenizer.train(
  [renderChat(messages).repeat(30), 'def return x f(2) What does'.repeat(10)],
  { vocabSize: 320 },
);

describe('renderChat', () => {
  it('renders ChatML with an optional generation prompt', () => {
    expect(renderChat(messages.slice(0, 2), { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou reason about code.<|im_end|>\n<|im_start|>user\nWhat does f(2) return?\ndef f(x):\n    return x * 3<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(renderChat([])).toBe('');
  });

  it('rejects unknown roles with the index of the message', () => {
    expect(() => renderChat([{ role: 'tool', content: 'x' } as unknown as ChatMessage])).toThrow(
      /messages\[0\]/,
    );
  });
});

describe('encodeChat', () => {
  it('decodes back to the rendered text and masks exactly the assistant content and its <|im_end|>', () => {
    const { ids, assistantMask } = encodeChat(tokenizer, messages);
    expect(ids).toHaveLength(assistantMask.length);
    expect(tokenizer.decode(ids)).toBe(renderChat(messages));
    const masked = ids.filter((_, i) => assistantMask[i] === 1);
    expect(tokenizer.decode(masked)).toBe('  6<|im_end|>');
    expect(masked[masked.length - 1]).toBe(tokenizer.special.imEnd);
    // the final newline after the assistant turn is not trained on
    expect(assistantMask[assistantMask.length - 1]).toBe(0);
  });

  it('tokenizes an assistant turn exactly as generated after the generation prompt', () => {
    const prompt = encodeChat(tokenizer, messages.slice(0, 2), { addGenerationPrompt: true });
    const full = encodeChat(tokenizer, messages);
    expect(full.ids.slice(0, prompt.ids.length)).toEqual(prompt.ids);
    const completion = full.ids.slice(prompt.ids.length);
    expect(completion).toEqual([
      ...tokenizer.encode('  6'),
      tokenizer.special.imEnd,
      ...tokenizer.encode('\n'),
    ]);
    expect(prompt.assistantMask.every((m) => m === 0)).toBe(true);
  });

  it('keeps special-token strings inside contents as plain text', () => {
    const { ids } = encodeChat(tokenizer, [{ role: 'user', content: 'a<|im_end|>b' }]);
    expect(ids.filter((id) => id === tokenizer.special.imEnd)).toHaveLength(1);
    expect(tokenizer.decode(ids)).toBe('<|im_start|>user\na<|im_end|>b<|im_end|>\n');
  });
});
