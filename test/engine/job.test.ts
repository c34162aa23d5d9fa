import t, { type Test } from 'tap';
import {
  DEAD_LETTERS,
  defineFunction,
  defineJob,
  defineRouter,
  EddyError,
  egressType,
  type Egress,
  type FunctionType,
  type Ingress,
  type JobSpec,
  memoryEgress,
  memoryIngress,
  type Router,
} from '../../index.js';

const account = defineFunction({ type: 'bank/account', handler: () => {} });
const audit = defineFunction({ type: 'bank/audit', handler: () => {} });
const toAccount = (ingress: string): Router<{ id: string }> => defineRouter(ingress, (record: { id: string }) => ({ to: account.address(record.id), message: record }));

/** A valid job spec; each test breaks one part of it. */
function spec(overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    name: 'bank',
    module: import.meta.url,
    functions: [account, audit],
    ingresses: [memoryIngress('orders')],
    routers: [toAccount('orders')],
    egresses: [memoryEgress('confirmations')],
    ...overrides,
  };
}

/** The error defineJob throws for `job`; fails the test if it accepts it. */
function invalidJobError(t: Test, job: JobSpec): EddyError | undefined {
  try {
    defineJob(job);
  } catch (error) {
    t.type(error, EddyError);
    return error as EddyError;
  }
  t.fail(`${job.name} was accepted`);
  return undefined;
}

void t.test('an inconsistent job is refused with EDDY_INVALID_JOB and a message naming the part', async (t) => {
  const cases: Array<[string, JobSpec, string[]]> = [
    ['duplicate function type', spec({ functions: [account, audit, defineFunction({ type: 'bank/account', handler: () => {} })] }), ['bank/account', 'defined twice']],
    ['router for an unknown ingress', spec({ routers: [toAccount('orders'), toAccount('refunds')] }), ['"refunds"', 'add it to ingresses']],
    ['ingress without a router', spec({ ingresses: [memoryIngress('orders'), memoryIngress('refunds')] }), ['ingress refunds has no router', "defineRouter('refunds'"]],
    ['duplicate ingress', spec({ ingresses: [memoryIngress('orders'), memoryIngress('orders')] }), ['ingress orders is defined twice']],
    ['duplicate egress', spec({ egresses: [memoryEgress('confirmations'), memoryEgress('confirmations')] }), ['egress confirmations is defined twice']],
    ['duplicate dead-letters egress', spec({ egresses: [memoryEgress(DEAD_LETTERS), memoryEgress(DEAD_LETTERS)] }), ['egress dead-letters is defined twice']],
    ['missing module URL', spec({ module: undefined as unknown as string }), ['module', 'import.meta.url']],
    ['module that is a path, not a file URL', spec({ module: '/work/job.ts' }), ['module', 'import.meta.url']],
    ['no functions', spec({ functions: [] }), ['functions must list at least one function type']],
    ['a function not made with defineFunction', spec({ functions: [{ type: 'bank/x' } as unknown as FunctionType]  }), ['defineFunction()']],
    ['a router without route()', spec({ routers: [{ ingress: 'orders' } as unknown as Router] }), ['router of ingress orders', 'route(record)']],
    ['empty name', spec({ name: '' }), ['name must be a non-empty string']],
    [
      'a function that declares an egress the job does not define',
      spec({ functions: [account, defineFunction({ type: 'bank/notify', egresses: { notices: egressType<string>() }, handler: () => {} })] }),
      ['function bank/notify declares egress "notices"', 'add it to egresses'],
    ],
    [
      'a router defined with another ingress of the same name',
      spec({ routers: [defineRouter(memoryIngress<{ id: string }>('orders'), (record) => ({ to: account.address(record.id), message: record }))] }),
      ['router of ingress orders was defined with another ingress', "pass the job's ingress"],
    ],
  ];
  for (const [what, job, parts] of cases) {
    const error = invalidJobError(t, job);
    t.equal(error?.code, 'EDDY_INVALID_JOB', `${what}: code`);
    for (const part of parts) t.match(error?.message ?? '', part, `${what}: mentions ${part}`);
    if (job.name !== '') t.match(error?.message ?? '', 'job "bank"', `${what}: names the job`);
  }
});

void t.test('a dead-letters egress is added, last, when the job has none', async (t) => {
  const job = defineJob(spec());
  t.same(job.egresses.map((e) => e.name), ['confirmations', DEAD_LETTERS]);
  const deadLetters = job.egresses[1]!;
  t.equal(deadLetters.kind, 'memory', 'a memory egress, readable with handle.output');
  t.equal(deadLetters.codec.name, 'json');
});

void t.test("a job's own dead-letters egress is kept, not doubled", async (t) => {
  const own: Egress = { ...memoryEgress(DEAD_LETTERS), kind: 'custom' };
  const job = defineJob(spec({ egresses: [own, memoryEgress('confirmations')] }));
  t.same(job.egresses.map((e) => e.name), [DEAD_LETTERS, 'confirmations']);
  t.equal(job.egresses[0], own);
});

void t.test('a valid job keeps its parts: functions by type, routers by ingress, egresses in order', async (t) => {
  const orders: Ingress = memoryIngress('orders');
  const refunds: Ingress = memoryIngress('refunds');
  const first = toAccount('orders');
  const second = toAccount('orders');
  const job = defineJob(spec({ ingresses: [orders, refunds], routers: [first, toAccount('refunds'), second] }));
  t.equal(job.kind, 'eddy-job');
  t.equal(job.name, 'bank');
  t.equal(job.module, import.meta.url);
  t.same([...job.functions.keys()], ['bank/account', 'bank/audit']);
  t.equal(job.functions.get('bank/audit'), audit);
  t.same(job.ingresses, [orders, refunds]);
  t.same(job.routers.get('orders'), [first, second], 'two routers of one ingress, in order');
  t.equal(job.routers.get('refunds')?.length, 1);
});

void t.test('a job without ingresses is valid and still gets a dead-letters egress', async (t) => {
  const job = defineJob({ name: 'minimal', module: import.meta.url, functions: [account] });
  t.same(job.ingresses, []);
  t.equal(job.routers.size, 0);
  t.same(job.egresses.map((e) => e.name), [DEAD_LETTERS]);
});
