// remoteFunction against an endpoint that speaks StateFun request-reply for real: another job's
// functions served by eddy serve (serveStatefun), here the counter of test/fixtures/statefun-job.ts
// with every kind of effect. The calling job is test/fixtures/remote-counter-job.ts.
import t from 'tap';
import { serveStatefun, type StatefunServer } from '../../../engine/statefun/server.js';
import served from '../../fixtures/statefun-job.js';
import type { Job } from '../../../index.js';
import { run, type Teardowns, waitFor, within } from '../../fixtures/harness.js';
import { intType, remoteFunction } from '../../../index.js';

async function serve(t: Teardowns): Promise<StatefunServer> {
  const server = await serveStatefun(served, { port: 0, workers: 0, onDeadLetter: () => {} });
  t.teardown(() => server.close());
  return server;
}

async function counterJob(url: string, states?: string[], maxBatch?: number): Promise<Job> {
  process.env.EDDY_REMOTE_COUNTER_URL = url;
  if (maxBatch === undefined) delete process.env.EDDY_REMOTE_COUNTER_MAX_BATCH;
  else process.env.EDDY_REMOTE_COUNTER_MAX_BATCH = String(maxBatch);
  if (states === undefined) delete process.env.EDDY_REMOTE_COUNTER_STATES;
  else process.env.EDDY_REMOTE_COUNTER_STATES = states.join(',');
  return ((await import(`../../fixtures/remote-counter-job.js?v=${encodeURIComponent(url + String(states) + String(maxBatch))}`)) as { default: Job }).default;
}

void t.test('state is learned through the missing-state handshake, kept in Eddy, and sent with every later request', async (t) => {
  const server = await serve(t);
  const job = await counterJob(server.url);
  const ops = [{ add: 2 }, { add: 3 }, { addLater: 4 }, { add: 1 }];
  const handle = run(t, job, { workers: 1, inputs: { ops: ops.map((op) => ({ id: 'c1', op })) } });
  await within(handle.done, 30_000, 'the job');
  t.same(handle.output('totals'), [2, 5, 9, 10], 'each request saw the state the one before it wrote, async handler included');
  t.equal(server.metrics.handshakes, 1, 'one handshake: the specs are registered once');
  const requests = server.metrics.requests - server.metrics.handshakes;
  t.ok(requests >= 1 && requests <= 4, `then at most one request per message (those waiting go together): ${requests}`);
});

void t.test('delayed messages, their cancellation, messages to other instances, and a failure handler\'s effects come back through the answer', async (t) => {
  const server = await serve(t);
  const job = await counterJob(server.url);
  const inputs = [
    { id: 'a', op: { add: 5 } },
    { id: 'a', op: { forward: 'b' } }, // b gets { add: 5 } from a
    { id: 'a', op: { remind: 150, token: 'keep' } }, // a gets { add: 0 } later
    { id: 'a', op: { remind: 100, token: 'drop' } },
    { id: 'a', op: { cancel: 'drop' } },
    { id: 'c', op: { fail: true } }, // onInvocationFailed egresses -1
  ];
  const handle = run(t, job, { workers: 2, inputs: { ops: inputs } });
  await waitFor(() => handle.output('totals').length >= 4, 'the totals', 20_000);
  await new Promise((resolve) => setTimeout(resolve, 400));
  await handle.stop();
  t.same([...handle.output<number>('totals')].sort((x, y) => x - y), [-1, 5, 5, 5], 'a: 5, b: 5 (forwarded), c: -1, then the reminder that was kept (add 0 to 5); the cancelled one never came');
});

void t.test('an endpoint that asks for state the job did not list is refused with a dead letter naming it', async (t) => {
  const server = await serve(t);
  const job = await counterJob(server.url, ['count']);
  const handle = run(t, job, { workers: 1, inputs: { ops: [{ id: 'x', op: { add: 1 } }] } });
  await within(handle.done, 30_000, 'the job');
  const letters = handle.output<{ code: string; reason: string }>('dead-letters');
  t.equal(letters.length, 1);
  t.equal(letters[0]!.code, 'EDDY_REMOTE_FUNCTION_FAILED');
  t.match(letters[0]!.reason, /asked for state "touched", which is not among its declared states \(count\)/);
  t.same(handle.output('totals'), []);
});

