export const packageName = '@codereasoner/cli';
