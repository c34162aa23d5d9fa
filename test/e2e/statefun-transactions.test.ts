/**
 * 2PC transfers and sagas through `eddy serve` as a user runs it (a child process, worker threads,
 * HTTP keep-alive), driven the way StateFun drives an endpoint (test/engine/statefun/statefun-sim.ts),
 * with replies lost and failovers back to a checkpoint.
 */
import { Agent, request as httpRequest } from 'node:http';
import t from 'tap';
import { startServe } from '../fixtures/statefun-harness.js';
import { sfAddress, typedValue, valueBytes } from '../../engine/statefun/protocol.js';
import { EDDY_JSON_TYPENAME } from '../../engine/statefun/types.js';
import { INITIAL_BALANCE, type Outcome } from '../fixtures/transfer-job.js';
import { StatefunSimulator } from '../engine/statefun/statefun-sim.js';

const ACCOUNTS = ['a', 'b', 'c', 'd'];
const json = (value: unknown): ReturnType<typeof typedValue> => typedValue(EDDY_JSON_TYPENAME, new Uint8Array(Buffer.from(JSON.stringify(value))));

function post(url: string, body: Uint8Array, agent: Agent): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.byteLength } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(new Uint8Array(Buffer.concat(chunks))) : reject(new Error(`status ${res.statusCode}: ${Buffer.concat(chunks).toString()}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

void t.test('eddy serve runs contended 2PC transfers and sagas: balances conserved, every request answered once, no lock left', async (t) => {
  const serve = await startServe(t, ['test/fixtures/transfer-job.ts', '--port', '0', '--workers', '2']);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  const sim = new StatefunSimulator((request) => post(serve.url, request, agent), { seed: 11, retryRate: 0.1, maxBatch: 4, jitterMs: 20 });
  const expected: string[] = [];
  for (let i = 0; i < 30; i++) {
    const from = ACCOUNTS[i % ACCOUNTS.length]!;
    const to = ACCOUNTS[(i + 1 + (i % 3)) % ACCOUNTS.length]!;
    const txn = `t${i}`;
    expected.push(txn);
    if (i % 3 === 2) sim.send(sfAddress('tx/transfer-saga', `s${i % 4}`), json({ txn, from, to, amount: 1 + (i % 40) }));
    else sim.send(sfAddress('tx/transfer', `c${i % 8}`), json({ txn, from, to, amount: 1 + (i % 40) }));
  }
  let failovers = 2;
  await sim.run(100_000, (step) => {
    if (step % 40 === 0) sim.checkpoint();
    else if (failovers > 0 && step % 130 === 0) {
      failovers--;
      sim.restore();
    }
  });
  t.equal(sim.restores, 2, 'two failovers');
  t.equal(sim.differentAnswers, 0, 'requests sent twice got the same answer');
  const decode = <T>(value: ReturnType<typeof typedValue>): T => JSON.parse(Buffer.from(valueBytes(value)).toString('utf8')) as T;
  const finals = sim.egress
    .filter((e) => e.egressType === 'outcomes')
    .map((e) => decode<Outcome>(e.argument!))
    .filter((o) => o.status !== 'retryable');
  t.same(finals.map((o) => o.txn).toSorted(), expected.toSorted(), 'every request answered exactly once');
  const total = ACCOUNTS.map((id) => {
    const value = sim.stateOf(sfAddress('tx/account', id), 'balance');
    return value === undefined ? INITIAL_BALANCE : decode<number>(value);
  }).reduce((a, b) => a + b, 0);
  t.equal(total, ACCOUNTS.length * INITIAL_BALANCE, 'balances conserved');
  for (const id of ACCOUNTS) t.equal(sim.stateOf(sfAddress('tx/account', id), 'eddy_txn'), undefined, `${id}: no lock left`);
  serve.child.kill('SIGTERM');
  t.equal(await serve.exited, 0, 'eddy serve stopped cleanly');
});
