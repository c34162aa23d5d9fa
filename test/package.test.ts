/**
 * The package as a user meets it: built, packed, installed into a fresh project with a strict
 * tsconfig, a job compiled there against the shipped declarations and run with `npx eddy run`.
 * Needs the npm registry or a warm npm cache for the dependencies (installed with --prefer-offline).
 */
import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { tempDir } from './fixtures/harness.js';

const repo = fileURLToPath(new URL('../', import.meta.url));
const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** A user's own strict settings: Eddy's declarations must compile under them, with skipLibCheck off. */
const userTsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noPropertyAccessFromIndexSignature: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: false,
    noEmit: true,
    types: ['node'],
  },
  include: ['job.ts'],
};

/** The user's job: typed end to end; the visit named `crash` meets a bug in the handler (line 20). */
const userJob = `import { fileURLToPath } from 'node:url';
import { defineFunction, defineJob, defineRouter, fileIngress, memoryEgress, routeTo, valueState } from 'eddy';

interface Visit {
  name: string;
}
interface Greeting {
  name: string;
  seen: number;
}

const visits = fileIngress<Visit>('visits', { path: fileURLToPath(new URL('./visits.ndjson', import.meta.url)) });
const greetings = memoryEgress<Greeting>('greetings');

export const greeter = defineFunction({
  type: 'user/greeter',
  state: { seen: valueState<number>() },
  egresses: { greetings },
  handler(ctx, visit: Visit) {
    if (visit.name === 'crash') throw new TypeError(\`cannot greet \${visit.name}\`);
    const seen = (ctx.state.seen.get() ?? 0) + 1;
    ctx.state.seen.set(seen);
    ctx.egress('greetings', { name: visit.name, seen });
  },
});

export default defineJob({
  name: 'user-greeter',
  module: import.meta.url,
  functions: [greeter],
  ingresses: [visits],
  routers: [defineRouter(visits, (visit) => routeTo(greeter.address(visit.name), visit))],
  egresses: [greetings],
});
`;

void t.test('the packed package installs into a strict TypeScript project, compiles a job and runs it with npx eddy run', async (t) => {
  const packs = tempDir(t, 'pack');
  const project = tempDir(t, 'user');
  await run(process.execPath, [join(repo, 'scripts', 'build.mjs')], { cwd: repo });
  // Built just now; prepack would build again.
  await run(npm, ['pack', '--ignore-scripts', '--pack-destination', packs], { cwd: repo });
  const tarball = join(packs, readdirSync(packs).find((name) => name.endsWith('.tgz'))!);

  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-job', private: true, type: 'module' }));
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(userTsconfig, null, 2));
  writeFileSync(join(project, 'job.ts'), userJob);
  writeFileSync(join(project, 'visits.ndjson'), ['ada', 'bob', 'ada', 'crash'].map((name) => JSON.stringify({ name })).join('\n') + '\n');
  await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, '@types/node@20'], { cwd: project, timeout: 180_000 });

  // The repo's compiler, the user's settings and the installed package's declarations.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const compiled = await run(process.execPath, [tsc, '-p', project], { cwd: project }).then(
    () => '',
    (error: Error & { stdout?: string }) => error.stdout ?? error.message,
  );
  t.equal(compiled, '', 'the job and Eddy\'s declarations compile under strict settings, skipLibCheck off');

  const { stdout } = await run('npx', ['--no-install', 'eddy', 'run', 'job.ts', '--show', '5', '--no-progress', '--no-admin'], { cwd: project, timeout: 120_000 });
  const lines = stdout.split('\n').map((line) => line.trim());
  const records = (from: string): unknown[] => {
    const start = lines.findIndex((line) => line.startsWith(`${from} (`));
    if (start < 0) return [];
    const end = lines.findIndex((line, i) => i > start && !line.startsWith('{'));
    return lines.slice(start + 1, end < 0 ? undefined : end).map((line) => JSON.parse(line) as unknown);
  };
  t.match(stdout, /job user-greeter ended by end-of-input/, 'the job ran to the end of its input');
  t.same(records('greetings'), [{ name: 'ada', seen: 1 }, { name: 'bob', seen: 1 }, { name: 'ada', seen: 2 }], 'the greetings');
  const [letter, ...more] = records('dead-letters') as Array<{ code: string; reason: string; payload?: unknown; payloadBase64?: string }>;
  t.same(more, [], 'one dead letter');
  t.equal(letter?.code, 'EDDY_HANDLER_FAILED', 'the bug is a dead letter');
  t.same(letter?.payload, { name: 'crash' }, 'shown decoded by the function\'s codec');
  t.equal(letter?.payloadBase64, undefined, 'not as base64');
  t.match(letter?.reason ?? '', /TypeError: cannot greet crash \(at .*job\.ts:20:\d+\)/, 'naming the file and line of the throw in the user\'s TypeScript');
});
