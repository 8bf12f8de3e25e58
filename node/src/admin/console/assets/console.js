// mq web console: plain JavaScript over the node's JSON admin API (/api/v1), no library, no
// build step, nothing fetched from anywhere but this node. Polls every second; charts are
// inline SVG drawn from the samples this page has taken since it opened.
'use strict';

(() => {
  const API = '/api/v1';
  const POLL_MS = 1000;
  const HISTORY = 120; // samples kept per queue and topic: two minutes at one a second
  const TOKEN_KEY = 'mq.console.token';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null,
    selected: null, // queue whose big chart shows
    browsing: null, // queue shown in the browse panel
    history: new Map(), // 'queue:NAME' | 'topic:NAME' -> [{t, depth, enq, deq}]
    durables: 'unknown', // 'unsupported' once the node answered 404
    timer: null,
    polling: false,
    lastOk: 0,
  };

  // ---- token -------------------------------------------------------------------------------

  function takeTokenFromUrl() {
    const m = /(?:^|[#&])token=([^&]*)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    state.token = sessionStorage.getItem(TOKEN_KEY);
  }

  function showLogin(message) {
    $('login').classList.remove('hidden');
    $('main').classList.add('hidden');
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  function hideLogin() {
    $('login').classList.add('hidden');
    $('main').classList.remove('hidden');
  }

  // ---- API ---------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, options = {}) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(API + path, {
      method: options.method || 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: 'no-store',
    });
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const e = data && data.error;
      throw new ApiError(res.status, e ? e.code : 'http', e ? e.message : `HTTP ${res.status}`);
    }
    return data;
  }

  // ---- formatting --------------------------------------------------------------------------

  const nf = new Intl.NumberFormat('en');
  const num = (n) => (n === undefined || n === null ? '–' : nf.format(n));
  function bytes(n) {
    if (n < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let i = -1;
    do {
      v /= 1024;
      i += 1;
    } while (v >= 1024 && i < units.length - 1);
    return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
  }
  function duration(ms) {
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }
  const ago = (epochMs) => (epochMs ? `${duration(Math.max(0, Date.now() - epochMs))} ago` : '–');
  const rate = (r) => (r >= 10 ? r.toFixed(0) : r.toFixed(1));

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function notice(text, isError) {
    const n = $('notice');
    n.textContent = text;
    n.classList.toggle('error', !!isError);
    n.classList.remove('hidden');
    clearTimeout(notice.timer);
    notice.timer = setTimeout(() => n.classList.add('hidden'), isError ? 12000 : 6000);
  }

  // ---- charts ------------------------------------------------------------------------------

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  }

  /** Polyline points for `values` scaled into w x h (top padding 2px), against `max`. */
  function points(values, w, h, max) {
    if (values.length === 0) return '';
    const step = values.length > 1 ? w / (HISTORY - 1) : 0;
    const x0 = w - step * (values.length - 1);
    return values
      .map((v, i) => `${(x0 + i * step).toFixed(1)},${(h - 1 - (v / (max || 1)) * (h - 3)).toFixed(1)}`)
      .join(' ');
  }

  /** A small chart of one or more series (each {values, color}), scaled together. */
  function spark(series, w = 140, h = 28) {
    const s = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: 'spark' });
    const max = Math.max(1, ...series.flatMap((x) => x.values));
    s.append(svg('line', { x1: 0, y1: h - 0.5, x2: w, y2: h - 0.5, stroke: '#dde3e9' }));
    for (const x of series) {
      s.append(svg('polyline', {
        points: points(x.values, w, h, max), fill: 'none', stroke: x.color, 'stroke-width': 1.5,
      }));
    }
    return s;
  }

  /** A larger chart with a scale and a legend. */
  function bigChart(title, series, w = 600, h = 140) {
    const max = Math.max(1, ...series.flatMap((x) => x.values));
    const top = 8;
    const s = svg('svg', { width: w, height: h + top + 16, viewBox: `0 0 ${w} ${h + top + 16}` });
    for (const f of [0, 0.5, 1]) {
      const y = top + h - 1 - f * (h - 3);
      s.append(svg('line', { x1: 40, y1: y, x2: w, y2: y, stroke: '#eef1f4' }));
      const label = svg('text', { x: 0, y: y + 3 });
      label.textContent = f === 0 ? '0' : rate(max * f);
      s.append(label);
    }
    const g = svg('g', { transform: `translate(40,${top})` });
    for (const x of series) {
      g.append(svg('polyline', {
        points: points(x.values, w - 40, h, max), fill: 'none', stroke: x.color, 'stroke-width': 2,
      }));
    }
    s.append(g);
    const axis = svg('text', { x: 40, y: top + h + 13 });
    axis.textContent = '2 min ago';
    const now = svg('text', { x: w - 20, y: top + h + 13 });
    now.textContent = 'now';
    s.append(axis, now);
    const legend = el('div', { class: 'legend' },
      ...series.map((x) => el('span', {}, el('i', { class: 'swatch' }), x.label)));
    legend.querySelectorAll('i').forEach((i, k) => { i.style.background = series[k].color; });
    return el('div', {}, el('h3', { text: title }), s, legend);
  }

  // ---- history -----------------------------------------------------------------------------

  function record(key, sample) {
    let h = state.history.get(key);
    if (!h) {
      h = [];
      state.history.set(key, h);
    }
    h.push(sample);
    if (h.length > HISTORY + 1) h.shift();
    return h;
  }

  /** Per-second rates of counter `field` between consecutive samples. */
  function rates(h, field) {
    const out = [];
    for (let i = 1; i < h.length; i++) {
      const dt = (h[i].t - h[i - 1].t) / 1000;
      out.push(dt > 0 ? Math.max(0, h[i][field] - h[i - 1][field]) / dt : 0);
    }
    return out;
  }
  const last = (a) => (a.length ? a[a.length - 1] : 0);

  // ---- keyed table rows --------------------------------------------------------------------

  /** Keeps one <tr> per item (by key) so rows and their buttons survive each refresh. */
  function syncRows(tbody, items, key, build, update) {
    const existing = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
    let prev = null;
    for (const item of items) {
      const k = String(key(item));
      let tr = existing.get(k);
      if (!tr) {
        tr = build(item);
        tr.dataset.key = k;
      }
      existing.delete(k);
      update(tr, item);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (tr !== want) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of existing.values()) tr.remove();
  }

  function cells(tr, values) {
    values.forEach((v, i) => {
      const td = tr.children[i];
      if (v instanceof Node) {
        td.replaceChildren(v);
      } else if (td.textContent !== String(v)) {
        td.textContent = v;
      }
    });
  }

  // ---- sections ----------------------------------------------------------------------------

  function renderBroker(b) {
    document.title = `${b.name} · mq console`;
    $('broker-title').textContent = b.name;
    const role = $('role');
    role.textContent = b.role;
    role.className = `badge ${b.role}`;
    const card = (k, v, small) => el('div', { class: 'card' },
      el('div', { class: 'k', text: k }), el('div', { class: small ? 'v small' : 'v', text: v }));
    $('overview').replaceChildren(
      card('name', b.name),
      card('role', b.role),
      card('version', b.version),
      card('uptime', duration(b.uptime_ms)),
      card('transports', b.transports.length ? b.transports.join('\n') : 'none (slave)', true),
      card('stored messages', num(b.store.messages)),
      card('stored bytes', bytes(b.store.bytes)),
      card('store file', bytes(b.store.file_bytes)),
      card('commits', num(b.store.commits)),
      card('persistent', b.persistent ? 'yes' : 'no'),
      card('data dir', b.data_dir, true),
      card('pid', String(b.pid)),
    );
  }

  function renderQueues(list, now) {
    const queues = list.queues;
    $('queue-count').textContent = `(${queues.length})`;
    $('queues-empty').classList.toggle('hidden', queues.length > 0);
    const tbody = document.querySelector('#queues tbody');
    syncRows(tbody, queues, (q) => q.name, (q) => {
      const tr = el('tr');
      for (let i = 0; i < 11; i++) tr.append(el('td'));
      [1, 4, 5, 6, 7, 8, 9, 10].forEach((i) => tr.children[i].classList.add('num'));
      const actions = el('td', {}, el('div', { class: 'actions' },
        el('button', { type: 'button', text: 'Browse', 'data-action': 'browse', onclick: () => browse(q.name) }),
        el('button', { type: 'button', text: 'Send', 'data-action': 'send', onclick: () => prefillSend(q.name) }),
        el('button', { type: 'button', text: 'Purge', class: 'danger', 'data-action': 'purge', onclick: () => purge(q.name) }),
        el('button', { type: 'button', text: 'Delete', class: 'danger', 'data-action': 'delete', onclick: () => removeQueue(q.name) })));
      tr.append(actions);
      tr.children[0].addEventListener('click', () => select(q.name));
      tr.children[0].classList.add('name');
      tr.title = 'click the name for a larger chart';
      return tr;
    }, (tr, q) => {
      const h = record(`queue:${q.name}`, { t: now, depth: q.depth, enq: q.enqueued, deq: q.dequeued });
      const depths = h.map((s) => s.depth);
      const ins = rates(h, 'enq');
      const outs = rates(h, 'deq');
      tr.classList.toggle('selected', state.selected === q.name);
      cells(tr, [
        q.name, num(q.depth), spark([{ values: depths, color: '#1f6feb' }]),
        el('span', {}, spark([{ values: ins, color: '#1f6feb' }, { values: outs, color: '#8250df' }], 90),
          ` ${rate(last(ins))} / ${rate(last(outs))}`),
        num(q.consumers), num(q.producers), num(q.enqueued), num(q.dequeued), num(q.inflight),
        num(q.dead_lettered), num(q.expired),
      ]);
    });
    if (state.selected && !queues.some((q) => q.name === state.selected)) state.selected = null;
    renderQueueChart();
  }

  function renderQueueChart() {
    const box = $('queue-chart');
    if (!state.selected) {
      box.classList.add('hidden');
      return;
    }
    const h = state.history.get(`queue:${state.selected}`) || [];
    box.classList.remove('hidden');
    box.replaceChildren(
      bigChart(`${state.selected}: depth`, [{ label: 'depth', color: '#1f6feb', values: h.map((s) => s.depth) }]),
      bigChart(`${state.selected}: messages per second`, [
        { label: 'enqueued per s', color: '#1a7f37', values: rates(h, 'enq') },
        { label: 'dequeued per s', color: '#8250df', values: rates(h, 'deq') },
      ]),
    );
  }

  function select(name) {
    state.selected = state.selected === name ? null : name;
    document.querySelectorAll('#queues tbody tr').forEach((tr) =>
      tr.classList.toggle('selected', tr.dataset.key === state.selected));
    renderQueueChart();
  }

  function renderTopics(list, now) {
    const topics = list.topics;
    $('topic-count').textContent = `(${topics.length})`;
    $('topics-empty').classList.toggle('hidden', topics.length > 0);
    syncRows(document.querySelector('#topics tbody'), topics, (t) => t.name, () => {
      const tr = el('tr');
      for (let i = 0; i < 8; i++) tr.append(el('td', { class: i === 0 || i === 2 ? '' : 'num' }));
      return tr;
    }, (tr, t) => {
      const h = record(`topic:${t.name}`, { t: now, enq: t.enqueued });
      const ins = rates(h, 'enq');
      cells(tr, [
        t.name, num(t.subscribers),
        el('span', {}, spark([{ values: ins, color: '#1a7f37' }], 90), ` ${rate(last(ins))}`),
        num(t.enqueued), num(t.dispatched), num(t.forwarded), num(t.pending || 0), num(t.discarded || 0),
      ]);
    });
  }

  function renderConnections(list) {
    const conns = list.connections;
    $('connection-count').textContent = `(${conns.length})`;
    $('connections-empty').classList.toggle('hidden', conns.length > 0);
    syncRows(document.querySelector('#connections tbody'), conns, (c) => c.id, () => {
      const tr = el('tr');
      for (let i = 0; i < 7; i++) tr.append(el('td', { class: i === 0 || i === 5 ? 'num' : '' }));
      return tr;
    }, (tr, c) => cells(tr, [
      String(c.id), c.remote, c.kind, c.version || '–', c.broker || '–', num(c.subscriptions), ago(c.since_ms),
    ]));
  }

  function renderConnectors(list) {
    const cs = list.connectors;
    $('connector-count').textContent = `(${cs.length})`;
    if (cs.length === 0) {
      $('connectors').replaceChildren(el('p', { class: 'empty', text: 'no network connectors' }));
      return;
    }
    $('connectors').replaceChildren(...cs.map((c) => {
      const rows = c.peers.map((p) => el('tr', {},
        el('td', { text: p.uri }),
        el('td', {}, el('span', { class: `badge ${p.state}`, text: p.state })),
        el('td', { text: p.remote_broker || '–' }),
        el('td', { text: ago(p.since_ms) }),
        el('td', { class: 'num', text: num(p.forwarded) }),
        el('td', { class: 'num', text: num(p.reconnect_attempts) }),
        el('td', { text: p.last_error || '' })));
      const table = el('table', {},
        el('thead', {}, el('tr', {}, ...['peer', 'state', 'remote broker', 'since', 'forwarded', 'attempts', 'last error']
          .map((h, i) => el('th', { class: i === 4 || i === 5 ? 'num' : '', text: h })))),
        el('tbody', {}, ...rows));
      const options = Object.entries(c.options || {}).map(([k, v]) => `${k}=${v}`).join(' ');
      return el('div', { class: 'connector' },
        el('strong', { text: c.name }), el('div', { class: 'uri', text: c.uri }),
        options ? el('div', { class: 'uri', text: options }) : null,
        rows.length ? table : el('p', { class: 'empty', text: 'no peers yet' }));
    }));
  }

  async function refreshDurables() {
    if (state.durables === 'unsupported') return;
    try {
      const d = await api('/subscriptions');
      const subs = (d && d.subscriptions) || [];
      state.durables = 'ok';
      if (subs.length === 0) {
        $('durables').replaceChildren(el('p', { class: 'empty', text: 'none' }));
        return;
      }
      $('durables').replaceChildren(el('table', {},
        el('thead', {}, el('tr', {}, ...['client id', 'name', 'topic', 'selector', 'pending', 'active']
          .map((h) => el('th', { text: h })))),
        el('tbody', {}, ...subs.map((s) => el('tr', {},
          ...[s.client_id, s.name, s.topic, s.selector || '', num(s.pending), s.active ? 'yes' : 'no']
            .map((v) => el('td', { text: v })))))));
    } catch (e) {
      if (e.status === 404) {
        state.durables = 'unsupported';
        $('durables').replaceChildren(el('p', {
          class: 'empty', text: 'none (this node does not report durable subscriptions)',
        }));
      }
    }
  }

  // ---- actions -----------------------------------------------------------------------------

  function prefillSend(name) {
    $('send-queue').value = name;
    $('send-body').focus();
  }

  function parseHeaders(text) {
    const headers = {};
    for (const line of text.split('\n')) {
      const t = line.trim();
      if (!t) continue;
      const i = t.indexOf('=');
      if (i <= 0) throw new Error(`header line '${t}' is not key=value`);
      headers[t.slice(0, i).trim()] = t.slice(i + 1).trim();
    }
    return headers;
  }

  async function send(ev) {
    ev.preventDefault();
    const queue = $('send-queue').value.trim().replace(/^\/queue\//, '');
    try {
      const r = await api(`/queues/${encodeURIComponent(queue)}/messages`, {
        method: 'POST',
        body: {
          body: $('send-body').value,
          headers: parseHeaders($('send-headers').value),
          persistent: $('send-persistent').checked,
        },
      });
      notice(`sent ${r.message_id} to ${r.queue}${r.persistent ? ' (stored)' : ''}`);
      poll();
      if (state.browsing === queue) browse(queue);
    } catch (e) {
      notice(`send failed: ${e.message}`, true);
    }
  }

  async function browse(name) {
    state.browsing = name;
    $('browse-title').textContent = `(${name})`;
    try {
      const r = await api(`/queues/${encodeURIComponent(name)}/messages?limit=100`);
      renderBrowse(r);
    } catch (e) {
      $('browse').replaceChildren(el('p', { class: 'error', text: e.message }));
    }
  }

  function renderBrowse(r) {
    if (r.messages.length === 0) {
      $('browse').replaceChildren(el('p', { class: 'empty', text: `${r.queue} is empty` }));
      return;
    }
    const hidden = new Set(['destination', 'message-id', 'content-length']);
    const rows = r.messages.map((m) => {
      const original = m.headers['original-destination'];
      const shown = Object.entries(m.headers).filter(([k]) => !hidden.has(k)).map(([k, v]) => `${k}:${v}`);
      return el('tr', { 'data-id': m.message_id },
        el('td', { text: m.message_id }),
        el('td', { class: 'body', text: m.body, title: m.body }),
        el('td', { class: 'headers', text: shown.join('  ') }),
        el('td', { class: 'num', text: bytes(m.size) }),
        el('td', { class: 'num', text: String(m.redeliveries) }),
        el('td', { text: m.inflight ? 'in flight' : (m.persistent ? 'stored' : 'memory') }),
        el('td', {}, original
          ? el('button', {
            type: 'button', text: `Move to ${original}`, 'data-action': 'move',
            onclick: () => moveBack(r.queue, m.message_id, original),
          })
          : null));
    });
    $('browse').replaceChildren(el('table', {},
      el('thead', {}, el('tr', {}, ...['message id', 'body', 'headers', 'size', 'redelivered', 'state', '']
        .map((h, i) => el('th', { class: i === 3 || i === 4 ? 'num' : '', text: h })))),
      el('tbody', {}, ...rows)));
  }

  async function purge(name) {
    if (!confirm(`Remove every waiting message of ${name}?`)) return;
    try {
      const r = await api(`/queues/${encodeURIComponent(name)}/purge`, { method: 'POST' });
      notice(`purged ${name}: ${num(r.removed)} removed`);
      poll();
      if (state.browsing === name) browse(name);
    } catch (e) {
      notice(`purge failed: ${e.message}`, true);
    }
  }

  async function removeQueue(name) {
    if (!confirm(`Delete queue ${name} and its messages?`)) return;
    try {
      const r = await api(`/queues/${encodeURIComponent(name)}`, { method: 'DELETE' });
      notice(`deleted ${name}: ${num(r.removed)} messages removed`);
      if (state.browsing === name) {
        state.browsing = null;
        $('browse').replaceChildren(el('p', { class: 'empty', text: `${name} was deleted` }));
      }
      poll();
    } catch (e) {
      notice(`delete failed: ${e.message}`, true);
    }
  }

  async function moveBack(queue, id, to) {
    try {
      const r = await api(`/queues/${encodeURIComponent(queue)}/messages/${encodeURIComponent(id)}/move`, {
        method: 'POST', body: { to },
      });
      notice(`moved ${r.message_id} from ${r.from} to ${r.to}`);
      browse(queue);
      poll();
    } catch (e) {
      notice(`move failed: ${e.message}`, true);
    }
  }

  // ---- polling -----------------------------------------------------------------------------

  async function poll() {
    if (state.polling) return; // a slow node: skip a beat rather than pile requests up
    state.polling = true;
    const now = Date.now();
    try {
      const broker = await api('/broker');
      renderBroker(broker);
      hideLogin();
      const optional = (p) => p.catch((e) => {
        if (e.status === 401) throw e;
        return null; // a slave answers 503 for broker data
      });
      const [queues, topics, connections, connectors] = await Promise.all([
        optional(api('/queues')), optional(api('/topics')),
        optional(api('/connections')), optional(api('/network-connectors')),
      ]);
      renderQueues(queues || { queues: [] }, now);
      renderTopics(topics || { topics: [] }, now);
      renderConnections(connections || { connections: [] });
      renderConnectors(connectors || { connectors: [] });
      if (state.durables === 'unknown') refreshDurables();
      state.lastOk = now;
      $('live').classList.remove('stale');
      $('footer').textContent = `mq web console · polls the admin API every second · updated ${new Date(now).toLocaleTimeString()}`;
    } catch (e) {
      if (e.status === 401) {
        stop();
        showLogin(state.token ? 'that token was refused' : '');
        return;
      }
      $('live').classList.add('stale');
      $('footer').textContent = `cannot reach the node: ${e.message}; retrying every second`;
    } finally {
      state.polling = false;
    }
  }

  function start() {
    stop();
    poll();
    state.timer = setInterval(poll, POLL_MS);
  }

  function stop() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  document.addEventListener('DOMContentLoaded', () => {
    takeTokenFromUrl();
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.token = $('token').value.trim();
      sessionStorage.setItem(TOKEN_KEY, state.token);
      $('token').value = '';
      start();
    });
    $('signout').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = null;
      stop();
      showLogin('');
    });
    $('send-form').addEventListener('submit', send);
    window.addEventListener('hashchange', () => {
      takeTokenFromUrl();
      start();
    });
    start();
  });
})();
