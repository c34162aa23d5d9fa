// The Eddy web console's script: listens to GET /events (one snapshot of the job a second, see
// ConsoleFeed in engine/runtime/admin-server.ts) and draws the page with plain DOM and SVG.

const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

/** The previous snapshot: per-second rates are the difference of two. */
let previous;

function el(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.append(typeof c === 'string' || typeof c === 'number' ? cell(String(c), typeof c === 'number' ? 'num' : '') : c);
  return tr;
}

function fill(tbody, rows, empty) {
  tbody.replaceChildren(...(rows.length > 0 ? rows : [row([cell(empty, 'empty')])]));
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 }) : '–');
const bytes = (n) => (n >= 1 << 20 ? `${fmt(n / (1 << 20), 1)} MB` : n >= 1024 ? `${fmt(n / 1024, 1)} kB` : `${fmt(n)} B`);
const time = (ms) => new Date(ms).toLocaleTimeString('en-GB');

function figures(container, items) {
  container.replaceChildren(
    ...items.map(([label, value, id]) => {
      const div = document.createElement('div');
      div.className = 'figure';
      const b = document.createElement('b');
      b.textContent = value;
      if (id) b.id = id;
      const span = document.createElement('span');
      span.textContent = label;
      div.append(b, span);
      return div;
    }),
  );
}

/** Per-second rate of a counter between the previous snapshot and this one (0 after a reset). */
function rate(now, before, seconds) {
  if (before === undefined || seconds <= 0) return 0;
  return Math.max(0, now - before) / seconds;
}

