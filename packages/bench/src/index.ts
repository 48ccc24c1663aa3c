// Public API of @codereasoner/bench: filled in by its issue.
export const packageName = '@codereasoner/bench';
