// Worker threads start here. User job modules and the engine are TypeScript: register the tsx loader
// in this thread first (loader hooks are per thread), then load the worker task.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { runWorker } = await import('./worker-task.ts');
// The job's module too, before the first task: a thread that replaces one that died (or a standby)
// then runs a restored worker at once. A module that fails to load fails the task, which says why.
if (typeof workerData?.jobModule === 'string') await import(workerData.jobModule).catch(() => {});
export default runWorker;
