// Worker threads start here. User job modules are TypeScript: register the tsx loader in this thread
// first (loader hooks are per thread), then load the task: the built one next to this file in the
// installed package (dist/), the TypeScript source in a checkout. The task is the engine's worker
// (worker-task), or the one `workerData.entry` names (eddy serve's request handler).
import { existsSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
// Tells engine.submit it runs inside an Eddy worker, where a job module's top-level submit must refuse.
globalThis[Symbol.for('eddy.worker')] = true;
const entry = workerData?.entry ?? './worker-task';
const source = new URL(`${entry}.ts`, import.meta.url);
const task = await import(existsSync(source) ? source.href : new URL(`${entry}.js`, import.meta.url).href);
// The job's module too, before the first task: a thread that replaces one that died (or a standby)
// then runs a restored worker at once. A module that fails to load fails the task, which says why.
if (typeof workerData?.jobModule === 'string') await import(workerData.jobModule).catch(() => {});
export default task.default ?? task.runWorker;
