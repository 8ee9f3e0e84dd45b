// Sluice local console: plain JavaScript, no build step. It calls the /v0
// API and the console backend (/console/api/) with the API key from session
// storage in the Authorization header (never in a URL), and polls once a
// second for live views.
'use strict';

const KEY_STORAGE = 'sluice.apiKey';
const POLL_MS = 1000;

// Test hook: the order in which states change outcome on the execution page.
window.__sluice = { stateLog: [], renders: 0, errors: [] };
window.addEventListener('error', (e) => window.__sluice.errors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => window.__sluice.errors.push(String(e.reason)));

// ---- DOM helpers -----------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function announce(text) {
  const el = document.getElementById('announce');
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 30);
}

function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function fmtDate(t) {
  if (!t) return '';
  const d = new Date(t);
  return isNaN(d) ? String(t) : `${d.toISOString().slice(0, 10)} ${fmtTime(t)}`;
}

function pretty(text) {
  if (text === undefined || text === null || text === '') return '';
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return String(text); }
}

// ---- status badges: an icon and the word, never colour alone ---------------

const STATUS_ICON = {
  Running: '▶', Paused: '❚❚', Stopped: '■', Provisioning: '◔', Provisioned: '●', Initializing: '◔',
  Suspending: '⤓', Suspended: '⤓', Stopping: '◼', Unavailable: '⚠', InUse: '◉', Cleared: '○', Clearing: '◌',
  RUNNING: '▶', SUCCEEDED: '✓', FAILED: '✗', ABORTED: '⊘', TIMED_OUT: '⌛', PENDING: '…', SUPERSEDED: '⤼',
};

function badge(value, label) {
  const v = value === null || value === undefined ? '—' : String(value);
  return h('span', { class: `badge st-${v.replace(/[^A-Za-z_]/g, '')}`, title: label ? `${label}: ${v}` : null },
    h('span', { 'aria-hidden': 'true', class: 'icon' }, STATUS_ICON[v] || '·'), ' ', v);
}

const OUTCOME_TEXT = {
  succeeded: ['✓', 'succeeded'], failed: ['✗', 'failed'], caught: ['↪', 'caught'], current: ['▶', 'current'],
  aborted: ['⊘', 'aborted'], timed_out: ['⌛', 'timed out'],
};

function outcomeText(summary) {
  if (!summary) return 'not entered';
  const [, word] = OUTCOME_TEXT[summary.outcome] || ['', summary.outcome];
  const parts = [word];
  if (summary.retries > 0) parts.push(`retried ${summary.retries}×`);
  if (summary.visits > 1) parts.push(`entered ${summary.visits}×`);
  return parts.join(', ');
}

// ---- API access ------------------------------------------------------------

function apiKey() { return sessionStorage.getItem(KEY_STORAGE) || ''; }

