// One gate: `npm test` runs the type-check, this lint and the tests.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'clients/**', 'openapi/**', '.peers/**'] },
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
);
