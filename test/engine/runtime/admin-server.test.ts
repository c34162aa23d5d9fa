/**
 * The admin endpoint's metrics, scraped from real running jobs (worker threads, LevelDB, checkpoints),
 * and its access rules: a token on every request when it is required.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import counterJob from '../../fixtures/counter-job.js';
import pairJob from '../../fixtures/pair-job.js';
import collectionsJob, { type BasketAnswer, type BasketEvent } from '../../fixtures/collections-job.js';
import { run, tempDir, waitFor } from '../../fixtures/harness.js';

const root = join(import.meta.dirname, '..', '..', '..');
const exec = promisify(execFile);
const events = (n: number): Array<{ key: string }> => Array.from({ length: n }, (_, i) => ({ key: `k${i % 100}` }));

/** Prometheus text as samples: name, labels (job label left out), value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a Prometheus sample: ${line}`);
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    delete labels.job;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { samples, types };
}

const scrape = async (url: string): Promise<{ samples: Sample[]; types: Map<string, string>; text: string }> => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return { ...parse(text), text };
};
const values = (samples: Sample[], name: string, labels: Record<string, string> = {}): number[] =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).map((s) => s.value);
const total = (samples: Sample[], name: string, labels: Record<string, string> = {}): number => values(samples, name, labels).reduce((a, b) => a + b, 0);

void t.test('GET /metrics of a running job: per function type, router, worker and checkpoint figures, and clean names', async (t) => {
  const checkpointDir = tempDir(t, 'metrics');
  const handle = run(t, counterJob, { workers: 2, checkpointDir, adminPort: 0, inputs: { events: { records: events(200_000), ratePerSec: 3000 } } });
  const url = (await handle.adminUrl())!;
  await waitFor(() => handle.status().state === 'running', 'the job to run');

  // Before anything happened: counters that are still zero have samples too.
  const first = await scrape(url);
  for (const [name, type] of first.types) {
    if (type !== 'counter') continue;
    t.ok(first.samples.some((s) => s.name === name), `counter ${name} has a sample before it counted anything`);
  }
  t.same(values(first.samples, 'eddy_checkpoints_failed_total', { cause: 'timeout' }), [0], 'checkpoint failures per cause start at 0');
  t.same(values(first.samples, 'eddy_last_recovery_timestamp_seconds'), [0], 'no recovery yet');
  t.notMatch(first.text, /_total_total/, 'no metric name ends in _total_total');
  t.ok(values(first.samples, 'eddy_lock_hold_seconds_total').length === 2, 'lock hold time is eddy_lock_hold_seconds_total, per worker');

  for (let i = 0; i < 500 && (await handle.metrics()).perWorker.some((w) => w.invocations === 0); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal((await fetch(`${url}/checkpoint`, { method: 'POST' })).status, 200, 'a checkpoint');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const { samples, text } = await scrape(url);

  const invocations = total(samples, 'eddy_invocations_total');
  t.ok(invocations > 0, `invocations: ${invocations}`);
  const fn = { function: 'e2e-counter/count' };
  t.equal(total(samples, 'eddy_function_invocations_total', fn), invocations, 'invocations per function type add up to the per-worker counts');
  t.equal(total(samples, 'eddy_function_failures_total', fn), 0, 'no failures');
  // The counter reads and writes its one state value once per invocation.
  t.equal(total(samples, 'eddy_function_state_reads_total', fn), invocations, 'one state read per invocation');
  t.equal(total(samples, 'eddy_function_state_writes_total', fn), invocations, 'one state write per invocation');
  const misses = total(samples, 'eddy_function_state_cache_misses_total', fn);
  t.ok(misses >= 1 && misses <= 100, `cache misses: ${misses} (each of the 100 keys misses once at most, the cache holds them all)`);
  const buckets = samples.filter((s) => s.name === 'eddy_function_handler_seconds_bucket' && s.labels.function === fn.function);
  t.ok(buckets.length > 2, 'handler time is a histogram with buckets');
  t.ok(buckets.every((b, i) => i === 0 || b.value >= buckets[i - 1]!.value), 'its buckets are cumulative');
  t.equal(buckets.at(-1)!.labels.le, '+Inf', 'the last bucket is +Inf');
  t.equal(buckets.at(-1)!.value, invocations, 'and counts every invocation');
  t.same(values(samples, 'eddy_function_handler_seconds_count', fn), [invocations], 'its count is the invocations');
  t.match(text, /^# TYPE eddy_function_handler_seconds histogram$/m, 'typed as a histogram');

  for (const worker of ['0', '1']) {
    t.equal(values(samples, 'eddy_router_blocked_seconds_total', { worker, reason: 'credits' }).length, 1, `worker ${worker}: time blocked on credits`);
    t.equal(values(samples, 'eddy_router_blocked_seconds_total', { worker, reason: 'feedback' }).length, 1, `worker ${worker}: time throttled by feedback`);
    const elu = values(samples, 'eddy_worker_event_loop_utilization', { worker })[0]!;
    t.ok(elu >= 0 && elu <= 1, `worker ${worker}: event-loop utilisation ${elu}`);
    t.ok(values(samples, 'eddy_heap_used_bytes', { worker })[0]! > 1_000_000, `worker ${worker}: heap in use`);
    t.ok(values(samples, 'eddy_state_bytes_on_disk', { worker })[0]! > 0, `worker ${worker}: its LevelDB takes space on disk`);
    t.ok(values(samples, 'eddy_records_read_total', { worker })[0]! > 0, `worker ${worker}: its router read records`);
  }

  const [p50, p95, p99] = ['0.5', '0.95', '0.99'].map((quantile) => values(samples, 'eddy_latency_seconds', { quantile })[0]!);
  const max = values(samples, 'eddy_latency_max_seconds')[0]!;
  t.ok(p50! <= p95! && p95! <= p99! && p99! <= max, `quantiles never exceed the max: ${p50} ${p95} ${p99} <= ${max}`);

  t.same(values(samples, 'eddy_checkpoints_completed_total'), [1], 'the checkpoint completed');
  const age = values(samples, 'eddy_seconds_since_last_checkpoint')[0]!;
  t.ok(age >= 1 && age < 30, `seconds since it completed: ${age}`);
  t.same(values(samples, 'eddy_unpublished_epochs'), [0], 'memory egresses publish at once: no epoch waits');
  t.match(text, /^eddy_build_info\{version="\d+\.\d+\.\d+",job="e2e-counter"\} 1$/m, 'the version');

  // A worker failure: the job restores, and the scrape shows when.
  const killedAt = Date.now();
  await handle.killWorker(1);
  await waitFor(() => handle.status().restarts === 1 && handle.status().state === 'running', 'the restore');
  const after = await scrape(url);
  t.same(values(after.samples, 'eddy_restarts_total'), [1], 'one restart');
  const recovered = values(after.samples, 'eddy_last_recovery_timestamp_seconds')[0]! * 1000;
  t.ok(recovered >= killedAt - 1000 && recovered <= Date.now(), 'the time of the last recovery is the restart');
  t.notMatch(after.text, /_total_total/, 'still no _total_total');
});

void t.test('a router whose destinations have no credits left counts the time it is blocked', async (t) => {
  const handle = run(t, counterJob, { workers: 2, adminPort: 0, channelCapacity: 16, batchSize: 4, inputs: { events: { records: events(300_000) } } });
  const url = (await handle.adminUrl())!;
  let blocked = 0;
  for (let i = 0; i < 100 && blocked === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    blocked = total((await scrape(url)).samples, 'eddy_router_blocked_seconds_total', { reason: 'credits' });
  }
  t.ok(blocked > 0, `blocked on credits for ${blocked} s`);
});

void t.test('an admin endpoint with a token refuses requests without it', async (t) => {
  const token = 'a-test-token-0123456789';
  const handle = run(t, counterJob, { workers: 1, adminPort: 0, adminToken: token, inputs: { events: { records: events(100_000), ratePerSec: 1000 } } });
  const url = (await handle.adminUrl())!;
  for (const [method, path] of [['GET', '/status'], ['GET', '/metrics'], ['GET', '/'], ['POST', '/stop']] as const) {
    const refused = await fetch(`${url}${path}`, { method });
    t.equal(refused.status, 401, `${method} ${path} without the token: 401`);
    t.equal(((await refused.json()) as { code: string }).code, 'EDDY_ADMIN_UNAUTHORIZED', 'with its code');
  }
  const wrong = await fetch(`${url}/status`, { headers: { authorization: 'Bearer a-test-token-0123456788' } });
  t.equal(wrong.status, 401, 'a wrong token: 401');
  const ok = await fetch(`${url}/status`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(ok.status, 200, 'the token as a bearer header: 200');
  const page = await fetch(`${url}/?token=${token}`);
  t.equal(page.status, 200, 'the console with ?token=: 200');
  t.equal(handle.status().state === 'ended', false, 'the refused POST /stop did not stop the job');
});

void t.test('an admin endpoint on a wider interface than loopback needs a token', async (t) => {
  t.throws(() => run(t, counterJob, { adminPort: 0, adminHost: '0.0.0.0', inputs: { events: { records: [] } } }), { code: 'EDDY_INVALID_OPTION', message: /options\.adminHost is 0\.0\.0\.0, which is not loopback, and there is no admin token/ });
  t.throws(() => run(t, counterJob, { adminPort: 0, adminToken: 'short', inputs: { events: { records: [] } } }), { code: 'EDDY_INVALID_OPTION', message: /options\.adminToken is shorter than 16 characters/ });
});

void t.test('GET /state/<namespace>/<name>/<id> reads one instance on its worker: committed state, decoded, with its activity', async (t) => {
  const handle = run(t, counterJob, { workers: 2, adminPort: 0, inputs: { events: { records: events(100_000), ratePerSec: 2000 } } });
  const url = (await handle.adminUrl())!;
  await waitFor(() => handle.output('counts').length > 500, 'output');
  const outputMax = (key: string): number => Math.max(0, ...handle.output<{ key: string; count: number }>('counts').filter((c) => c.key === key).map((c) => c.count));
  for (const key of ['k5', 'k42']) {
    const seen = outputMax(key);
    const response = await fetch(`${url}/state/e2e-counter/count/${key}`);
    t.equal(response.status, 200, `${key}: 200`);
    const body = (await response.json()) as { type: string; id: string; worker: number; state: { count?: number }; mailboxDepth: number; running: boolean; heldByTransaction?: string };
    t.same([body.type, body.id], ['e2e-counter/count', key], 'the address');
    // The sink receives a count after its write is committed: the state is at least the latest output.
    t.ok(Number.isInteger(body.state.count) && body.state.count! >= seen && seen > 0, `${key}: state count ${body.state.count} >= latest output ${seen}`);
    t.ok(body.mailboxDepth >= 0 && typeof body.running === 'boolean' && body.heldByTransaction === undefined, 'its activity');
    t.equal((await handle.state('e2e-counter/count', key)).worker, body.worker, 'handle.state() asks the same owning worker');
  }
  const fresh = (await (await fetch(`${url}/state/e2e-counter/count/never-seen`)).json()) as { state: object };
  t.same(fresh.state, {}, 'an instance without state: no values');
  const unknown = await fetch(`${url}/state/no/such-type/x`);
  t.equal(unknown.status, 404, 'an unknown type: 404');
  t.equal(((await unknown.json()) as { code: string }).code, 'EDDY_UNKNOWN_FUNCTION_TYPE', 'with its code');
  await handle.stop();
  await t.rejects(handle.state('e2e-counter/count', 'k5'), { code: 'EDDY_JOB_STOPPED' }, 'no lookups once the job has ended');
});

void t.test('a state lookup never sees half of an invocation: two values written across an await stay equal', async (t) => {
  const handle = run(t, pairJob, { workers: 2, adminPort: 0, inputs: { events: { records: Array.from({ length: 100_000 }, () => ({ key: 'only' })), ratePerSec: 2000 } } });
  const url = (await handle.adminUrl())!;
  await waitFor(() => handle.status().state === 'running', 'the job to run');
  let running = 0;
  let last = 0;
  for (let i = 0; i < 60; i++) {
    const { state, running: busy } = await handle.state('e2e-pair/pair', 'only');
    const { a, b } = state as { a?: number; b?: number };
    t.equal(a, b, `lookup ${i}: a ${a} = b ${b}`);
    t.ok((a ?? 0) >= last, 'and never goes back');
    last = a ?? 0;
    if (busy) running++;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.ok(last > 0 && running > 0, `lookups came while an invocation was running (${running} of 60), and the state moved (${last})`);
  const cli = await exec(process.execPath, [join(root, 'bin', 'eddy.js'), 'state', 'e2e-pair/pair', 'only', '--admin', url]);
  const printed = JSON.parse(cli.stdout) as { state: { a: number; b: number } };
  t.ok(printed.state.a === printed.state.b && printed.state.a >= last, `eddy state prints it: ${cli.stdout.replace(/\s+/g, ' ')}`);
});

void t.test('a state lookup shows map and list state as committed: the entries in key order, the list in order', async (t) => {
  const events: BasketEvent[] = [
    { basket: 'b1', n: 1, op: 'add', item: 'pear' },
    { basket: 'b1', n: 2, op: 'add', item: 'apple' },
    { basket: 'b1', n: 3, op: 'add', item: 'pear' },
    { basket: 'b1', n: 4, op: 'remove', item: 'apple' },
    { basket: 'b1', n: 5, op: 'add', item: 'kiwi' },
  ];
  // Other baskets, slowly, so that the job still runs while b1 is looked up.
  const filler: BasketEvent[] = Array.from({ length: 3000 }, (_, n) => ({ basket: `f${n % 7}`, n, op: 'add', item: `i${n % 13}` }));
  const handle = run(t, collectionsJob, { workers: 2, inputs: { events: { records: [...events, ...filler], ratePerSec: 300 } } });
  await waitFor(() => handle.output<BasketAnswer>('answers').filter((answer) => answer.basket === 'b1').length === events.length, 'b1 to be answered', 60_000);
  const { state } = await handle.state('e2e-collections/basket', 'b1');
  t.same(state, { items: [['kiwi', 1], ['pear', 2]], log: [1, 2, 3, 4, 5] }, 'the map as [key, value] entries in key order, the list in order');
  const empty = await handle.state('e2e-collections/basket', 'nobody');
  t.same(empty.state, {}, 'an instance with no state shows none');
  await handle.stop();
});

void t.test('state lookups of map and list state while a worker is killed: each settles (the state, or EDDY_JOB_STOPPED to retry), and after the restore they show the committed state again', async (t) => {
  const events: BasketEvent[] = [
    { basket: 'b1', n: 1, op: 'add', item: 'pear' },
    { basket: 'b1', n: 2, op: 'add', item: 'apple' },
    { basket: 'b1', n: 3, op: 'add', item: 'pear' },
  ];
  const filler: BasketEvent[] = Array.from({ length: 6000 }, (_, n) => ({ basket: `f${n % 7}`, n, op: 'add', item: `i${n % 13}` }));
  const handle = run(t, collectionsJob, {
    workers: 2,
    checkpointDir: tempDir(t, 'state-lookup-kill'),
    checkpointIntervalMs: 100,
    inputs: { events: { records: [...events, ...filler], ratePerSec: 400 } },
  });
  const want = { items: [['pear', 2], ['apple', 1]].sort(), log: [1, 2, 3] };
  await waitFor(() => handle.output<BasketAnswer>('answers').filter((answer) => answer.basket === 'b1').length === events.length, 'b1 to be answered', 60_000);
  await waitFor(() => handle.status().checkpoints.length >= 2, 'a checkpoint after b1', 60_000);
  let answered = 0;
  let refused = 0;
  const lookups: Array<Promise<void>> = [];
  const lookUp = (): void => {
    lookups.push(
      handle.state('e2e-collections/basket', 'b1').then(
        ({ state }) => {
          answered++;
          t.same(state, want, 'an answer is the committed state, whole');
        },
        (error: { code?: string }) => {
          refused++;
          t.equal(error.code, 'EDDY_JOB_STOPPED', 'a refusal says to try again');
        },
      ),
    );
  };
  for (let i = 0; i < 20; i++) lookUp();
  await handle.killWorker(0);
  for (let i = 0; i < 20; i++) {
    lookUp();
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const settled = await Promise.race([Promise.all(lookups).then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 30_000))]);
  t.ok(settled, `every lookup settled (${answered} answered, ${refused} refused while the workers restored)`);
  await waitFor(() => handle.status().state === 'running' && handle.status().restarts === 1, 'the restore', 60_000);
  t.same((await handle.state('e2e-collections/basket', 'b1')).state, want, 'after the restore the lookup shows the restored state');
  await handle.stop();
});

void t.test('listing instances by id prefix: from every worker\'s key groups, in id order, cut at the limit, each as a lookup shows it', async (t) => {
  const handle = run(t, counterJob, { workers: 2, adminPort: 0, inputs: { events: { records: events(100_000), ratePerSec: 4000 } } });
  const url = (await handle.adminUrl())!;
  await waitFor(() => new Set(handle.output<{ key: string }>('counts').map((c) => c.key)).size === 100, 'every key counted once');
  const all = await handle.states('e2e-counter/count', { limit: 10_000 });
  t.same(all.instances.map((i) => i.id), Array.from({ length: 100 }, (_, i) => `k${i}`).sort(), 'every instance with state, in id order');
  t.equal(all.truncated, false);
  t.same(new Set(all.instances.map((i) => i.worker)), new Set([0, 1]), 'from both workers');
  t.ok(all.instances.every((i) => typeof (i.state as { count?: number }).count === 'number' && (i.state as { count: number }).count > 0), 'each with its decoded state');

  const response = await fetch(`${url}/state/e2e-counter/count?prefix=k4&limit=5`);
  t.equal(response.status, 200);
  const listed = (await response.json()) as { instances: Array<{ id: string }>; truncated: boolean; prefix: string };
  t.same(listed.instances.map((i) => i.id), ['k4', 'k40', 'k41', 'k42', 'k43'], 'the first 5 ids starting with k4');
  t.equal(listed.truncated, true, 'and there were more');
  t.equal(listed.prefix, 'k4');
  const none = await handle.states('e2e-counter/count', { prefix: 'zz' });
  t.same([none.instances, none.truncated], [[], false], 'a prefix nothing matches: none');

  const bad = await fetch(`${url}/state/e2e-counter/count?limit=0`);
  t.equal(bad.status, 400, 'a limit out of range: 400');
  t.equal(((await bad.json()) as { code: string }).code, 'EDDY_INVALID_OPTION');
  t.equal((await fetch(`${url}/state/no/such-type`)).status, 404, 'an unknown type: 404');

  const cli = await exec(process.execPath, [join(root, 'bin', 'eddy.js'), 'state', 'e2e-counter/count', '--prefix', 'k9', '--limit', '3', '--admin', url]);
  t.same((JSON.parse(cli.stdout) as { instances: Array<{ id: string }> }).instances.map((i) => i.id), ['k9', 'k90', 'k91'], 'eddy state <type> --prefix --limit prints the same listing');
  await handle.stop();
  await t.rejects(handle.states('e2e-counter/count'), { code: 'EDDY_JOB_STOPPED' }, 'no listings once the job has ended');
});

void t.test('a listing while a worker is killed settles: the instances, or EDDY_JOB_STOPPED to retry, and lists them all again after the restore', async (t) => {
  const handle = run(t, counterJob, { workers: 2, checkpointDir: tempDir(t, 'state-list-kill'), checkpointIntervalMs: 100, inputs: { events: { records: events(60_000), ratePerSec: 3000 } } });
  await waitFor(() => new Set(handle.output<{ key: string }>('counts').map((c) => c.key)).size === 100, 'every key counted once');
  let settled = 0;
  let stopped = 0;
  const listings = Array.from({ length: 6 }, async (_, i) => {
    await new Promise((resolve) => setTimeout(resolve, i * 40));
    try {
      const list = await handle.states('e2e-counter/count', { limit: 200 });
      t.equal(list.instances.length, 100, `listing ${i}: all 100 instances, never the part one worker had`);
      settled++;
    } catch (error) {
      t.equal((error as { code: string }).code, 'EDDY_JOB_STOPPED', `listing ${i}: retryable`);
      stopped++;
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 60));
  await handle.killWorker(1);
  await Promise.all(listings);
  t.equal(settled + stopped, 6, `every listing settled (${settled} answered, ${stopped} to retry)`);
  await waitFor(() => handle.status().state === 'running', 'the restore', 30_000);
  let after: Awaited<ReturnType<typeof handle.states>> | undefined;
  for (let i = 0; i < 50 && after === undefined; i++) {
    after = await handle.states('e2e-counter/count', { limit: 200 }).catch(() => undefined);
    if (after === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.equal(after?.instances.length, 100, 'after the restore every instance is listed again');
  await handle.stop();
});

void t.test('a lookup shows the delayed messages an instance has pending, and a participant held by a transaction with its staged writes apart from the committed state', async (t) => {
  const { default: heldJob } = await import('../../fixtures/held-lock-job.js');
  const records = [
    { box: 'a', op: { add: 10 } },
    { box: 'a', op: { remind: 60_000 } },
    { move: 'm1', from: 'a', to: 'b', amount: 3, slowMs: 2_500 },
    ...Array.from({ length: 60 }, () => ({ box: 'filler', op: { add: 1 } })),
  ];
  const handle = run(t, heldJob, { workers: 2, inputs: { events: { records, ratePerSec: 10 } } });
  const before = Date.now();
  let pending: Awaited<ReturnType<typeof handle.state>> | undefined;
  for (let i = 0; i < 100 && pending === undefined; i++) {
    const seen = await handle.state('e2e-held/box', 'a').catch(() => undefined);
    if (seen !== undefined && seen.pendingDelayed.length > 0) pending = seen;
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.ok(pending !== undefined, 'the reminder shows as pending');
  const [reminder] = pending!.pendingDelayed;
  t.same({ token: reminder!.token, to: reminder!.to, message: reminder!.message }, { token: 'later', to: { type: 'e2e-held/box', id: 'a' }, message: { add: 1 } }, 'with its token, target and decoded message');
  t.ok(reminder!.fireAt >= before + 55_000 && reminder!.fireAt <= Date.now() + 60_000, 'and when it fires');

  let held: Awaited<ReturnType<typeof handle.state>> | undefined;
  for (let i = 0; i < 100 && held === undefined; i++) {
    const seen = await handle.state('e2e-held/box', 'a');
    if (seen.transaction !== undefined) held = seen;
    else await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.ok(held !== undefined, 'the debited box is seen held by the move');
  t.equal(held!.heldByTransaction, 'locked');
  t.equal(held!.transaction!.ids.length, 1, 'by one transaction, named');
  t.match(held!.transaction!.ids[0], /\S/);
  t.same(held!.state, { n: 10 }, 'the committed state, without the transaction\'s write');
  t.same(held!.transaction!.staged, { n: 7 }, 'the staged write shown apart, as it will be after COMMIT');
  await waitFor(() => handle.output('moves').length === 1, 'the move to commit', 10_000);
  const after = await handle.state('e2e-held/box', 'a');
  t.same([after.state, after.transaction], [{ n: 7 }, undefined], 'after COMMIT: the write committed, no transaction');
  await handle.stop();
});

void t.test('GET /locks shows the longest current lock waits: waiting transaction -> holding transaction, at which instance, for how long', async (t) => {
  const { default: heldJob } = await import('../../fixtures/held-lock-job.js');
  // m1 locks box a and then waits 2.5 s for its slow leg on b; m2 and m3 queue behind m1 at a.
  const records = [
    { move: 'm1', from: 'a', to: 'b', amount: 1, slowMs: 2_500 },
    { move: 'm2', from: 'a', to: 'c', amount: 1, slowMs: 0 },
    { move: 'm3', from: 'a', to: 'd', amount: 1, slowMs: 0 },
    ...Array.from({ length: 60 }, () => ({ box: 'filler', op: { add: 1 } })),
  ];
  const handle = run(t, heldJob, { workers: 2, adminPort: 0, inputs: { events: { records, ratePerSec: 10 } } });
  const url = (await handle.adminUrl())!;
  type Locks = { waits: Array<{ waiting: { transaction: string; coordinator: string }; holding: { transaction: string; coordinator: string }; instance: string; waitedMs: number }>; locksHeld: number };
  let locks: Locks | undefined;
  for (let i = 0; i < 100; i++) {
    const seen = (await (await fetch(`${url}/locks`)).json()) as Locks;
    if (seen.waits.length >= 2 && seen.waits.every((w) => w.waitedMs >= 300)) {
      locks = seen;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.ok(locks !== undefined, 'two transactions seen waiting for the lock on box a');
  const edges = locks!.waits.map((w) => `${w.waiting.coordinator} -> ${w.holding.coordinator} at ${w.instance}`);
  t.ok(edges.includes('e2e-held/move:m2 -> e2e-held/move:m1 at e2e-held/box:a'), `m2 waits behind m1 at a (${edges.join('; ')})`);
  t.ok(edges.some((edge) => edge.startsWith('e2e-held/move:m3 -> ') && edge.endsWith(' at e2e-held/box:a')), 'm3 waits at a too (behind m1, or behind m2 queued ahead of it)');
  t.ok(locks!.waits.every((w, i, all) => i === 0 || all[i - 1]!.waitedMs >= w.waitedMs), 'longest first');
  t.ok(locks!.locksHeld >= 1, 'with the lock held');
  t.same((await handle.metrics()).lockWaits.length >= 2, true, 'handle.metrics().lockWaits has them too');
  await waitFor(() => handle.output('moves').length === 3, 'the three moves', 20_000);
  const after = (await (await fetch(`${url}/locks`)).json()) as Locks;
  t.same(after.waits, [], 'once they committed, no waits are left');
  await handle.stop();
});
