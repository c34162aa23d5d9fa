/** `eddy serve` as a user runs it, in a child process, called over HTTP the way StateFun calls it. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import t from 'tap';
import { startServe } from '../fixtures/statefun-harness.js';

const repo = join(import.meta.dirname, '..', '..');
const wireDir = join(repo, 'test', 'fixtures', 'statefun-wire');
const sample = (name: string): Buffer => readFileSync(join(wireDir, `${name}.bin`));

void t.test('eddy serve answers the captured StateFun requests byte for byte, and stops cleanly on SIGTERM', async (t) => {
  const serve = await startServe(t, ['test/fixtures/statefun-job.ts', '--port', '0']);
  t.match(serve.url, /^http:\/\/127\.0\.0\.1:\d+\/statefun$/);
  t.match(serve.stderr(), /job statefun-test \(example\/greeter, test\/counter\)/, 'names the job and its function types');
  for (const [request, response] of [
    ['01-request', '01-response'],
    ['02-request', '02-response'],
    ['03-request', '03-response'],
    ['203-batched-request', '203-batched-response'],
  ] as const) {
    const reply = await fetch(serve.url, { method: 'POST', body: sample(request), headers: { 'Content-Type': 'application/octet-stream', 'User-Agent': 'statefun' } });
    t.equal(reply.status, 200, request);
    t.equal(reply.headers.get('content-type'), 'application/octet-stream');
    t.same(Buffer.from(await reply.arrayBuffer()), sample(response), `${request} -> ${response}`);
  }
  serve.child.kill('SIGTERM');
  t.equal(await serve.exited, 0, 'exit code 0');
  t.match(serve.stderr(), /4 requests \(2 state handshakes\), 3 invocations, 0 dead letters, 0 failed/, 'with what it served');
});

void t.test('eddy serve without --port says so', async (t) => {
  const child = spawn(process.execPath, [join(repo, 'bin', 'eddy.js'), 'serve', 'test/fixtures/statefun-job.ts'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.not(code, 0);
  t.match(stderr, /required option '--port <port>' not specified/);
});
