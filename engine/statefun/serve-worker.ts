/**
 * A worker thread of `eddy serve`: answers ToFunction requests with the job's handler. Each thread
 * loads the job module once; requests carry everything else (StateFun sends an address's state with
 * each request and one request per address at a time), so any thread may answer any request.
 */
import { EddyError, describeError, type ErrorCode } from '../errors.js';
import { jobFromModule } from '../job.js';
import { type ServedDeadLetter, StatefunHandler } from './handler.js';

export interface ServeTask {
  jobModule: string;
  request: Uint8Array;
}

/** A served request, or why it could not be served (errors are values: an EddyError's code does not survive a thread boundary as an exception). */
export type ServeOutcome =
  | { response: Uint8Array; incomplete: boolean; invocations: number; deadLetters: ServedDeadLetter[] }
  | { error: { code: ErrorCode | undefined; message: string } };

let handler: Promise<StatefunHandler> | undefined;

export default async function serveRequest(task: ServeTask): Promise<ServeOutcome> {
  try {
    handler ??= import(task.jobModule).then((exports: Record<string, unknown>) => new StatefunHandler(jobFromModule(exports, task.jobModule)));
    const served = await (await handler).serve(task.request);
    return served;
  } catch (error) {
    return { error: error instanceof EddyError ? { code: error.code, message: error.message } : { code: undefined, message: describeError(error) } };
  }
}
