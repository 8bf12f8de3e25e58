// mqctl cluster console: plain JavaScript, no library. Polls mqctl's /api/cluster every
// second (mqctl asks the nodes) and draws the brokers and their links as an SVG graph.
'use strict';

(() => {
  const POLL_MS = 1000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const COLORS = { up: '#1a7f37', down: '#b35900', missing: '#c62828', unknown: '#8a96a3' };
  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat('en');
  const num = (n) => (n === null || n === undefined ? '–' : nf.format(n));
  let polling = false;

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function svg(tag, attrs = {}, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return '–';
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }
  const badge = (cls, text) => el('span', { class: `badge ${cls}`, text });
  const serving = (n) => n.alive && (n.role === 'master' || n.role === 'standalone');

  /** Brokers (HA groups) in manifest order, with their members. */
  function brokers(nodes) {
    const by = new Map();
    for (const n of nodes) {
      if (!by.has(n.group)) by.set(n.group, []);
      by.get(n.group).push(n);
    }
    return [...by.entries()].map(([name, members]) => {
      const state = members.some(serving) ? 'up' : members.some((m) => m.alive) ? 'down' : 'missing';
      return { name, members, state };
    });
  }

  function renderGraph(status) {
    const bs = brokers(status.nodes);
    const W = 860;
    const H = bs.length > 2 ? 380 : 220;
    const R = 36;
    const cx = W / 2;
    const cy = H / 2;
    const ring = Math.min(W, H) / 2 - R - 34;
    const pos = new Map();
    bs.forEach((b, i) => {
      if (bs.length === 1) pos.set(b.name, { x: cx, y: cy });
      else if (bs.length === 2) pos.set(b.name, { x: cx + (i === 0 ? -200 : 200), y: cy });
      else {
        const a = -Math.PI / 2 + (2 * Math.PI * i) / bs.length;
        pos.set(b.name, { x: cx + ring * 1.7 * Math.cos(a), y: cy + ring * Math.sin(a) });
      }
    });
    const s = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'brokers and links' });
    const defs = svg('defs');
    for (const [state, color] of Object.entries(COLORS)) {
      for (const [id, d] of [[`end-${state}`, 'M0,0 L10,5 L0,10 z'], [`start-${state}`, 'M10,0 L0,5 L10,10 z']]) {
        const m = svg('marker', { id, viewBox: '0 0 10 10', refX: id.startsWith('end') ? 10 : 0, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto' });
        m.append(svg('path', { d, fill: color }));
        defs.append(m);
      }
    }
    s.append(defs);
    const pairs = new Set(status.links.map((l) => `${l.from}>${l.to}`));
    for (const l of status.links) {
      const a = pos.get(l.from);
      const b = pos.get(l.to);
      if (!a || !b) continue;
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const len = Math.hypot(dx, dy) || 1;
      const ux = dx / len;
      const uy = dy / len;
      // Two one-way links between the same brokers are drawn side by side.
      const off = pairs.has(`${l.to}>${l.from}`) && !l.duplex ? 6 : 0;
      const ox = -uy * off;
      const oy = ux * off;
      const line = svg('line', {
        class: 'link', 'data-link': l.name, 'data-state': l.state,
        x1: a.x + ux * R + ox, y1: a.y + uy * R + oy, x2: b.x - ux * (R + 2) + ox, y2: b.y - uy * (R + 2) + oy,
        stroke: COLORS[l.state] || COLORS.unknown, 'stroke-width': 2.5,
        'marker-end': `url(#end-${l.state})`,
      });
      if (l.duplex) line.setAttribute('marker-start', `url(#start-${l.state})`);
      if (l.state === 'missing') line.setAttribute('stroke-dasharray', '6 4');
      const title = svg('title', {}, `${l.name}: ${l.from} → ${l.to}${l.duplex ? ' (duplex)' : ''}, ${l.state}, ${l.peers_up}/${l.peers_total} peers up`);
      line.append(title);
      s.append(line);
    }
    for (const b of bs) {
      const p = pos.get(b.name);
      const g = svg('g', { class: 'broker', 'data-broker': b.name, 'data-state': b.state });
      g.append(svg('circle', { cx: p.x, cy: p.y, r: R, fill: '#fff', stroke: COLORS[b.state], 'stroke-width': 3 }));
      g.append(svg('text', { x: p.x, y: p.y + 4, 'text-anchor': 'middle', 'font-weight': 600 }, b.name));
      const roles = b.members.map((m) => (b.members.length > 1 ? `${m.name} ${m.alive ? m.role || '?' : 'down'}` : (m.alive ? m.role || '?' : 'down')));
      roles.forEach((r, i) => g.append(svg('text', { class: 'sub', x: p.x, y: p.y + R + 14 + i * 12, 'text-anchor': 'middle' }, r)));
      g.append(svg('title', {}, `${b.name}: ${b.members.map((m) => `${m.name} ${m.role || 'not answering'}`).join(', ')}`));
      s.append(g);
    }
    $('graph').replaceChildren(s);
  }

  function renderNodes(status) {
    $('node-count').textContent = `(${status.nodes.length})`;
    $('nodes').tBodies[0].replaceChildren(...status.nodes.map((n) => el('tr', { 'data-node': n.name },
      el('td', { text: n.name }),
      el('td', { text: n.group }),
      el('td', {}, n.role ? badge(n.role, n.role) : badge('unknown', 'unknown')),
      el('td', {}, n.alive ? badge('alive', 'alive') : badge('dead', 'down')),
      el('td', { class: 'num', text: n.pid ? String(n.pid) : '–' }),
      el('td', { text: duration(n.uptime_ms) }),
      el('td', { class: 'num', text: num(n.queues) }),
      el('td', { class: 'num', text: num(n.messages) }),
      el('td', { text: n.links_total ? `${n.links_up}/${n.links_total}` : '–' }),
      el('td', { class: 'mono', text: n.transport }),
      el('td', { class: 'mono', text: n.admin }))));
  }

  function renderLinks(status) {
    $('link-count').textContent = `(${status.links.length})`;
    $('links-empty').classList.toggle('hidden', status.links.length > 0);
    $('links').tBodies[0].replaceChildren(...status.links.map((l) => el('tr', { 'data-link': l.name },
      el('td', { text: l.name }), el('td', { text: l.from }), el('td', { text: l.to }),
      el('td', { text: l.duplex ? 'yes' : 'no' }), el('td', { class: 'num', text: String(l.ttl) }),
      el('td', {}, badge(l.state, l.state)), el('td', { text: `${l.peers_up}/${l.peers_total}` }),
      el('td', { class: 'mono', text: l.uri }))));
  }

  function renderQueues(view) {
    const nodes = view.status.nodes.map((n) => n.name);
    const depth = new Map(view.queues.map((q) => [`${q.node}\u0000${q.name}`, q.depth]));
    $('queue-count').textContent = `(${view.totals.length})`;
    $('queues-empty').classList.toggle('hidden', view.totals.length > 0);
    const table = $('queues');
    table.tHead.replaceChildren(el('tr', {}, el('th', { text: 'queue' }),
      ...nodes.map((n) => el('th', { class: 'num', text: `${n} depth` })),
      ...['total depth', 'enqueued', 'dequeued', 'forwarded', 'consumers', 'dead-lettered']
        .map((h) => el('th', { class: 'num', text: h }))));
    const cell = (v, node) => {
      const td = el('td', { class: v ? 'num' : 'num zero', text: v === undefined ? '–' : num(v) });
      if (node) td.setAttribute('data-node', node);
      return td;
    };
    table.tBodies[0].replaceChildren(...view.totals.map((t) => {
      const tr = el('tr', { 'data-queue': t.queue }, el('td', { text: t.queue }),
        ...nodes.map((n) => cell(depth.get(`${n}\u0000${t.queue}`), n)));
      const total = cell(t.depth);
      total.classList.add('total');
      tr.append(total, cell(t.enqueued), cell(t.dequeued), cell(t.forwarded), cell(t.consumers), cell(t.dead_lettered));
      return tr;
    }));
    const sum = (f) => view.totals.reduce((a, t) => a + t[f], 0);
    const perNode = (n) => view.queues.filter((q) => q.node === n).reduce((a, q) => a + q.depth, 0);
    table.tFoot.replaceChildren(view.totals.length ? el('tr', {}, el('td', { text: 'all queues' }),
      ...nodes.map((n) => cell(view.down.includes(n) ? undefined : perNode(n))),
      cell(sum('depth')), cell(sum('enqueued')), cell(sum('dequeued')), cell(sum('forwarded')),
      cell(sum('consumers')), cell(sum('dead_lettered'))) : '');
  }

  function render(view) {
    const st = view.status;
    document.title = `${st.name} · mq cluster console`;
    $('cluster').textContent = st.name;
    const up = st.links.filter((l) => l.state === 'up').length;
    const stored = st.nodes.reduce((a, n) => a + (n.messages || 0), 0);
    $('summary').textContent = `${st.nodes.length} nodes · ${st.nodes.filter(serving).length} serving · ` +
      `${up}/${st.links.length} links up · ${num(stored)} messages stored`;
    renderGraph(st);
    renderNodes(st);
    renderLinks(st);
    renderQueues(view);
  }

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const res = await fetch('/api/cluster', { cache: 'no-store' });
      const data = await res.json();
      if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
      render(data);
      $('error').classList.add('hidden');
      $('live').classList.remove('stale');
      $('footer').textContent = `mqctl console · reads every node's admin API each second · updated ${new Date(data.at_ms).toLocaleTimeString()}` +
        (data.down.length ? ` · not answering: ${data.down.join(', ')}` : '');
    } catch (e) {
      $('live').classList.add('stale');
      $('error').textContent = `cannot read the cluster: ${e.message}`;
      $('error').classList.remove('hidden');
    } finally {
      polling = false;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    poll();
    setInterval(poll, POLL_MS);
  });
})();