function drawGraph(data, seconds) {
  const svg = $('graph');
  const width = svg.clientWidth || 1000;
  const { ingresses, egresses } = data.graph;
  const workers = data.metrics.perWorker;
  const before = new Map((previous?.metrics.perWorker ?? []).map((w) => [w.worker, w]));
  const rows = Math.max(ingresses.length, workers.length, egresses.length, 1);
  const height = Math.max(200, rows * 64 + 30);
  svg.setAttribute('height', height);
  svg.replaceChildren();
  const defs = el('defs');
  const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' });
  marker.append(el('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8a93a6' }));
  defs.append(marker);
  svg.append(defs);
  const columns = [0.01, 0.23, 0.5, 0.8].map((x) => x * width);
  const boxWidth = Math.min(225, width * 0.19);
  const y = (i, n) => 20 + ((height - 40) * (i + 0.5)) / n;
  const nodes = { ingress: [], router: [], dispatcher: [], egress: [] };
  // `at`: where along the edge its label sits (crossing edges put theirs near their source, apart).
  const edge = (from, to, label, at = 0.5) => {
    const x1 = from.x + from.w, y1 = from.y, x2 = to.x, y2 = to.y;
    const mx = (x1 + x2) / 2;
    svg.append(el('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, fill: 'none', stroke: '#8a93a6', 'stroke-width': 1.2, 'marker-end': 'url(#arrow)', class: 'edge' }));
    // The point of the cubic Bézier at `at`.
    const u = 1 - at;
    const px = u * u * u * x1 + 3 * u * u * at * mx + 3 * u * at * at * mx + at * at * at * x2;
    const py = u * u * u * y1 + 3 * u * u * at * y1 + 3 * u * at * at * y2 + at * at * at * y2;
    if (label !== undefined) svg.append(el('text', { x: px, y: py - 4, 'text-anchor': 'middle', class: 'edge-rate muted' }, label));
  };
  const box = (kind, i, n, x, title, lines, alarm) => {
    const h = 18 + lines.length * 13;
    const node = { x, y: y(i, n), w: boxWidth, h };
    const g = el('g', { class: `node ${kind}`, 'data-worker': i });
    g.append(el('rect', { x, y: node.y - h / 2, width: boxWidth, height: h, rx: 5, fill: alarm ? '#fdecec' : '#eef2fb', stroke: alarm ? '#d64545' : '#b8c3dc' }));
    g.append(el('text', { x: x + 8, y: node.y - h / 2 + 14, 'font-weight': 600 }, title));
    lines.forEach((line, j) => g.append(el('text', { x: x + 8, y: node.y - h / 2 + 28 + j * 13, class: 'muted' }, line)));
    svg.append(g);
    nodes[kind].push(node);
    return node;
  };
  ingresses.forEach((name, i) => box('ingress', i, ingresses.length, columns[0], `source ${name}`, []));
  workers.forEach((w, i) => {
    const b = before.get(w.worker);
    const credits = seconds > 0 && b ? Math.min(1, Math.max(0, w.routerBlockedOnCreditsMs - b.routerBlockedOnCreditsMs) / 1000 / seconds) : 0;
    const feedback = seconds > 0 && b ? Math.min(1, Math.max(0, w.routerBlockedOnFeedbackMs - b.routerBlockedOnFeedbackMs) / 1000 / seconds) : 0;
    box('router', i, workers.length, columns[1], `router ${w.worker}`, [`read ${fmt(rate(w.recordsRead, b?.recordsRead, seconds))}/s`, `blocked ${fmt(credits * 100)}% credits, ${fmt(feedback * 100)}% feedback${w.routerThrottled ? ' (throttled)' : ''}`], w.routerThrottled || credits > 0.5);
  });
  workers.forEach((w, i) => {
    const b = before.get(w.worker);
    const hwm = data.graph.feedbackHighWaterMark;
    box('dispatcher', i, workers.length, columns[2], `dispatcher ${w.worker}`, [
      `${fmt(rate(w.invocations, b?.invocations, seconds))} invocations/s, mailbox ${fmt(w.mailboxDepth)}`,
      `feedback ${fmt(rate(w.messagesSent, b?.messagesSent, seconds))}/s out, backlog ${fmt(w.feedbackBacklog)} of ${fmt(hwm)}`,
      `event loop ${fmt(w.eventLoopUtilization * 100)}%, heap ${bytes(w.heapUsedBytes)}`,
    ], w.feedbackBacklog > hwm);
  });
  const egressRates = new Map(egresses.map((name) => [name, rate(data.metrics.egress[name], previous?.metrics.egress[name], seconds)]));
  egresses.forEach((name, i) => box('egress', i, egresses.length, columns[3], `sink ${name}`, [`${fmt(data.metrics.egress[name])} received`]));
  // Each router reads its splits of every ingress: one edge per ingress and router, labelled with the router's read rate.
  for (const ingress of nodes.ingress) nodes.router.forEach((router, i) => edge(ingress, router, ingresses.length === 1 ? `${fmt(rate(workers[i].recordsRead, before.get(workers[i].worker)?.recordsRead, seconds))}/s` : undefined));
  // Router i to dispatcher j: envelopes sent over the mesh (routed records and feedback).
  workers.forEach((w, i) => {
    const b = before.get(w.worker);
    w.sentTo.forEach((sent, j) => {
      const r = rate(sent, b?.sentTo[j], seconds);
      edge(nodes.router[i], nodes.dispatcher[j], `${fmt(r)}/s`, i === j ? 0.5 : 0.22);
    });
  });
  // Feedback: messages between functions leave each dispatcher and come back through the mesh (a loop on its top edge; the rate is in the box).
  for (const d of nodes.dispatcher) {
    const top = d.y - d.h / 2;
    const x = d.x + d.w - 40;
    svg.append(el('path', { d: `M${x},${top} C${x - 4},${top - 16} ${x + 28},${top - 16} ${x + 24},${top}`, fill: 'none', stroke: '#b07ad9', 'stroke-dasharray': '3 2', 'marker-end': 'url(#arrow)', class: 'feedback' }));
  }
  for (const dispatcher of nodes.dispatcher) nodes.egress.forEach((sink, k) => edge(dispatcher, sink, dispatcher === nodes.dispatcher[0] ? `${fmt(egressRates.get(egresses[k]))}/s` : undefined));
}

/** A line chart of `series` over the samples' times; the y axis starts at 0. */
function drawChart(svg, samples, series) {
  const width = svg.clientWidth || 500;
  const height = Number(svg.getAttribute('height'));
  const left = 48, right = 8, top = 8, bottom = 18;
  svg.replaceChildren();
  const end = samples.at(-1)?.at ?? Date.now();
  // The last five minutes, or as much as there is (at least a minute).
  const start = Math.max(end - 5 * 60 * 1000, Math.min(samples[0]?.at ?? end, end - 60 * 1000));
  const max = Math.max(1, ...samples.flatMap((s) => series.map(([key]) => s[key])));
  const x = (at) => left + ((at - start) / (end - start)) * (width - left - right);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  for (const f of [0, 0.5, 1]) {
    svg.append(el('line', { x1: left, x2: width - right, y1: y(max * f), y2: y(max * f), stroke: '#e3e6ee' }));
    svg.append(el('text', { x: left - 4, y: y(max * f) + 4, 'text-anchor': 'end', class: 'muted' }, fmt(max * f, max < 10 ? 1 : 0)));
  }
  svg.append(el('text', { x: left, y: height - 4, class: 'muted' }, `-${fmt((end - start) / 1000)} s`));
  svg.append(el('text', { x: width - right, y: height - 4, 'text-anchor': 'end', class: 'muted' }, 'now'));
  for (const [key, color] of series) {
    const points = samples.filter((s) => s.at >= start).map((s) => `${x(s.at).toFixed(1)},${y(s[key]).toFixed(1)}`);
    if (points.length > 0) svg.append(el('polyline', { points: points.join(' '), fill: 'none', stroke: color, 'stroke-width': 1.6, class: `series series-${key}` }));
  }
}

function drawCheckpoints(data) {
  const { status } = data;
  const last = status.checkpoints.at(-1);
  figures($('checkpoint-figures'), [
    ['completed', fmt(status.checkpointsCompleted), 'checkpoints-completed'],
    ['aborted', fmt(status.checkpointsAborted)],
    ['since the last', status.lastCheckpointAt === undefined ? '–' : `${fmt((data.at - status.lastCheckpointAt) / 1000)} s`],
    ['last duration', last === undefined ? '–' : `${fmt(last.durationMs)} ms`],
    ['last size', last === undefined ? '–' : bytes(last.bytes)],
    ['epochs not published', fmt(status.unpublishedEpochs)],
    ['restarts', fmt(status.restarts)],
  ]);
  const svg = $('timeline');
  const width = svg.clientWidth || 1000;
  svg.replaceChildren();
  const events = [...status.checkpointHistory.map((c) => c.startedAt), ...status.recoveries.map((r) => r.at)];
  const start = Math.min(data.at - status.uptimeMs, ...events);
  const x = (at) => 10 + ((at - start) / Math.max(1, data.at - start)) * (width - 20);
  svg.append(el('line', { x1: 10, x2: width - 10, y1: 40, y2: 40, stroke: '#c5cbd8' }));
  svg.append(el('text', { x: 10, y: 64, class: 'muted' }, time(start)));
  svg.append(el('text', { x: width - 10, y: 64, 'text-anchor': 'end', class: 'muted' }, time(data.at)));
  for (const c of status.checkpointHistory) {
    const mark = el('rect', { x: x(c.startedAt), y: 30, width: Math.max(3, x(c.startedAt + c.durationMs) - x(c.startedAt)), height: 20, fill: c.outcome === 'completed' ? '#1f9e6b' : '#d64545', class: `checkpoint ${c.outcome}` });
    mark.append(el('title', {}, `checkpoint ${c.id} ${c.outcome} (${c.trigger}), ${c.durationMs} ms${c.reason ? `: ${c.reason}` : ''}`));
    svg.append(mark);
  }
  for (const r of status.recoveries) {
    const at = x(r.at);
    const mark = el('path', { d: `M${at},28 l-6,-12 h12 z`, fill: r.kind === 'failed' ? '#d64545' : r.kind === 'restart' ? '#e0a100' : '#2f6fdf', class: `recovery ${r.kind}` });
    mark.append(el('title', {}, `${r.kind}${r.checkpoint !== undefined ? ` from checkpoint ${r.checkpoint}` : ''}${r.reason ? `: ${r.code ?? ''} ${r.reason}` : ''}`));
    svg.append(mark);
    svg.append(el('text', { x: at + 8, y: 20, class: 'muted' }, r.kind));
  }
  const rows = [...status.checkpointHistory].reverse().map((c) =>
    row([String(c.id), c.trigger, time(c.startedAt), c.durationMs, c.bytes ?? '', c.state ?? '', cell(c.outcome === 'completed' ? 'completed' : `aborted: ${c.reason ?? ''}`, c.outcome === 'completed' ? '' : 'bad')]),
  );
  fill($('checkpoints').tBodies[0], rows, status.checkpointDir === undefined ? 'no checkpoints: the job runs without --checkpoint-dir' : 'none yet');
}

function drawFunctions(data, seconds) {
  const totals = new Map();
  const sum = (metrics) => {
    const out = new Map();
    for (const w of metrics?.perWorker ?? []) {
      for (const [type, m] of Object.entries(w.functions)) {
        const t = out.get(type) ?? { invocations: 0, failures: 0, handlerMsSum: 0, stateReads: 0, stateWrites: 0, stateCacheMisses: 0 };
        for (const key of Object.keys(t)) t[key] += m[key];
        out.set(type, t);
      }
    }
    return out;
  };
  const now = sum(data.metrics);
  const before = sum(previous?.metrics);
  for (const [type, m] of now) totals.set(type, m);
  const rows = [...totals].map(([type, m]) =>
    row([type, fmt(rate(m.invocations, before.get(type)?.invocations, seconds)), m.invocations, m.failures, fmt(m.invocations > 0 ? m.handlerMsSum / m.invocations : 0, 2), m.stateReads, m.stateWrites, m.stateCacheMisses]),
  );
  fill($('functions').tBodies[0], rows, 'no function types');
}

function drawTransactions(data, seconds) {
  const t = data.metrics.totals;
  const b = previous?.metrics.totals;
  figures($('transactions'), [
    ['2PC committed/s', fmt(rate(t.transactionsCommitted, b?.transactionsCommitted, seconds), 1)],
    ['aborted/s', fmt(rate(t.transactionsAborted, b?.transactionsAborted, seconds), 1)],
    ['retryable/s', fmt(rate(t.transactionsRetryable, b?.transactionsRetryable, seconds), 1)],
    ['committed', fmt(t.transactionsCommitted)],
    ['running', fmt(t.transactionsRunning)],
    ['locks held', fmt(t.locksHeld)],
    ['deadlocks found', fmt(t.deadlocksFound)],
    ['lock-wait timeouts', fmt(t.lockWaitTimeouts)],
    ['sagas succeeded', fmt(t.sagasSucceeded)],
    ['failed and compensated', fmt(t.sagasFailed)],
    ['compensations abandoned', fmt(t.compensationsAbandoned)],
  ]);
}

function drawLockWaits(data) {
  // The wait-for graph's edges: each waiting transaction (by its coordinator), the one it waits behind, and where.
  const rows = (data.metrics.lockWaits ?? []).map((wait) =>
    row([`${wait.waiting.coordinator} (${wait.waiting.transaction})`, `${wait.holding.coordinator} (${wait.holding.transaction})`, wait.instance, wait.waitedMs]),
  );
  fill($('lock-waits').tBodies[0], rows, 'no transaction waits for a lock');
}

function drawDeadLetters(data) {
  $('dead-letter-count').textContent = `(${fmt(data.deadLetters.total)})`;
  const rows = data.deadLetters.latest.map((letter) => {
    const payload = document.createElement('td');
    const pre = document.createElement('pre');
    pre.textContent = JSON.stringify(letter.payload ?? letter.payloadBase64 ?? letter.record ?? '', null, 1) + (letter.stack ? `\n${letter.stack}` : '');
    payload.append(pre);
    const target = letter.target ? `${letter.target.type}:${letter.target.id}` : (letter.source ?? letter.ingress ?? '');
    return row([cell(letter.code ?? '', 'bad'), letter.reason ?? '', typeof target === 'string' ? target : JSON.stringify(target), payload]);
  });
  fill($('dead-letters').tBodies[0], rows, 'none');
}

function drawConnectors(data) {
  const rows = data.metrics.connectors.map((m) => row([m.name, Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(' '), fmt(m.value, 3)]));
  fill($('connectors').tBodies[0], rows, 'no connector metrics (memory and file connectors report none)');
}

function render(data) {
  const seconds = previous === undefined ? 0 : (data.at - previous.at) / 1000;
  const { status, metrics } = data;
  $('job').textContent = data.job;
  $('state').textContent = status.state;
  $('state').className = `state ${status.state}`;
  $('summary').textContent = `${status.workers} workers · up ${fmt(status.uptimeMs / 1000)} s · ${fmt(metrics.totals.recordsRead)} records read · ${fmt(metrics.totals.invocations)} invocations · p99 ${fmt(metrics.latency.p99Ms, 1)} ms · eddy ${data.version}`;
  document.title = `Eddy: ${data.job} (${status.state})`;
  drawGraph(data, seconds);
  drawChart($('throughput'), data.samples, [['recordsIn', '#2f6fdf'], ['invocations', '#7a4fd0'], ['egressRecords', '#1f9e6b']]);
  drawChart($('latency'), data.samples, [['latencyP50Ms', '#1f9e6b'], ['latencyP99Ms', '#d9822b']]);
  drawCheckpoints(data);
  drawFunctions(data, seconds);
  drawTransactions(data, seconds);
  drawLockWaits(data);
  drawDeadLetters(data);
  drawConnectors(data);
  fillStateTypes(data);
  previous = data;
  document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
}

/** The state lookup form: GET /state/<namespace>/<name>/<id>. Its type list is filled once. */
function fillStateTypes(data) {
  const select = $('state-type');
  if (select.options.length > 0) return;
  for (const { type, kind } of data.graph.functions) {
    if (kind !== 'regular') continue;
    const option = document.createElement('option');
    option.value = option.textContent = type;
    select.append(option);
  }
}

$('state-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const type = $('state-type').value;
  const id = $('state-id').value;
  const result = $('state-result');
  result.textContent = 'looking up…';
  try {
    const response = await fetch(`state/${type.split('/').map(encodeURIComponent).join('/')}/${encodeURIComponent(id)}`);
    result.textContent = JSON.stringify(await response.json(), null, 2);
  } catch (error) {
    result.textContent = String(error);
  }
});

const events = new EventSource('events');
events.onmessage = (event) => {
  $('connection').textContent = `updated ${time(Date.now())}`;
  render(JSON.parse(event.data));
};
events.onerror = () => {
  $('connection').textContent = 'disconnected: the job has ended, or the endpoint is unreachable (retrying)';
};
