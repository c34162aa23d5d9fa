/**
 * The classic first stateful function: count how often each name was greeted.
 * Run it: `npx eddy run examples/greeter/job.ts --workers 2` (reads examples/greeter/names.ndjson).
 */
import { fileURLToPath } from 'node:url';
import { defineFunction, defineJob, defineRouter, fileIngress, memoryEgress, routeTo, valueState } from '../../index.js';

export interface Greeting {
  name: string;
}

export interface GreetingRecord {
  name: string;
  seen: number;
  text: string;
}

const names = fileIngress<Greeting>('names', { path: fileURLToPath(new URL('./names.ndjson', import.meta.url)) });
const greetings = memoryEgress<GreetingRecord>('greetings');

export const greeter = defineFunction({
  type: 'example/greeter',
  state: { seen: valueState<number>() },
  egresses: { greetings },
  handler(ctx, message: Greeting) {
    const seen = (ctx.state.seen.get() ?? 0) + 1;
    ctx.state.seen.set(seen);
    ctx.egress('greetings', { name: message.name, seen, text: seen === 1 ? `Hello, ${message.name}!` : `Hello again, ${message.name} (#${seen})` });
  },
});

export default defineJob({
  name: 'greeter',
  module: import.meta.url,
  functions: [greeter],
  ingresses: [names],
  routers: [defineRouter(names, (record) => routeTo(greeter.address(record.name), record))],
  egresses: [greetings],
});
