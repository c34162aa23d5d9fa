// Lint with type information (floating promises fail) and check the layer boundaries of the code:
// engine/ imports neither operators/ nor connectors/ (except its composition root), operators/ and
// connectors/ never import each other, and examples/, bench/ and test/ (but test/ mirrors of the
// sources) use the public entry.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layer = (files, patterns) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns: patterns.map(([group, message]) => ({ group, message })) }] },
});

export default tseslint.config(
  { ignores: ['node_modules/**', '.tap/**', 'engine/runtime/worker-bootstrap.mjs', 'bin/**', 'eslint.config.js'] },
  // Only the project's TypeScript (what tsconfig.json includes): a user's own files elsewhere in the tree are not ours to lint.
  { ignores: ['**/*', '!index.ts', '!engine/', '!engine/**', '!operators/', '!operators/**', '!connectors/', '!connectors/**', '!examples/', '!examples/**', '!bench/', '!bench/**', '!test/', '!test/**', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/only-throw-error': 'off',
    },
  },
  layer(['engine/**/*.ts'], [
    [['**/operators/**', '**/connectors/**'], 'engine/ must not depend on operators/ or connectors/ (only engine/runtime/worker-task.ts wires the graph)'],
  ]),
  // The other composition root: `eddy serve`'s request-reply host of the invocation core.
  { files: ['engine/statefun/handler.ts', 'engine/statefun/router-functions.ts', 'engine/statefun/coordinators-*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/connectors/**'], message: 'connectors come from the job module' }] }] } },
  { files: ['engine/runtime/worker-task.ts'], rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/connectors/**'], message: 'connectors come from the job module' }] }] } },
  layer(['operators/**/*.ts'], [[['**/connectors/**', '../index.js', '../../index.js'], 'operators/ use engine/ types only']]),
  layer(['connectors/**/*.ts'], [[['**/operators/**', '../index.js', '../../index.js'], 'connectors/ use engine/ types only']]),
  layer(['examples/**/*.ts', 'bench/**/*.ts'], [[['**/engine/**', '**/operators/**', '**/connectors/**'], 'examples and benchmarks use the public entry (index.ts) only']]),
);
