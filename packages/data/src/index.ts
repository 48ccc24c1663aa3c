// Public API of @codereasoner/data: filled in by its issue.
export const packageName = '@codereasoner/data';
