import t from 'tap';
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { serveStatefun } from '../../../engine/statefun/server.js';
import { encodeToFunction, sfAddress, typedValue } from '../../../engine/statefun/protocol.js';
import job from '../../fixtures/statefun-job.js';

const wireDir = fileURLToPath(new URL('../../fixtures/statefun-wire/', import.meta.url));
const sample = (name: string): Buffer => readFileSync(`${wireDir}${name}.bin`);

interface Reply {
  status: number;
  contentType: string | undefined;
  body: Buffer;
  /** The local port of the connection it came over (the same port: the same kept-alive connection). */
  localPort: number | undefined;
}

/** POSTs as StateFun does (its headers), over `agent`. */
function post(url: string, body: Uint8Array, agent: Agent, method = 'POST'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method, agent, headers: { 'Content-Type': 'application/octet-stream', Accept: 'application/octet-stream', 'User-Agent': 'statefun' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, contentType: res.headers['content-type'], body: Buffer.concat(chunks), localPort: req.socket?.localPort }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

void t.test('POST /statefun answers the captured requests with the captured responses, over one kept-alive connection', async (t) => {
  const server = await serveStatefun(job, { port: 0, onDeadLetter: () => {} });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await server.close();
  });
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/statefun$/);
  const ports = new Set<number | undefined>();
  for (const [request, response] of [
    ['01-request', '01-response'],
    ['03-request', '03-response'],
    ['203-batched-request', '203-batched-response'],
    ['203-batched-request', '203-batched-response'],
  ] as const) {
    const reply = await post(server.url, sample(request), agent);
    t.equal(reply.status, 200, request);
    t.equal(reply.contentType, 'application/octet-stream', 'the content type StateFun requires');
    t.same(reply.body, sample(response), `${request} -> ${response}, byte for byte`);
    ports.add(reply.localPort);
  }
  t.equal(ports.size, 1, 'every request went over the same connection');
  t.same(server.metrics, { requests: 4, handshakes: 1, invocations: 5, deadLetters: 0, failedRequests: 0 });
});

void t.test('what cannot be served is answered with an error status StateFun retries or reports', async (t) => {
  const errors: unknown[] = [];
  const server = await serveStatefun(job, { port: 0, maxRequestBytes: 1000, onError: (e) => errors.push(e) });
  const agent = new Agent({ keepAlive: true });
  t.teardown(async () => {
    agent.destroy();
    await server.close();
  });
  const unknown = encodeToFunction({ invocation: { target: sfAddress('example/nobody', 'x'), invocations: [{ argument: typedValue('io.statefun.types/string', new Uint8Array(0)) }] } });
  const reply = await post(server.url, unknown, agent);
  t.equal(reply.status, 500);
  t.match(reply.body.toString(), /^EDDY_UNKNOWN_FUNCTION_TYPE: StateFun called function type example\/nobody/);
  t.equal(errors.length, 1);
  t.equal((await post(server.url.replace('/statefun', '/other'), sample('01-request'), agent)).status, 404);
  t.equal((await post(server.url, new Uint8Array(0), agent, 'PUT')).status, 405);
  t.equal((await post(server.url, new Uint8Array(2000), agent)).status, 413);
  t.equal(server.metrics.failedRequests, 4);
  t.equal(server.metrics.requests, 1, 'only the request that reached the handler counts as one');
});

void t.test('options are checked with the fix named', async (t) => {
  await t.rejects(serveStatefun(job, { port: 70000 }), { code: 'EDDY_INVALID_OPTION', message: /options\.port/ });
  await t.rejects(serveStatefun(job, { port: 0, path: 'statefun' }), { code: 'EDDY_INVALID_OPTION', message: /options\.path/ });
  const first = await serveStatefun(job, { port: 0 });
  t.teardown(() => first.close());
  const port = Number(new URL(first.url).port);
  await t.rejects(serveStatefun(job, { port }), { code: 'EDDY_INVALID_OPTION', message: /cannot listen/ });
});

void t.test('handlers run on worker threads, or on the HTTP thread with workers: 0, with the same answers', async (t) => {
  const threaded = await serveStatefun(job, { port: 0, workers: 2, onDeadLetter: () => {} });
  const inline = await serveStatefun(job, { port: 0, workers: 0, onDeadLetter: () => {} });
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(async () => {
    agent.destroy();
    await Promise.all([threaded.close(), inline.close()]);
  });
  // Many addresses at once (StateFun sends one request per address at a time, any number of addresses).
  const requests = Array.from({ length: 40 }, (_, i) =>
    encodeToFunction({
      invocation: {
        target: sfAddress('test/counter', `c${i}`),
        state: [{ stateName: 'count' }, { stateName: 'touched' }],
        invocations: [{ argument: typedValue('test/CounterOp', new TextEncoder().encode(JSON.stringify({ addLater: i }))) }],
      },
    }),
  );
  const fromThreads = await Promise.all(requests.map((body) => post(threaded.url, body, agent)));
  const fromInline = await Promise.all(requests.map((body) => post(inline.url, body, agent)));
  t.ok(fromThreads.every((reply) => reply.status === 200));
  t.same(fromThreads.map((reply) => reply.body), fromInline.map((reply) => reply.body), 'byte for byte the same answers');
  t.equal(threaded.metrics.invocations, 40);
  await t.rejects(serveStatefun(job, { port: 0, workers: -1 }), { code: 'EDDY_INVALID_OPTION', message: /workers.*from 0/ });
});
