import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs `npm run bench -- <args>` as a user would (through tsx), without waiting for a benchmark. */
function bench(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: root }, (error, stdout, stderr) => {
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
  });
}

void t.test('--help lists the benchmarks and their flags', async (t) => {
  const { code, stdout } = await bench('--help');
  t.equal(code, 0);
  for (const word of ['ycsb-t', 'checkpoint', 'kafka', '--duration', '--latency-load']) t.match(stdout, word);
  t.equal((await bench('ycsb-t', '--help')).code, 0, 'also after a benchmark name');
});

void t.test('a flag mistake is one line that names it and points to --help, not a stack trace', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['ycsb-t', '--bogus'], /Unknown option '--bogus'/],
    [['ycsb', '--duration', 'x'], /--duration must be a number of seconds > 0, got x/],
    [['ycsb-t', '--latency-load', '2'], /--latency-load: expected a share of the maximum in \(0, 1\], got 2/],
    [['nope'], /unknown benchmark "nope"/],
    [['ycsb', '--keys', '0'], /--keys: expected a comma-separated list of positive integers, got 0/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await bench(...args);
    t.equal(code, 2, `${args.join(' ')}: exit code 2`);
    t.match(stderr, message);
    t.match(stderr, /see: npm run bench -- --help/);
    t.notMatch(stderr, /\n\s+at /, 'no stack trace');
  }
});

void t.test('a failure that is not a flag mistake keeps its stack and exit code 1', async (t) => {
  // The engine refuses the option when the job is submitted: a runtime error, not a flag of the bench.
  const { code, stderr } = await bench('ycsb', '--workers', '100000', '--duration', '1', '--no-write');
  t.equal(code, 1);
  t.match(stderr, /EddyError: options\.workers is 100000: must be an integer from 1 to 128/);
  t.match(stderr, /\n\s+at /, 'with its stack');
  t.notMatch(stderr, /see: npm run bench -- --help/);
});