void t.test('bad options are refused with the fix named', async (t) => {
  t.throws(() => remoteFunction({ type: 'nons', url: 'http://x/' }), { code: 'EDDY_INVALID_JOB' });
  t.throws(() => remoteFunction({ type: 'a/b', url: 'not a url' }), { code: 'EDDY_INVALID_OPTION', message: /url.*e\.g\. http/s });
  t.throws(() => remoteFunction({ type: 'a/b', url: 'ftp://x/' }), { code: 'EDDY_INVALID_OPTION', message: /http:\/\/ or https/ });
  t.throws(() => remoteFunction({ type: 'a/b', url: 'http://x/', timeoutMs: 5 }), { code: 'EDDY_INVALID_OPTION', message: /timeoutMs.*>= 100/ });
  t.throws(() => remoteFunction({ type: 'a/b', url: 'http://x/', states: [''] }), { code: 'EDDY_INVALID_OPTION', message: /states/ });
});

void t.test('a remote function as a 2PC participant: its answer is staged, applied on COMMIT, discarded on ABORT', async (t) => {
  const server = await serve(t);
  const job = await counterJob(server.url);
  const handle = run(t, job, {
    workers: 2,
    inputs: {
      // Instructions that egress nothing, slowly, so that the job still runs for the lookups below.
      ops: { records: Array.from({ length: 100 }, () => ({ id: 'filler', op: { who: true } })), ratePerSec: 20 },
      pairs: [
        { id: 'p1', counter: 'x', amount: 3 },
        { id: 'p2', counter: 'y', amount: 4, refuse: true },
      ],
    },
  });
  await waitFor(() => handle.output('outcomes').length === 2, 'both transactions', 20_000);
  t.same([...handle.output<string>('outcomes')].sort(), ['p1:committed', 'p2:aborted']);
  // The participant applies its staged effects when the COMMIT reaches it, after the coordinator's outcome.
  await waitFor(() => handle.output('totals').length >= 1, 'the committed leg\'s egress', 10_000);
  t.same(handle.output('totals'), [3], 'only the committed transaction\'s remote egress');
  const count = async (id: string): Promise<number | undefined> => {
    const { state } = await handle.state('test/counter', id);
    const stored = (state as { values?: Record<string, { value: string }> }).values?.count;
    return stored === undefined ? undefined : intType.decode(Buffer.from(stored.value, 'base64'));
  };
  t.equal(await count('x'), 3, 'the committed transaction\'s remote state change applied');
  t.equal(await count('y'), undefined, 'the aborted one\'s was staged and dropped');
  await handle.stop();
});

void t.test('messages waiting for an instance while its request is in flight go in the next request, up to maxBatch, in order', async (t) => {
  for (const maxBatch of [undefined, 8, 1]) {
    const server = await serve(t);
    const job = await counterJob(server.url, undefined, maxBatch);
    const ops = Array.from({ length: 200 }, () => ({ id: 'c1', op: { add: 1 } }));
    const handle = run(t, job, { workers: 1, inputs: { ops } });
    await within(handle.done, 60_000, 'the job');
    t.same(handle.output('totals'), Array.from({ length: 200 }, (_, i) => i + 1), `maxBatch ${String(maxBatch)}: every message once, in order, each seeing the state of the one before`);
    const requests = server.metrics.requests - server.metrics.handshakes;
    if (maxBatch === 1) t.equal(requests, 200, 'maxBatch 1: one request per message');
    else {
      t.ok(requests < 200, `batched: ${requests} requests for 200 messages`);
      t.ok(requests >= Math.ceil(200 / (maxBatch ?? 100)), 'no request over maxBatch');
    }
  }
  t.throws(() => remoteFunction({ type: 'a/b', url: 'http://x/', maxBatch: 0 }), { code: 'EDDY_INVALID_OPTION', message: /maxBatch/ });
});
