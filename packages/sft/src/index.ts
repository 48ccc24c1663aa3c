// Public API of @codereasoner/sft: filled in by its issue.
export const packageName = '@codereasoner/sft';
