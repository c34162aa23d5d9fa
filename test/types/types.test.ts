/**
 * The type guarantees of the public API, kept from going away silently: test/types/wrong-programs.ts
 * holds mistakes, each after a `// @ts-expect-error`. With the comments, the file compiles clean
 * (each expectation is met); without them, exactly the marked lines fail.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));
const wrongPrograms = fileURLToPath(new URL('./wrong-programs.ts', import.meta.url));
const EXPECT = '// @ts-expect-error';

function compilerOptions(): ts.CompilerOptions {
  const config = ts.readConfigFile(`${root}tsconfig.json`, (path) => ts.sys.readFile(path));
  return ts.parseJsonConfigFileContent(config.config, ts.sys, root).options;
}

/** Diagnostics of `file` compiled with the repo's options, its text replaced by `text`. */
function diagnostics(text: string): readonly ts.Diagnostic[] {
  const options = compilerOptions();
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === wrongPrograms ? ts.createSourceFile(name, text, language, true) : getSourceFile(name, language, ...rest);
  const program = ts.createProgram([wrongPrograms], options, host);
  return [...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics()].filter((d) => d.file?.fileName === wrongPrograms);
}

function lineOf(d: ts.Diagnostic): number {
  return d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line;
}

const source = readFileSync(wrongPrograms, 'utf8');
const lines = source.split('\n');
/** Lines (0-based) that must fail: each one after an expectation. */
const marked = lines.flatMap((line, i) => (line.trim().startsWith(EXPECT) ? [i + 1] : []));

void t.test('every mistake in wrong-programs.ts is expected to fail to compile, and each expectation is met', async (t) => {
  t.ok(marked.length >= 15, `${marked.length} wrong lines`);
  const errors = diagnostics(source).map((d) => `line ${lineOf(d) + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  // An expectation on a line that compiles is itself an error (TS2578), so this also fails if a guarantee goes away.
  t.same(errors, [], 'compiles clean with the expectations');
});

void t.test('without the expectations, exactly the marked lines fail to compile', async (t) => {
  // Blank the comment lines in place, so the line numbers stay the same.
  const stripped = lines.map((line) => (line.trim().startsWith(EXPECT) ? '' : line)).join('\n');
  const failing = new Set(diagnostics(stripped).map(lineOf));
  for (const line of marked) t.ok(failing.has(line), `line ${line + 1} fails: ${lines[line]!.trim()}`);
  t.same([...failing].filter((line) => !marked.includes(line)).map((line) => `line ${line + 1}: ${lines[line]!.trim()}`), [], 'no other line fails');
});
