import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { engine, type DeadLetter, type EddyError, type Job, type SubmitOptions } from '../../index.js';
import badInputJob, { type BadKind, type BadRecord } from '../fixtures/bad-input-job.js';
import counterJob from '../fixtures/counter-job.js';
import fileGreeterJob, { type FileGreeting } from '../fixtures/file-greeter-job.js';
import { groupBy, run, tempDir } from '../fixtures/harness.js';

/** The dead-letter code each bad kind must produce. */
const expectedCode: Partial<Record<BadKind, string>> = {
  'unknown-type': 'EDDY_UNKNOWN_FUNCTION_TYPE',
  'router-throws': 'EDDY_ROUTER_FAILED',
  'no-address': 'EDDY_ROUTER_NO_ADDRESS',
  'no-routes': 'EDDY_ROUTER_NO_ADDRESS',
  'empty-id': 'EDDY_INVALID_ADDRESS',
  'proto-bad': 'EDDY_UNDECODABLE_PAYLOAD',
  poison: 'EDDY_UNDECODABLE_PAYLOAD',
  'send-unknown': 'EDDY_UNKNOWN_FUNCTION_TYPE',
  'send-proto-bad': 'EDDY_UNDECODABLE_PAYLOAD',
  'undeclared-state': 'EDDY_UNDECLARED_STATE',
  'unknown-egress': 'EDDY_UNKNOWN_EGRESS',
};
/** Bad kinds the router already rejects: their dead letter names the ingress and the record. */
const atRouter = new Set<BadKind>(['unknown-type', 'router-throws', 'no-address', 'no-routes', 'empty-id', 'proto-bad']);

void t.test('bad records and messages go to dead-letters with their code, and every good record is still processed', async (t) => {
  const kinds = Object.keys(expectedCode) as BadKind[];
  const records: BadRecord[] = [];
  for (let i = 0; i < 400; i++) {
    const kind: BadKind = i % 3 === 0 ? kinds[(i / 3) % kinds.length]! : i % 10 === 1 ? 'two-routes' : i % 10 === 2 ? 'proto-good' : 'good';
    records.push({ kind, id: `id${i % 13}`, n: i });
  }
  const handle = run(t, badInputJob, { workers: 2, inputs: { in: records } });
  const summary = await handle.done;
  t.equal(summary.endedBy, 'end-of-input');
  const letters = handle.output<DeadLetter>('dead-letters');
  const ok = handle.output<{ id: string; n?: number; count?: number; cents?: string }>('ok');

  const bad = records.filter((r) => expectedCode[r.kind] !== undefined);
  t.equal(letters.length, bad.length, 'one dead letter per bad record');
  for (const kind of kinds) {
    const expected = records.filter((r) => r.kind === kind);
    const got = letters.filter((letter) => {
      if (atRouter.has(kind)) return (letter.record as BadRecord | undefined)?.kind === kind;
      const payload = letter.payloadBase64 === undefined ? undefined : Buffer.from(letter.payloadBase64, 'base64').toString('utf8');
      return kind === 'poison' ? letter.target?.type === 'e2e-bad/strict' : payload !== undefined && payload.includes(`"kind":"${kind}"`);
    });
    t.equal(got.length, expected.length, `${kind}: ${expected.length} dead letters`);
    t.ok(got.every((letter) => letter.code === expectedCode[kind]), `${kind}: code ${expectedCode[kind]}`);
    t.ok(got.every((letter) => letter.reason.length > 20), `${kind}: with a reason`);
    if (atRouter.has(kind)) {
      t.ok(got.every((letter) => letter.ingress === 'in'), `${kind}: names the ingress`);
      t.same(got.map((letter) => (letter.record as BadRecord).n).sort((a, b) => a - b), expected.map((r) => r.n), `${kind}: carries the records`);
    } else {
      t.ok(got.every((letter) => letter.target !== undefined && letter.payloadBase64 !== undefined), `${kind}: names the target, carries the message`);
    }
  }
  t.match(letters.find((l) => l.code === 'EDDY_UNDECLARED_STATE')?.reason, /balance.*declared: count/, 'undeclared state: names the state and what is declared');
  t.match(letters.find((l) => l.code === 'EDDY_UNKNOWN_FUNCTION_TYPE')?.reason, /e2e-bad\/missing/, 'unknown type: names it');

  // Nothing else lost: the good function counted exactly its good messages, per instance.
  const goodOnes = records.filter((r) => r.kind === 'good' || r.kind === 'two-routes');
  const perId = groupBy(ok.filter((o) => o.count !== undefined), (o) => o.id);
  const expectedIds = groupBy([...goodOnes, ...goodOnes.filter((r) => r.kind === 'two-routes').map((r) => ({ ...r, id: `${r.id}-copy` }))], (r) => r.id);
  t.equal(perId.size, expectedIds.size, 'every good instance egressed');
  for (const [id, list] of expectedIds) {
    t.same(perId.get(id)?.map((o) => o.count), list.map((_, i) => i + 1), `${id}: counted its ${list.length} good messages and nothing else`);
  }
  const protoGood = records.filter((r) => r.kind === 'proto-good');
  t.same(ok.filter((o) => o.cents !== undefined).map((o) => Number(o.cents)).sort((a, b) => a - b), protoGood.map((r) => r.n), 'protobuf messages that encode are delivered, int64 as string');
  t.equal(summary.totals.deadLetters, bad.length);
});

