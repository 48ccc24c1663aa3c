// Public API of @codereasoner/sandbox: filled in by its issue.
export const packageName = '@codereasoner/sandbox';
