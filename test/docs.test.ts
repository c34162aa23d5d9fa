/**
 * The docs cannot drift from the API: every ```ts block of README.md and docs/*.md is compiled,
 * importing `eddy` as this repo's index.ts, with a user's strict settings. A block whose first line
 * is a comment naming a file (`// job.ts: ...`) is that file, so a later block of the same doc can
 * import it (`import job from './job.js'`); other blocks are files of their own. Also: every
 * `EDDY_*` code of ErrorCodes has a section in docs/error-codes.md, and the doc names no other code.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';
import { ErrorCodes } from '../index.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const docs = ['README.md', ...readdirSync(`${root}docs`).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

interface Sample {
  doc: string;
  /** 1-based line of the block's first code line in the doc. */
  line: number;
  file: string;
  text: string;
}

/**
 * The ```ts blocks of one markdown file, each as a virtual file under `docs-samples/<doc>/` of the
 * repo, so that they are ES modules as in a user's project (the repo's package.json has `"type": "module"`).
 */
function samplesOf(doc: string, markdown: string): Sample[] {
  const samples: Sample[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    const text = lines.slice(start, end).join('\n');
    const named = /^\/\/ ([\w.-]+\.ts)\b/.exec(lines[start] ?? '');
    const name = named?.[1] ?? `sample-${start + 1}.ts`;
    samples.push({ doc, line: start + 1, file: `${root}docs-samples/${doc.replace(/[/.]/g, '_')}/${name}`, text });
    i = end;
  }
  return samples;
}

const options: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  typeRoots: [`${root}node_modules/@types`],
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  noPropertyAccessFromIndexSignature: true,
  skipLibCheck: true,
  noEmit: true,
  paths: { eddy: [`${root}index.ts`] },
};

/** Diagnostics of the samples, compiled together; each file is a module (ESM, top-level await allowed). */
function compile(samples: readonly Sample[]): readonly ts.Diagnostic[] {
  const byFile = new Map(samples.map((s) => [s.file, s.text]));
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.fileExists = (name) => byFile.has(name) || fileExists(name);
  host.readFile = (name) => byFile.get(name) ?? readFile(name);
  const folders = new Set(samples.map((s) => s.file.slice(0, s.file.lastIndexOf('/'))));
  const directoryExists = host.directoryExists?.bind(host);
  host.directoryExists = (name) => folders.has(name.replace(/\/$/, '')) || (directoryExists?.(name) ?? true);
  host.getSourceFile = (name, language, ...rest) => {
    const text = byFile.get(name);
    return text === undefined ? getSourceFile(name, language, ...rest) : ts.createSourceFile(name, text, language, true);
  };
  const program = ts.createProgram([...byFile.keys()], options, host);
  return [...program.getSyntacticDiagnostics(), ...program.getSemanticDiagnostics()].filter((d) => d.file !== undefined && byFile.has(d.file.fileName));
}

const samples = docs.flatMap((doc) => samplesOf(doc, readFileSync(`${root}${doc}`, 'utf8')));

void t.test('every ts sample of the docs compiles against the package', async (t) => {
  t.ok(samples.length >= 6, `${samples.length} samples`);
  t.ok(samples.some((s) => s.doc === 'README.md'), 'the README has samples');
  const errors = compile(samples).map((d) => {
    const sample = samples.find((s) => s.file === d.file!.fileName)!;
    const line = d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line;
    return `${sample.doc}:${sample.line + line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
  t.same(errors, [], 'no sample fails to compile');
});

void t.test('a sample that stops compiling is reported', async (t) => {
  const broken = samplesOf('broken.md', "```ts\nimport { valueState } from 'eddy';\nvalueState<number>().nope();\n```\n");
  t.equal(broken.length, 1);
  t.equal(compile(broken).length, 1, 'the wrong call fails');
});

void t.test('docs/error-codes.md explains every error code and no other', async (t) => {
  const doc = readFileSync(`${root}docs/error-codes.md`, 'utf8');
  const headed = [...doc.matchAll(/^## `(EDDY_[A-Z_]+)`$/gm)].map((m) => m[1]);
  t.same([...headed].sort(), [...ErrorCodes].sort(), 'one section per code');
  const mentioned = new Set([...doc.matchAll(/EDDY_[A-Z_]+[A-Z]/g)].map((m) => m[0]));
  t.same([...mentioned].filter((code) => !(ErrorCodes as readonly string[]).includes(code)), [], 'no unknown code');
  for (const code of ErrorCodes) {
    const section = doc.split(`## \`${code}\``)[1]?.split('\n## ')[0] ?? '';
    t.match(section, /\*\*Cause\.\*\*/, `${code} has a cause`);
    t.match(section, /\*\*Fix\.\*\*/, `${code} has a fix`);
  }
});
