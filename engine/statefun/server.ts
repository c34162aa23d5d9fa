import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { describeError, EddyError, invalidOption } from '../errors.js';
import type { Job } from '../job.js';
import { type ServedBatch, type ServedDeadLetter, StatefunHandler } from './handler.js';
import type { ServeOutcome, ServeTask } from './serve-worker.js';

export interface StatefunServerOptions {
  /** TCP port; 0 picks a free one (see `url`). Required. */
  port: number;
  /** Interface to listen on. Default `127.0.0.1`; `0.0.0.0` to be reachable from a StateFun cluster elsewhere. */
  host?: string;
  /** The path StateFun posts to (module.yaml `urlPathTemplate`). Default `/statefun`. */
  path?: string;
  /** Largest request body accepted, in bytes. Default 32 MiB, StateFun's own `payload_max_bytes` default. */
  maxRequestBytes?: number;
  /** Called for each message the job could not take. Default: one JSON line on stderr. */
  onDeadLetter?: (letter: ServedDeadLetter) => void;
  /** Called for each request that failed as a whole (answered 500, which StateFun retries). Default: a line on stderr. */
  onError?: (error: unknown) => void;
  /**
   * Worker threads that run the handlers, each with the job module loaded; 0 runs them on the thread
   * that serves HTTP. Default: one per core (`os.availableParallelism()`).
   */
  workers?: number;
}

/** What a running server has done, for logs and tests. */
export interface StatefunServerMetrics {
  requests: number;
  /** Requests answered with incomplete_invocation_context (the missing-state handshake). */
  handshakes: number;
  invocations: number;
  deadLetters: number;
  /** Requests answered 4xx/5xx. */
  failedRequests: number;
}

export interface StatefunServer {
  /** e.g. `http://127.0.0.1:8000/statefun`: what module.yaml's endpoint must call. */
  readonly url: string;
  readonly metrics: StatefunServerMetrics;
  /** Stops accepting connections, answers what is in flight, then resolves. */
  close(): Promise<void>;
}

const DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024;

/**
 * Serves the job's functions as a StateFun remote-function endpoint: `POST <path>` with a ToFunction
 * body, answered `200 application/octet-stream` with a FromFunction (StateFun's Netty transport
 * refuses any other content type). HTTP/1.1 keep-alive: StateFun keeps a pool of connections and
 * sends one request per address at a time over them.
 */
export async function serveStatefun(job: Job, options: StatefunServerOptions): Promise<StatefunServer> {
  validateServerOptions(options);
  const path = options.path ?? '/statefun';
  const maxBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const metrics: StatefunServerMetrics = { requests: 0, handshakes: 0, invocations: 0, deadLetters: 0, failedRequests: 0 };
  const onDeadLetter = options.onDeadLetter ?? ((letter) => process.stderr.write(`dead letter: ${JSON.stringify(letter)}\n`));
  const onError = options.onError ?? ((error) => process.stderr.write(`eddy serve: request failed: ${describeError(error)}\n`));
  const deadLetter = (letter: ServedDeadLetter): void => {
    metrics.deadLetters++;
    onDeadLetter(letter);
  };
  const workers = options.workers ?? availableParallelism();
  const pool =
    workers === 0
      ? undefined
      : new Piscina<ServeTask, ServeOutcome>({
          filename: fileURLToPath(new URL('../runtime/worker-bootstrap.mjs', import.meta.url)),
          minThreads: workers,
          maxThreads: workers,
          // A handler that awaits (an async handler) lets its thread take the next request meanwhile.
          concurrentTasksPerWorker: 16,
          idleTimeout: Infinity,
          workerData: { entry: '../statefun/serve-worker', jobModule: job.module },
        });
  const handler = pool === undefined ? new StatefunHandler(job, { onDeadLetter: deadLetter }) : undefined;
  /** Serves one request on a worker thread, or here. */
  const answer = async (request: Uint8Array): Promise<ServedBatch> => {
    if (handler !== undefined) return handler.serve(request);
    // Copied into a buffer of its own, which moves to the worker thread without another copy.
    const owned = new Uint8Array(request);
    const outcome = await pool!.run({ jobModule: job.module, request: owned }, { transferList: [owned.buffer] });
    if ('error' in outcome) throw new EddyError(outcome.error.code ?? 'EDDY_WORKER_FAILED', outcome.error.message);
    for (const letter of outcome.deadLetters) deadLetter(letter);
    return outcome;
  };

  const fail = (response: ServerResponse, status: number, message: string): void => {
    metrics.failedRequests++;
    response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${message}\n`);
  };

  const serve = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://x');
    if (url.pathname !== path) return fail(response, 404, `no endpoint at ${url.pathname}; StateFun posts to ${path}`);
    if (request.method !== 'POST') return fail(response, 405, `${request.method} ${path}: StateFun request-reply is POST`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > maxBytes) {
        response.setHeader('Connection', 'close');
        return fail(response, 413, `request larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
    metrics.requests++;
    let body: Uint8Array;
    try {
      const served = await answer(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      if (served.incomplete) metrics.handshakes++;
      metrics.invocations += served.invocations;
      body = served.response;
    } catch (error) {
      onError(error);
      // 500: StateFun retries with backoff until its call timeout, then fails the job (restores).
      return fail(response, 500, error instanceof EddyError ? `${error.code}: ${error.message}` : describeError(error));
    }
    response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.byteLength }).end(body);
  };

  const server: Server = createServer((request, response) => {
    serve(request, response).catch((error: unknown) => {
      onError(error);
      if (!response.headersSent) fail(response, 500, describeError(error));
      else response.destroy();
    });
  });
  // Idle connections stay open longer than StateFun's pool keeps them (its default is 1 minute idle).
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new EddyError('EDDY_INVALID_OPTION', `eddy serve cannot listen on ${options.host ?? '127.0.0.1'}:${options.port}: ${error.message}; pick another --port or --host`, { cause: error })),
    );
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}${path}`,
    metrics,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }).then(() => pool?.destroy()),
  };
}

function validateServerOptions(options: StatefunServerOptions): void {
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    throw invalidOption('port', `is ${String(options.port)}`, 'give a port number from 0 to 65535 (0: a free one)');
  }
  if (options.path !== undefined && (typeof options.path !== 'string' || !options.path.startsWith('/'))) {
    throw invalidOption('path', `is ${JSON.stringify(options.path)}`, 'give a path that starts with /, e.g. /statefun');
  }
  if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 0 && options.workers <= 256)) {
    throw invalidOption('workers', `is ${String(options.workers)}`, 'give a number of worker threads from 0 (handlers on the HTTP thread) to 256');
  }
  if (options.maxRequestBytes !== undefined && !(Number.isInteger(options.maxRequestBytes) && options.maxRequestBytes > 0)) {
    throw invalidOption('maxRequestBytes', `is ${String(options.maxRequestBytes)}`, 'give a positive number of bytes (default 32 MiB)');
  }
}
