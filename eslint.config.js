// One gate: `npm test` runs the type-check, this lint and the tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'clients/**', 'openapi/**', 'scratch/**', '.peers/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // src/worker.ts runs only in worker threads: loading it lowers its thread's priority and
      // wraps the kernels; elsewhere its types may be imported, never its values.
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ group: ['**/worker.ts', '**/worker.js', './worker', '../worker'], message: 'src/worker.ts may only be loaded by the pool\'s worker threads; import its types with `import type`.', allowTypeImports: true }],
      }],
    },
  },
  {
    // A request-sized array spread into arguments overflows the stack (600,000 layers did, in Math.max).
    files: ['src/**/*.ts', 'routes/**/*.ts', 'schemas/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error',
        { selector: "CallExpression[callee.object.name='Math'] > SpreadElement", message: 'no spreading into Math.max/min: an array from a request may have millions of entries; loop instead.' },
        { selector: "CallExpression[callee.property.name='push'] > SpreadElement", message: 'no push(...array): a request-sized array overflows the stack; loop or concat instead.' },
      ],
    },
  },
  {
    // The compute core is pure math: nothing of HTTP, validation, logging or threads (test/architecture.test.ts checks every import).
    files: ['src/core/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [
          { group: ['fastify', 'fastify-*', '@fastify/*', 'zod', 'pino', 'piscina'], message: 'src/core/ is pure math: no HTTP, validation, logging or thread-pool packages.' },
        ],
      }],
    },
  },
);
