// Worker threads start here. User job modules are TypeScript: register the tsx loader in this thread
// first (loader hooks are per thread), then load the worker task: the built one next to this file in
// the installed package (dist/), the TypeScript source in a checkout.
import { existsSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
// Tells engine.submit it runs inside an Eddy worker, where a job module's top-level submit must refuse.
globalThis[Symbol.for('eddy.worker')] = true;
const source = new URL('./worker-task.ts', import.meta.url);
const { runWorker } = await import(existsSync(source) ? source.href : new URL('./worker-task.js', import.meta.url).href);
export default runWorker;
