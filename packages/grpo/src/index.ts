// Public API of @codereasoner/grpo: filled in by its issue.
export const packageName = '@codereasoner/grpo';