async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${apiKey()}` };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    return { status: 0, ok: false, data: null, error: { message: `No answer from the API: ${e.message}`, error_code: 'NetworkError' } };
  }
  const text = await res.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* plain text */ }
  const out = { status: res.status, ok: res.ok, data };
  if (!res.ok) {
    out.error = data && typeof data === 'object' && data.error_code ? data : { message: String(text).slice(0, 300), error_code: `HTTP ${res.status}` };
    if (res.status === 401) onUnauthorized(out.error);
  }
  return out;
}

// answerText is how an action's answer is shown: the status and the API's
// message (or its error's code and message).
function answerText(r) {
  if (r.ok) {
    const msg = typeof r.data === 'string' ? r.data : r.data === null ? '' : JSON.stringify(r.data);
    return `${r.status} ${r.status === 202 ? 'Accepted' : 'OK'}${msg ? ': ' + msg : ''}`;
  }
  return `${r.status || 'no answer'} ${r.error.error_code}: ${r.error.message}`;
}

// ---- polling: one loop per page, ended when the page changes ----------------

let pageToken = 0;
function poll(fn) {
  const mine = pageToken;
  const tick = async () => {
    if (mine !== pageToken) return;
    try { await fn(); } catch (e) { console.error(e); }
    if (mine === pageToken) setTimeout(tick, POLL_MS);
  };
  tick();
}

// ---- the key form ----------------------------------------------------------

let keyMessage = '';
function onUnauthorized(err) {
  sessionStorage.removeItem(KEY_STORAGE);
  keyMessage = `${err.error_code}: ${err.message}`;
  pageToken++;
  render();
}

function keyPage(main) {
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', placeholder: 'apikey:…' });
  const msg = h('p', { id: 'key-error', class: keyMessage ? 'answer error' : 'answer', role: 'alert' }, keyMessage);
  const form = h('form', {
    class: 'card narrow', onsubmit: async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY_STORAGE, input.value.trim());
      keyMessage = '';
      const r = await call('GET', '/v0/pipelines?selector=status&limit=1');
      if (r.ok) { announce('API key accepted'); render(); }
      else if (r.status !== 401) { msg.textContent = answerText(r); msg.className = 'answer error'; }
    },
  },
  h('h1', {}, 'Enter the API key'),
  h('p', {}, 'The local stack printed it at start and wrote it to ', h('code', {}, '.sluice/api-key'),
    '. It is kept in this tab\'s session storage only and sent in the Authorization header.'),
  h('label', { for: 'api-key' }, 'API key'), input,
  h('button', { type: 'submit', id: 'key-submit' }, 'Use this key'), msg);
  main.append(form);
  input.focus();
}

// ---- lifecycle actions -------------------------------------------------------

const ACTIONS = [
  { id: 'start', label: 'Start (running)', method: 'POST', path: '/start?initial=running' },
  { id: 'start-paused', label: 'Start (paused)', method: 'POST', path: '/start?initial=paused' },
  { id: 'pause', label: 'Pause', method: 'POST', path: '/pause' },
  { id: 'resume', label: 'Resume', method: 'POST', path: '/resume' },
  { id: 'stop', label: 'Stop (graceful)', method: 'POST', path: '/stop?force=false' },
  { id: 'stop-force', label: 'Stop (force)', method: 'POST', path: '/stop?force=true', danger: true },
  { id: 'checkpoint', label: 'Checkpoint', method: 'POST', path: '/checkpoint' },
  { id: 'clear', label: 'Clear storage', method: 'POST', path: '/clear', danger: true },
  { id: 'dismiss-error', label: 'Dismiss error', method: 'POST', path: '/dismiss_error' },
  { id: 'delete', label: 'Delete', method: 'DELETE', path: '', danger: true },
];

function actionBar(name, onDone) {
  const out = h('output', { class: 'answer', 'data-answer': name, 'aria-live': 'polite' });
  const buttons = ACTIONS.map((a) => h('button', {
    type: 'button', class: a.danger ? 'danger' : null, 'data-action': a.id, 'data-pipeline': name,
    'aria-label': `${a.label}: ${name}`,
    onclick: async (ev) => {
      const btn = ev.currentTarget;
      btn.disabled = true;
      out.textContent = `${a.label}…`;
      out.className = 'answer';
      const r = await call(a.method, `/v0/pipelines/${encodeURIComponent(name)}${a.path}`);
      btn.disabled = false;
      out.textContent = `${a.label}: ${answerText(r)}`;
      out.className = r.ok ? 'answer ok' : 'answer error';
      out.dataset.status = String(r.status);
      if (onDone) onDone(r);
    },
  }, a.label));
  return h('div', { class: 'actions' }, h('div', { class: 'buttons', role: 'group', 'aria-label': `Actions for ${name}` }, buttons), out);
}

// ---- pipelines page ----------------------------------------------------------

function pipelinesPage(main) {
  const nameIn = h('input', { id: 'new-name', name: 'name', required: true, pattern: '[A-Za-z0-9_\\-]{1,63}', autocomplete: 'off' });
  const descIn = h('input', { id: 'new-description', name: 'description', autocomplete: 'off' });
  const rcIn = h('textarea', { id: 'new-runtime-config', name: 'runtime_config', rows: 3, spellcheck: 'false' });
  rcIn.value = '{"checkpoint_interval_secs": 5}';
  const createOut = h('output', { id: 'create-answer', class: 'answer', 'aria-live': 'polite' });
  const form = h('form', {
    class: 'card create', onsubmit: async (ev) => {
      ev.preventDefault();
      let rc;
      try { rc = rcIn.value.trim() ? JSON.parse(rcIn.value) : {}; } catch (e) {
        createOut.textContent = `runtime_config is not JSON: ${e.message}`; createOut.className = 'answer error'; return;
      }
      const r = await call('POST', '/v0/pipelines', { name: nameIn.value.trim(), description: descIn.value, runtime_config: rc });
      createOut.textContent = `Create ${nameIn.value.trim()}: ${r.ok ? `${r.status} Created` : answerText(r)}`;
      createOut.className = r.ok ? 'answer ok' : 'answer error';
      if (r.ok) { nameIn.value = ''; refresh(); }
    },
  },
  h('h2', {}, 'Create a pipeline'),
  h('div', { class: 'fields' },
    h('div', {}, h('label', { for: 'new-name' }, 'Name'), nameIn),
    h('div', {}, h('label', { for: 'new-description' }, 'Description'), descIn),
    h('div', { class: 'wide' }, h('label', { for: 'new-runtime-config' }, 'runtime_config (JSON)'), rcIn)),
  h('button', { type: 'submit', id: 'create-submit' }, 'Create'), createOut);

  const tbody = h('tbody', {});
  const empty = h('p', { class: 'muted', id: 'no-pipelines', hidden: true }, 'No pipelines yet: create one above.');
  const table = h('div', { class: 'scroll' }, h('table', { class: 'pipelines', id: 'pipelines' },
    h('caption', { class: 'visually-hidden' }, 'Pipelines, updated every second'),
    h('thead', {}, h('tr', {}, ['Name', 'Status', 'Desired', 'Resources', 'Runtime', 'Storage', 'Generation', 'Deployment error']
      .map((c) => h('th', { scope: 'col' }, c)))),
    tbody));
  const updated = h('p', { class: 'muted small', id: 'updated' });
  main.append(h('h1', {}, 'Pipelines'), form, h('section', { 'aria-labelledby': 'list-h' }, h('h2', { id: 'list-h' }, 'All pipelines'), updated, empty, table));

  const rows = new Map(); // name → {cells, actionRow}
  async function refresh() {
    const r = await call('GET', '/v0/pipelines?selector=status');
    if (!r.ok) { updated.textContent = `Could not list: ${answerText(r)}`; return; }
    const seen = new Set();
    for (const p of r.data) {
      seen.add(p.name);
      let row = rows.get(p.name);
      if (!row) {
        const cells = {};
        const tr = h('tr', { 'data-pipeline': p.name },
          h('th', { scope: 'row' }, h('a', { href: `#/pipelines/${encodeURIComponent(p.name)}` }, p.name)),
          ...['status', 'desired', 'resources', 'runtime', 'storage', 'generation', 'error'].map((k) => (cells[k] = h('td', { 'data-col': k }))));
        const actionRow = h('tr', { class: 'action-row', 'data-actions-for': p.name }, h('td', { colspan: 8 }, actionBar(p.name, refresh)));
        row = { tr, cells, actionRow };
        rows.set(p.name, row);
      }
      fill(row.cells.status, badge(p.deployment_status, 'status'));
      fill(row.cells.desired, badge(p.deployment_desired_status, 'desired'));
      fill(row.cells.resources, badge(p.deployment_resources_status), ' → ', badge(p.deployment_resources_desired_status));
      fill(row.cells.runtime, p.deployment_runtime_status ? [badge(p.deployment_runtime_status), ' → ', badge(p.deployment_runtime_desired_status)] : h('span', { class: 'muted' }, 'not provisioned'));
      fill(row.cells.storage, badge(p.storage_status));
      fill(row.cells.generation, `g${p.generation}`);
      fill(row.cells.error, p.deployment_error ? h('span', { class: 'err' }, h('span', { 'aria-hidden': 'true' }, '⚠ '), `${p.deployment_error.error_code}: ${p.deployment_error.message}`) : h('span', { class: 'muted' }, 'none'));
    }
    // Keep rows in the API's order; drop deleted ones.
    for (const [name, row] of rows) if (!seen.has(name)) { row.tr.remove(); row.actionRow.remove(); rows.delete(name); }
    for (const p of r.data) { const row = rows.get(p.name); tbody.append(row.tr, row.actionRow); }
    empty.hidden = r.data.length > 0;
    updated.textContent = `Updated ${fmtTime(new Date())}`;
  }
  poll(refresh);
}

