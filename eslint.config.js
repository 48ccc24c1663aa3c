import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/__fixtures__/**', '**/coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ alwaysTryTypes: true })],
    },
    rules: {
      'import-x/no-cycle': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-console': 'error',
    },
  },
  {
    // The package graph (docs/architecture.md): the trainers, the benchmarks and the reward server
    // speak the task protocol (@codereasoner/protocol) and never load the corpus builder or its
    // tree-sitter parser; the protocol itself loads neither. Tests and bench scripts may build a corpus to run on.
    files: ['packages/{protocol,sft,grpo,bench,serve}/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@codereasoner/data',
              message:
                'The corpus builder (tree-sitter) is not for this package: import the task protocol from @codereasoner/protocol.',
            },
            { name: 'web-tree-sitter', message: 'Parsing belongs to @codereasoner/data.' },
            { name: 'tree-sitter-python', message: 'Parsing belongs to @codereasoner/data.' },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/cli/**/*.ts', '**/bench/**/*.ts', '**/*.test.ts', '**/scripts/**'],
    rules: { 'no-console': 'off' },
  },
);
