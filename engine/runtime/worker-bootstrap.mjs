// Worker threads start here. User job modules are TypeScript: register the tsx loader in this thread
// first (loader hooks are per thread), then load the worker task: the built one next to this file in
// the installed package (dist/), the TypeScript source in a checkout.
import { existsSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
// Tells engine.submit it runs inside an Eddy worker, where a job module's top-level submit must refuse.
globalThis[Symbol.for('eddy.worker')] = true;
const source = new URL('./worker-task.ts', import.meta.url);
const { runWorker } = await import(existsSync(source) ? source.href : new URL('./worker-task.js', import.meta.url).href);
// The job's module too, before the first task: a thread that replaces one that died (or a standby)
// then runs a restored worker at once. A module that fails to load fails the task, which says why.
if (typeof workerData?.jobModule === 'string') await import(workerData.jobModule).catch(() => {});
export default runWorker;