// fill replaces an element's content only when it changed (keeps focus and
// selection where the user is).
function fill(el, ...content) {
  const tmp = h('div', {}, ...content);
  if (tmp.innerHTML !== el.innerHTML) el.replaceChildren(...tmp.childNodes);
}

// ---- pipeline page -----------------------------------------------------------

function pipelinePage(main, name) {
  const summary = h('dl', { class: 'record', id: 'record' });
  const raw = h('pre', { class: 'json' });
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const execs = h('tbody', {});
  const statsOut = h('div', { id: 'stats' });
  const chart = h('div', { class: 'chart', id: 'stats-chart' });
  main.append(
    h('p', {}, h('a', { href: '#/' }, '← All pipelines')),
    h('h1', {}, 'Pipeline ', h('span', { class: 'mono' }, name)),
    h('section', { class: 'card' }, h('h2', {}, 'Record'), summary, h('details', {}, h('summary', {}, 'The whole record (JSON)'), raw)),
    h('section', { class: 'card' }, h('h2', {}, 'Actions'), actionBar(name, () => refresh())),
    h('div', { class: 'cols' },
      h('section', { class: 'card', 'aria-labelledby': 'tl-h' }, h('h2', { id: 'tl-h' }, 'Timeline (newest first)'), timeline),
      h('section', { class: 'card', 'aria-labelledby': 'st-h' }, h('h2', { id: 'st-h' }, 'Stats'), chart, statsOut)),
    h('section', { class: 'card', 'aria-labelledby': 'ex-h' }, h('h2', { id: 'ex-h' }, 'Workflow executions'),
      h('div', { class: 'scroll' }, h('table', { id: 'executions' }, h('thead', {}, h('tr', {}, ['Execution', 'Workflow', 'Status', 'Started', 'Ended'].map((c) => h('th', { scope: 'col' }, c)))), execs))),
  );
  const samples = [];
  let execByName = new Map();
  let lastRecord = null;

  async function refresh() {
    const r = await call('GET', `/v0/pipelines/${encodeURIComponent(name)}`);
    if (!r.ok) { fill(summary, h('p', { class: 'answer error' }, answerText(r))); return; }
    const p = r.data;
    lastRecord = p;
    const ex = await call('GET', `/console/api/executions?pipeline=${encodeURIComponent(name)}&pipeline_id=${encodeURIComponent(p.id)}`);
    if (ex.ok) {
      execByName = new Map(ex.data.map((e) => [e.name, e]));
      fill(execs, ...ex.data.map((e) => h('tr', { 'data-execution': e.name },
        h('th', { scope: 'row' }, h('a', { href: `#/executions/${encodeURIComponent(e.arn)}`, class: 'mono' }, e.name)),
        h('td', {}, e.kind), h('td', {}, badge(e.status)), h('td', {}, fmtDate(e.start_date)), h('td', {}, fmtDate(e.stop_date)))));
    }
    const wf = p.workflow;
    const wfExec = wf && execByName.get(wf.execution_name);
    fill(summary,
      dt('Status'), h('dd', { 'data-field': 'deployment_status' }, badge(p.deployment_status), ' desired ', badge(p.deployment_desired_status)),
      dt('Resources'), h('dd', {}, badge(p.deployment_resources_status), ' → ', badge(p.deployment_resources_desired_status)),
      dt('Runtime'), h('dd', {}, p.deployment_runtime_status ? [badge(p.deployment_runtime_status), ' → ', badge(p.deployment_runtime_desired_status)] : 'not provisioned'),
      dt('Storage'), h('dd', {}, badge(p.storage_status)),
      dt('Generation'), h('dd', {}, `g${p.generation} (version ${p.version}, refresh ${p.refresh_version})`),
      dt('Deployment error'), h('dd', { 'data-field': 'deployment_error' }, p.deployment_error ? h('span', { class: 'err' }, `⚠ ${p.deployment_error.error_code}: ${p.deployment_error.message}`) : 'none'),
      dt('Workflow'), h('dd', { 'data-field': 'workflow' }, wf ? [`${wf.kind} `, badge(wf.status), ' ',
        wfExec ? h('a', { href: `#/executions/${encodeURIComponent(wfExec.arn)}`, class: 'mono', id: 'workflow-link' }, wf.execution_name) : h('span', { class: 'mono' }, wf.execution_name)] : 'none'),
      dt('Location'), h('dd', { class: 'mono' }, p.deployment_location || '—'),
      dt('Created'), h('dd', {}, fmtDate(p.created_at)));
    const rawText = JSON.stringify(p, null, 2);
    if (raw.textContent !== rawText) raw.textContent = rawText;

    const ev = await call('GET', `/v0/pipelines/${encodeURIComponent(name)}/events?limit=100`);
    if (ev.ok) {
      fill(timeline, ...ev.data.map((e) => {
        const ex2 = e.cause.execution && execByName.get(e.cause.execution);
        return h('li', { 'data-action': e.cause.action, 'data-status': e.deployment_status },
          h('time', { datetime: e.at }, fmtTime(e.at)), ' ',
          badge(e.deployment_status), h('span', { class: 'muted' }, ' desired '), badge(e.deployment_desired_status), ' ',
          h('span', { class: 'cause' }, e.cause.action), ' ',
          h('span', { class: 'muted small' }, [e.cause.actor, `g${e.generation}`].filter(Boolean).join(' · ')),
          e.cause.execution ? [' ', ex2 ? h('a', { href: `#/executions/${encodeURIComponent(ex2.arn)}`, class: 'mono small' }, e.cause.execution) : h('span', { class: 'mono small' }, e.cause.execution)] : null,
          e.deployment_error ? h('div', { class: 'err small' }, `⚠ ${e.deployment_error.error_code}: ${e.deployment_error.message}`) : null);
      }));
    }

    if (p.deployment_resources_status === 'Provisioned') {
      const st = await call('GET', `/v0/pipelines/${encodeURIComponent(name)}/stats`);
      if (st.ok && st.data && typeof st.data === 'object') {
        const g = st.data.global_metrics || {};
        const processed = Number(g.total_processed_records ?? st.data.count ?? 0);
        samples.push({ t: Date.now(), v: processed });
        if (samples.length > 60) samples.shift();
        drawChart(chart, samples);
        const counters = [['state', g.state], ['total processed records', g.total_processed_records], ['count', st.data.count],
          ['sum', st.data.sum], ['last sequence number', st.data.last_sequence_number], ['checkpoints', st.data.checkpoints],
          ['restored from checkpoint', st.data.restored_from_checkpoint ?? 'none']].filter(([, v]) => v !== undefined);
        fill(statsOut, h('dl', { class: 'counters' }, counters.map(([k, v]) => [dt(k), h('dd', { class: 'mono' }, String(v))])));
      } else if (!st.ok) fill(statsOut, h('p', { class: 'muted' }, answerText(st)));
    } else {
      fill(statsOut, h('p', { class: 'muted' }, `Not provisioned (${p.deployment_status}): the runtime has no stats now.`));
    }
  }
  poll(refresh);
}