void t.test('an NDJSON line that is not JSON is dead-lettered with its line number, the other lines are read', async (t) => {
  const dir = tempDir(t, 'ndjson');
  const file = join(dir, 'names.ndjson');
  const lines = ['{"name":"ann","line":1}', 'not json at all', '{"name":"bob","line":3}', '{"name":"ann", "line":', '', '{"name":"cyd","line":6}', '{"name":"ann","line":7}'];
  writeFileSync(file, `${lines.join('\n')}\n`);
  const handle = run(t, fileGreeterJob, { workers: 2, inputs: { names: file } });
  await handle.done;
  const greetings = handle.output<FileGreeting>('greetings');
  t.same(greetings.map((g) => g.line).sort(), [1, 3, 6, 7], 'every JSON line greeted');
  t.same(greetings.filter((g) => g.name === 'ann').map((g) => g.seen), [1, 2]);
  const letters = handle.output<DeadLetter>('dead-letters');
  t.equal(letters.length, 2, 'one dead letter per bad line; the empty line is skipped');
  t.ok(letters.every((l) => l.code === 'EDDY_UNDECODABLE_PAYLOAD' && l.ingress === 'names'), 'EDDY_UNDECODABLE_PAYLOAD from ingress names');
  t.same(letters.map((l) => /line (\d+)/.exec(l.reason)?.[1]).sort(), ['2', '4'], 'the reasons name the lines');
  t.same(letters.map((l) => l.record).sort(), ['not json at all', '{"name":"ann", "line":'], 'and carry the raw text');
});

void t.test('invalid submit options throw EDDY_INVALID_OPTION synchronously, naming the option', async (t) => {
  const cases: Array<[SubmitOptions, RegExp]> = [
    [{ workers: 0 }, /options\.workers/],
    [{ workers: 1.5 }, /options\.workers/],
    [{ workers: 129 }, /options\.workers/],
    [{ workers: 4, maxParallelism: 2 }, /options\.workers/],
    [{ maxParallelism: 0 }, /options\.maxParallelism/],
    [{ channelCapacity: 8 }, /options\.channelCapacity/],
    [{ batchSize: 0 }, /options\.batchSize/],
    [{ feedbackHighWaterMark: -1 }, /options\.feedbackHighWaterMark/],
    [{ stopTimeoutMs: -5 }, /options\.stopTimeoutMs/],
    [{ stateBackend: 'rocksdb' as 'leveldb' }, /options\.stateBackend/],
    [{ stateDir: '' }, /options\.stateDir/],
    [{ inputs: null as unknown as Record<string, unknown> }, /options\.inputs/],
    [{ log: 'loud' as unknown as () => void }, /options\.log/],
    [{ wrokers: 2 } as SubmitOptions, /options\.wrokers is not an option/],
  ];
  for (const [options, message] of cases) {
    try {
      const handle = engine.submit(counterJob, options);
      await handle.stop().catch(() => {});
      t.fail(`${JSON.stringify(options)} was accepted`);
    } catch (error) {
      t.equal((error as EddyError).code, 'EDDY_INVALID_OPTION', `${JSON.stringify(options)}: EDDY_INVALID_OPTION`);
      t.match((error as Error).message, message, `${JSON.stringify(options)}: names the option`);
    }
  }
  t.throws(() => engine.submit({ name: 'not-a-job' } as unknown as Job), { code: 'EDDY_INVALID_JOB' }, 'a job not made with defineJob');
});

void t.test('inputs for an ingress the job does not have are refused by submit with EDDY_UNKNOWN_INGRESS', async (t) => {
  t.throws(() => engine.submit(counterJob, { workers: 2, log: () => {}, inputs: { events: [{ key: 'a' }], evnets: [{ key: 'b' }] } }), {
    code: 'EDDY_UNKNOWN_INGRESS',
    message: /evnets.*its ingresses: events/,
  });
});

void t.test('a memory input that is not a list of records is refused with EDDY_INVALID_OPTION', async (t) => {
  let code: string | undefined;
  try {
    const handle = engine.submit(counterJob, { workers: 2, log: () => {}, inputs: { events: 'k1,k2' } });
    await handle.done.catch((error: unknown) => {
      code = (error as EddyError).code;
    });
  } catch (error) {
    code = (error as EddyError).code;
  }
  t.equal(code, 'EDDY_INVALID_OPTION');
});
