/**
 * The web console at `/` of the admin endpoint, in a real headless Chromium against a real running
 * job: it draws the job graph and the charts, and its figures move while the job runs. Its
 * screenshot is saved to .tap/artifacts/console.png (and to docs/console.png with EDDY_UPDATE_DOCS=1).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import counterJob from '../../fixtures/counter-job.js';
import { launchChromium } from '../../fixtures/chromium.js';
import { run, tempDir, waitFor } from '../../fixtures/harness.js';

const root = join(import.meta.dirname, '..', '..', '..');
const events = Array.from({ length: 1_000_000 }, (_, i) => ({ key: `k${i % 500}` }));

void t.test('the console shows the graph, charts and checkpoints of a running job, and its figures move', async (t) => {
  const checkpointDir = tempDir(t, 'console');
  const handle = run(t, counterJob, { workers: 2, checkpointDir, checkpointIntervalMs: 2000, adminPort: 0, inputs: { events: { records: events, ratePerSec: 2000 } } });
  const url = (await handle.adminUrl())!;
  await waitFor(() => handle.status().state === 'running', 'the job to run');

  const browser = await launchChromium(t);
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1300 });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${url}/`);
  const updates = async (): Promise<number> => Number(await page.$eval('body', (body) => body.dataset.updates ?? 0));
  // Strings: the tests are compiled without the DOM's types; these run in the page.
  await page.waitForFunction('Number(document.body.dataset.updates ?? 0) >= 3', { timeout: 60_000 });

  t.equal(await page.$eval('#job', (node) => node.textContent), 'e2e-counter', 'the job name');
  t.equal(await page.$eval('#state', (node) => node.textContent), 'running', 'its state');
  const nodes = await page.$$eval('#graph g.node', (gs) => gs.map((g) => g.getAttribute('class')));
  t.same(
    { ingress: nodes.filter((c) => c === 'node ingress').length, router: nodes.filter((c) => c === 'node router').length, dispatcher: nodes.filter((c) => c === 'node dispatcher').length, egress: nodes.filter((c) => c === 'node egress').length },
    { ingress: 1, router: 2, dispatcher: 2, egress: 2 },
    'the graph: one source, a router and a dispatcher per worker, the counts and dead-letter sinks',
  );
  t.equal((await page.$$('#graph path.edge')).length, 2 + 4 + 4, 'edges: source to routers, routers to dispatchers, dispatchers to sinks');
  t.equal((await page.$$('#graph path.feedback')).length, 2, 'a feedback edge per dispatcher');

  const recordsRead = async (): Promise<number> => Number(/([\d,]+) records read/.exec((await page.$eval('#summary', (node) => node.textContent)) ?? '')?.[1]?.replaceAll(',', ''));
  const pointsOf = async (series: string): Promise<number> => page.$eval(`#throughput polyline.series-${series}`, (line) => line.getAttribute('points')!.trim().split(' ').length).catch(() => 0);
  const rates = async (): Promise<number[]> => page.$$eval('#graph text.edge-rate', (texts) => texts.map((text) => Number(/([\d,.]+)\/s/.exec(text.textContent ?? '')?.[1]?.replaceAll(',', '') ?? NaN)));
  const before = { updates: await updates(), read: await recordsRead(), points: await pointsOf('recordsIn') };
  await page.waitForFunction(`Number(document.body.dataset.updates ?? 0) >= ${before.updates + 3}`, { timeout: 60_000 });
  const after = { read: await recordsRead(), points: await pointsOf('recordsIn') };
  t.ok(after.read > before.read, `records read moves: ${before.read} then ${after.read}`);
  t.ok(after.points > before.points && before.points >= 1, `the throughput chart grows: ${before.points} then ${after.points} points`);
  t.ok(await pointsOf('invocations') >= 2, 'invocations are charted');
  t.ok((await page.$$('#latency polyline.series-latencyP99Ms')).length === 1, 'p99 latency is charted');
  const edgeRates = await rates();
  t.ok(edgeRates.some((r) => r > 0), `edges carry rates: ${edgeRates.join(' ')}`);

  await page.waitForFunction("document.querySelectorAll('#timeline rect.checkpoint.completed').length >= 1", { timeout: 60_000 });
  t.ok(Number(await page.$eval('#checkpoints-completed', (node) => node.textContent)) >= 1, 'completed checkpoints are counted');
  t.ok((await page.$$('#checkpoints tbody tr')).length >= 1, 'and listed');
  t.match(await page.$eval('#functions tbody', (node) => node.textContent), /e2e-counter\/count/, 'the function types are listed');
  t.match(await page.$eval('#dead-letters tbody', (node) => node.textContent), /none/, 'no dead letters');

  // The state lookup form asks the owning worker.
  await page.type('#state-id', 'k7');
  await page.click('#state-form button');
  await page.waitForFunction("document.getElementById('state-result').textContent.includes('\"count\"')", { timeout: 30_000 });
  const looked = JSON.parse((await page.$eval('#state-result', (node) => node.textContent)) ?? '{}') as { id: string; state: { count: number } };
  t.ok(looked.id === 'k7' && looked.state.count > 0, `the state lookup shows k7's count: ${looked.state.count}`);

  // A worker failure shows as a restart on the timeline.
  await handle.killWorker(0);
  await page.waitForFunction("document.querySelectorAll('#timeline path.recovery.restart').length === 1", { timeout: 60_000 });
  t.pass('the restart is marked on the timeline');
  await page.waitForFunction("document.getElementById('state').textContent === 'running' && document.querySelectorAll('#timeline rect.checkpoint.completed').length >= 2", { timeout: 60_000 });
  await new Promise((resolve) => setTimeout(resolve, 2500));
  t.same(errors, [], 'no script errors');

  const png = await page.screenshot({ fullPage: true });
  t.ok(png.length > 10_000, `a screenshot of ${png.length} bytes`);
  const artifacts = join(root, '.tap', 'artifacts');
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, 'console.png'), png);
  if (process.env.EDDY_UPDATE_DOCS === '1') writeFileSync(join(root, 'docs', 'console.png'), png);
});