function dt(text) { return h('dt', {}, text); }

// drawChart: the processed-records counter over the last minute of samples.
function drawChart(el, samples) {
  const W = 320, H = 90, P = 4;
  if (samples.length < 2) { fill(el, h('p', { class: 'muted small' }, 'Collecting samples…')); return; }
  const vs = samples.map((x) => x.v);
  const min = Math.min(...vs), max = Math.max(...vs), span = max - min || 1;
  const t0 = samples[0].t, tspan = samples[samples.length - 1].t - t0 || 1;
  const pts = samples.map((x) => `${(P + (x.t - t0) / tspan * (W - 2 * P)).toFixed(1)},${(H - P - (x.v - min) / span * (H - 2 * P)).toFixed(1)}`).join(' ');
  const last = samples[samples.length - 1], prev = samples[samples.length - 2];
  const rate = ((last.v - prev.v) / ((last.t - prev.t) / 1000 || 1)).toFixed(0);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': `Processed records: ${last.v}, about ${rate} per second` },
    s('polyline', { points: pts, class: 'spark' }));
  el.replaceChildren(h('p', { class: 'small' }, `Processed records: ${last.v} (≈ ${rate}/s; min ${min}, max ${max} over ${samples.length} samples)`), svg);
}

// ---- execution page ----------------------------------------------------------

function executionPage(main, arn) {
  const head = h('div', { id: 'exec-head' });
  const graphBox = h('div', { class: 'graph scroll', id: 'graph' });
  const detail = h('div', { id: 'state-detail', class: 'card', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Select a state (click, or Tab to it and press Enter) to see its input and output.'));
  const path = h('ol', { class: 'path', id: 'path' });
  const history = h('tbody', {});
  main.append(
    h('p', {}, h('a', { href: '#/' }, '← All pipelines')),
    head,
    h('section', { class: 'card', 'aria-labelledby': 'g-h' }, h('h2', { id: 'g-h' }, 'Graph'), legend(), graphBox),
    h('div', { class: 'cols' },
      h('section', { class: 'card', 'aria-labelledby': 'p-h' }, h('h2', { id: 'p-h' }, 'Path taken'), path),
      detail),
    h('section', { class: 'card', 'aria-labelledby': 'h-h' }, h('h2', { id: 'h-h' }, 'Event history'),
      h('div', { class: 'scroll' }, h('table', { id: 'history' }, h('thead', {}, h('tr', {}, ['ID', 'Type', 'Step', 'Elapsed', 'Time', 'Input / output'].map((c) => h('th', { scope: 'col' }, c)))), history))),
  );
  let drawn = null; // the graph's SVG, built once
  const seen = {}; // state → last outcome text logged (test hook)
  let selected = null;
  let view = null;

  function showState(name) {
    selected = name;
    if (!view) return;
    const evs = view.events.filter((e) => e.state === name || (e.type.match(/^(Task|LambdaFunction)/) && ownerOf(view.events, e) === name));
    const sum = view.trace.states[name];
    fill(detail, h('h2', {}, 'State ', h('span', { class: 'mono' }, name)), h('p', {}, outcomeText(sum)),
      sum && sum.error ? h('p', { class: 'err' }, `⚠ ${sum.error}`) : null,
      evs.length ? evs.map((e) => h('div', {}, h('h3', { class: 'small' }, `${e.id} ${e.type}`),
        e.input ? h('pre', { class: 'json' }, pretty(e.input)) : null, e.output ? h('pre', { class: 'json' }, pretty(e.output)) : null,
        e.error ? h('pre', { class: 'json err' }, `${e.error}\n${pretty(e.cause)}`) : null)) : h('p', { class: 'muted' }, 'Not entered in this execution.'));
    if (drawn) for (const g of drawn.querySelectorAll('g.node')) g.classList.toggle('selected', g.dataset.state === name);
  }

  async function refresh() {
    const r = await call('GET', `/console/api/execution?arn=${encodeURIComponent(arn)}`);
    if (!r.ok) { fill(head, h('h1', {}, 'Execution'), h('p', { class: 'answer error' }, answerText(r))); return false; }
    view = r.data;
    const v = view;
    let pipeline = '';
    try { pipeline = JSON.parse(v.input).pipeline || ''; } catch (_) { /* no input */ }
    fill(head, h('h1', {}, 'Execution ', h('span', { class: 'mono', id: 'exec-name' }, v.name)),
      h('dl', { class: 'record' },
        dt('Status'), h('dd', { id: 'exec-status', 'data-status': v.status }, badge(v.status), v.error ? h('span', { class: 'err' }, ` ${v.error}: ${v.cause}`) : null),
        dt('Workflow'), h('dd', {}, `${v.kind} (state machine `, h('span', { class: 'mono' }, v.state_machine_arn.split(':').pop()), ')'),
        dt('Pipeline'), h('dd', {}, pipeline ? h('a', { href: `#/pipelines/${encodeURIComponent(pipeline)}` }, pipeline) : '—'),
        dt('Started'), h('dd', {}, fmtDate(v.start_date)),
        dt('Ended'), h('dd', {}, v.stop_date ? `${fmtDate(v.stop_date)} (${(new Date(v.stop_date) - new Date(v.start_date))} ms)` : 'running'),
        dt('ARN'), h('dd', { class: 'mono small' }, v.arn)));
    if (!drawn) { drawn = drawGraph(v.graph, showState); graphBox.replaceChildren(drawn); }
    paintGraph(drawn, v);
    // Test hook and screen readers: each change of a state's outcome, in path order.
    const changes = [];
    for (const visit of v.trace.visits) {
      const text = outcomeText(v.trace.states[visit.state]);
      if (seen[visit.state] !== text) { seen[visit.state] = text; changes.push(visit.state); window.__sluice.stateLog.push(`${visit.state}:${v.trace.states[visit.state].outcome}`); }
    }
    if (changes.length) announce(changes.map((n) => `${n} ${seen[n]}`).join('; '));
    fill(path, ...v.trace.visits.map((vi) => h('li', { 'data-state': vi.state, 'data-outcome': vi.outcome },
      h('span', { class: `outcome o-${vi.outcome}` }, h('span', { 'aria-hidden': 'true' }, (OUTCOME_TEXT[vi.outcome] || ['·'])[0]), ' ', vi.outcome.replace('_', ' ')),
      ' ', h('button', { type: 'button', class: 'link', onclick: () => showState(vi.state) }, vi.state),
      vi.retries ? ` retried ${vi.retries}×` : '', vi.error ? h('span', { class: 'err small' }, ` ${vi.error}`) : '',
      h('span', { class: 'muted small' }, ` ${fmtTime(vi.entered_at)}${vi.exited_at ? ' → ' + fmtTime(vi.exited_at) : ''}`))));
    const t0 = new Date(v.start_date).getTime();
    fill(history, ...v.events.map((e) => h('tr', { class: /Failed|Aborted|TimedOut/.test(e.type) ? 'bad' : null },
      h('td', {}, e.id), h('td', {}, e.type), h('td', { class: 'mono' }, e.state || ownerOf(v.events, e) || ''),
      h('td', {}, `${Math.max(0, new Date(e.timestamp).getTime() - t0)} ms`), h('td', {}, fmtTime(e.timestamp)),
      h('td', {}, e.input || e.output || e.error ? h('details', {}, h('summary', {}, e.error ? `${e.error}` : e.input ? 'input' : 'output'),
        e.input ? h('pre', { class: 'json' }, pretty(e.input)) : null, e.output ? h('pre', { class: 'json' }, pretty(e.output)) : null,
        e.cause ? h('pre', { class: 'json' }, pretty(e.cause)) : null) : ''))));
    if (selected) showState(selected);
    window.__sluice.renders++;
    return v.status === 'RUNNING';
  }
  const mine = pageToken;
  const loop = async () => {
    if (mine !== pageToken) return;
    let again = true;
    try { again = await refresh(); } catch (e) { console.error(e); }
    if (again !== false && mine === pageToken) setTimeout(loop, POLL_MS);
  };
  loop();
}

// ownerOf: the state a task event belongs to (the latest entered before it).
function ownerOf(events, ev) {
  let owner = '';
  for (const e of events) {
    if (e.id > ev.id) break;
    if (e.type.endsWith('StateEntered')) owner = e.state;
  }
  return owner;
}

function legend() {
  const item = (cls, text) => h('li', {}, s('svg', { width: 44, height: 12, 'aria-hidden': 'true' }, s('line', { x1: 2, y1: 6, x2: 42, y2: 6, class: `edge ${cls}` })), ' ', text);
  return h('ul', { class: 'legend', 'aria-label': 'Legend' },
    item('kind-next', 'Next (solid)'), item('kind-choice', 'Choice rule (solid, labelled)'), item('kind-default', 'Choice default (long dashes)'),
    item('kind-catch', 'Catch (dotted)'), item('kind-next taken', 'taken in this execution (thick)'),
    h('li', {}, '✓ succeeded · ↪ caught · ✗ failed · ▶ current · ⊘ aborted · ⌛ timed out · ↻ retried'));
}

function drawGraph(g, onSelect) {
  const edges = g.edges.map((e) => s('g', { class: `edge-g kind-${e.kind}`, 'data-from': e.from, 'data-to': e.to, 'data-kind': e.kind },
    s('title', {}, `${e.from} → ${e.to} (${e.kind}${e.label ? ': ' + e.label : ''})`),
    s('path', { d: e.path, class: `edge kind-${e.kind}`, 'marker-end': 'url(#arrow)' }),
    e.kind === 'choice' || e.kind === 'default' ? s('text', { x: e.label_x + 4, y: e.label_y, class: 'edge-label' }, e.label) : null));
  const nodes = g.nodes.map((n) => {
    const grp = s('g', {
      class: `node type-${n.type}`, 'data-state': n.name, 'data-type': n.type, tabindex: 0, role: 'button', 'aria-label': `${n.name} (${n.type})`,
      onclick: () => onSelect(n.name), onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onSelect(n.name); } },
    },
    s('title', {}, `${n.name} (${n.type})${n.comment ? ': ' + n.comment : ''}${n.retry && n.retry.length ? '\nRetry on: ' + n.retry.join(', ') : ''}`),
    s('rect', { x: n.x, y: n.y, width: n.w, height: n.h, rx: n.type === 'Choice' ? 18 : 6 }),
    s('text', { x: n.x + n.w / 2, y: n.y + 16, class: 'node-name' }, n.name),
    s('text', { x: n.x + n.w / 2, y: n.y + 32, class: 'node-outcome' }, n.type));
    return grp;
  });
  return s('svg', { viewBox: `0 0 ${g.width} ${g.height}`, width: g.width, height: g.height, class: 'asl', role: 'group', 'aria-label': 'State machine graph' },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))),
    s('g', { class: 'edges' }, edges), s('g', { class: 'nodes' }, nodes));
}

// paintGraph marks each state with its outcome (class, icon and words) and
// the edges this execution took.
function paintGraph(svg, v) {
  for (const grp of svg.querySelectorAll('g.node')) {
    const name = grp.dataset.state;
    const sum = v.trace.states[name];
    const outcome = sum ? sum.outcome : 'none';
    grp.setAttribute('class', `node type-${grp.dataset.type} o-${outcome}${grp.classList.contains('selected') ? ' selected' : ''}`);
    grp.dataset.outcome = outcome;
    grp.dataset.retries = sum ? String(sum.retries) : '0';
    const icon = sum ? (OUTCOME_TEXT[sum.outcome] || ['·'])[0] : '';
    const label = sum ? `${icon} ${outcomeText(sum)}` : grp.dataset.type;
    const t = grp.querySelector('text.node-outcome');
    if (t.textContent !== label) t.textContent = label;
    grp.setAttribute('aria-label', `${name}: ${sum ? outcomeText(sum) : 'not entered'}`);
  }
  const taken = new Set(v.trace.transitions.map((t) => `${t.from}|${t.to}|${t.caught ? 'catch' : 'flow'}`));
  for (const e of svg.querySelectorAll('g.edge-g')) {
    const flow = e.dataset.kind === 'catch' ? 'catch' : 'flow';
    e.classList.toggle('taken', taken.has(`${e.dataset.from}|${e.dataset.to}|${flow}`));
  }
}

// ---- router ------------------------------------------------------------------

function render() {
  pageToken++;
  const main = document.getElementById('main');
  main.replaceChildren();
  const forget = document.getElementById('forget-key');
  if (!apiKey()) { forget.hidden = true; keyPage(main); return; }
  forget.hidden = false;
  const hash = location.hash.replace(/^#\/?/, '');
  const [page, ...rest] = hash.split('/');
  const arg = decodeURIComponent(rest.join('/'));
  if (page === 'pipelines' && arg) { document.title = `${arg} · Sluice`; pipelinePage(main, arg); }
  else if (page === 'executions' && arg) { document.title = `Execution · Sluice`; executionPage(main, arg); }
  else { document.title = 'Pipelines · Sluice'; pipelinesPage(main); }
}

window.addEventListener('hashchange', () => { render(); document.getElementById('main').focus(); });
document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('forget-key').addEventListener('click', () => { sessionStorage.removeItem(KEY_STORAGE); keyMessage = ''; render(); });
  render();
});
