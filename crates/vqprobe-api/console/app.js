/* vqprobe NOC console.
 *
 * A single-page app on the public /v1 API (the same requests any client makes; no
 * private endpoint). Plain ES2020, no build step; charts by uPlot (vendored). Pages:
 * "/" overview, "/calls" the list, "/calls/<id>" one call. The API key, when the probe
 * wants one, is asked once and kept in sessionStorage (this tab only), and sent as
 * "Authorization: Bearer"; it never appears in a URL. Everything from the API is put in
 * the page as text (textContent), never as HTML.
 */
'use strict';
(function () {
  const KEY_STORE = 'vqprobe.apiKey';
  const AUTH_REQUIRED = (document.querySelector('meta[name="vqprobe-auth"]') || {}).content === 'key';
  /** MOS below this is a poor call (the API's poor_call_ratio uses the same line). */
  const POOR_MOS = 3.1;
  /** A max_mos bound meaning "below x": MOS figures are stored rounded to 6 decimals. */
  const below = (x) => Math.round((x - 5e-7) * 1e7) / 1e7;
  const BANDS = [
    { label: '< 2.6', min: null, max: below(2.6), cls: 'bad' },
    { label: '2.6–3.1', min: 2.6, max: below(3.1), cls: 'bad' },
    { label: '3.1–3.6', min: 3.1, max: below(3.6), cls: 'warn' },
    { label: '3.6–4.0', min: 3.6, max: below(4.0), cls: 'good' },
    { label: '4.0–4.3', min: 4.0, max: below(4.3), cls: 'good' },
    { label: '≥ 4.3', min: 4.3, max: null, cls: 'good' },
  ];
  const HOUR = 3600e3;
  const MIN5 = 300e3;
  const COLORS = {
    text: '#e6edf3', muted: '#8b9bab', grid: '#24323f', accent: '#58a6ff',
    good: '#4cc38a', warn: '#e3b341', bad: '#f85149', violet: '#bc8cff',
  };
  const LIVE_MS = 5000;
  const OVERVIEW_MS = 30000;

  const main = document.getElementById('main');
  const banner = document.getElementById('banner');
  const forgetBtn = document.getElementById('forget-key');
  const healthEl = document.getElementById('health');

  // ------------------------------------------------------------------ DOM helpers

  /** Builds an element; strings become text nodes (never HTML). */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid == null || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  const byId = (id) => document.getElementById(id);

  function setText(id, text, raw) {
    const el = byId(id);
    if (!el) return;
    el.textContent = text;
    if (raw !== undefined) el.dataset.v = raw === null ? 'null' : String(raw);
  }

  // ------------------------------------------------------------------ formatting

  const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
  const fmtMos = (x) => (isNum(x) ? x.toFixed(2) : '–');
  const fmtPct = (ratio, d = 2) => (isNum(ratio) ? (ratio * 100).toFixed(d) + ' %' : '–');
  const fmtMs = (x, d = 1) => (isNum(x) ? x.toFixed(d) + ' ms' : '–');
  const fmtInt = (x) => (isNum(x) ? Math.round(x).toLocaleString('en-US') : '–');
  const mosClass = (x) => (!isNum(x) ? 'na' : x < POOR_MOS ? 'bad' : x < 3.6 ? 'warn' : 'good');

  function fmtDuration(s) {
    if (!isNum(s)) return '–';
    const t = Math.round(s);
    const hh = Math.floor(t / 3600);
    const mm = Math.floor((t % 3600) / 60);
    const ss = String(t % 60).padStart(2, '0');
    return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
  }

  /** RFC 3339 UTC → "YYYY-MM-DD HH:MM:SS" (UTC, as the API's day windows are). */
  function fmtTime(iso, withDate = true) {
    if (!iso) return '–';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    const s = d.toISOString();
    return withDate ? s.slice(0, 10) + ' ' + s.slice(11, 19) : s.slice(11, 19);
  }

  const iso = (ms) => new Date(ms).toISOString();

  /** A table cell holding a figure: the text shown, the raw API value in data-v. */
  function numCell(raw, text, cls) {
    return h('td', { class: 'num' + (cls ? ' ' + cls : ''), dataset: { v: raw == null ? 'null' : String(raw) } }, text);
  }

  function badge(text, cls) {
    return h('span', { class: 'badge ' + (cls || '') }, text);
  }

  function flags(c) {
    return [
      c.one_way_audio ? badge('one-way', 'flag') : null,
      c.fax ? badge('fax', 'flag') : null,
    ];
  }

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  const apiKey = () => sessionStorage.getItem(KEY_STORE);

  /** One request to the probe's API, with the key when there is one. */
  async function api(path, opts = {}) {
    const headers = { Accept: 'application/json' };
    const key = apiKey();
    if (key) headers.Authorization = 'Bearer ' + key;
    let body;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    let r;
    try {
      r = await fetch(path, { method: opts.method || 'GET', headers, body, cache: 'no-store', signal: opts.signal });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'cannot reach the probe (' + (e && e.message) + ')');
    }
    if (!r.ok) {
      let code = 'http_' + r.status;
      let msg = r.statusText || 'request failed';
      try {
        const j = await r.json();
        code = j.error.code;
        msg = j.error.message;
      } catch (_) { /* not the API's error shape */ }
      const err = new ApiError(r.status, code, msg);
      if (r.status === 401) unauthorized();
      throw err;
    }
    if (opts.raw) return r;
    const ct = r.headers.get('content-type') || '';
    return ct.includes('json') ? r.json() : r.text();
  }

  function qs(params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v != null && v !== '') p.set(k, String(v));
    const s = p.toString();
    return s ? '?' + s : '';
  }

  /** Number of calls matching a GET /v1/calls filter (its `total`). */
  async function countCalls(filter, signal) {
    const r = await api('/v1/calls' + qs({ ...filter, page_size: 1 }), { signal });
    return r.total;
  }

  /** Runs async tasks, at most `n` at a time (browsers open 6 connections per host). */
  async function pool(tasks, n = 6) {
    const out = new Array(tasks.length);
    let next = 0;
    async function worker() {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]();
      }
    }
    await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, worker));
    return out;
  }

  // ------------------------------------------------------------------ errors, key

  function showBanner(msg) {
    banner.textContent = msg;
    banner.hidden = false;
  }

  function hideBanner() {
    banner.hidden = true;
    banner.textContent = '';
  }

  let keyFormShown = false;

  /** A 401: the key is missing or refused. Ask (once) for a new one. */
  function unauthorized() {
    if (keyFormShown) return;
    const had = apiKey();
    sessionStorage.removeItem(KEY_STORE);
    showKeyForm(had
      ? 'The probe refused this key (401 Unauthorized). Check the key and enter it again.'
      : null);
  }

  function handleError(err) {
    if (!err || err.name === 'AbortError' || (err instanceof ApiError && err.status === 401)) return;
    if (err instanceof ApiError) {
      showBanner(`API error ${err.status || ''} ${err.code}: ${err.message}`.replace('  ', ' '));
    } else {
      showBanner('Console error: ' + (err && err.message ? err.message : String(err)));
      throw err;
    }
  }

  function showKeyForm(message) {
    stopView();
    keyFormShown = true;
    forgetBtn.hidden = true;
    const input = h('input', {
      type: 'password', id: 'key-input', name: 'key', autocomplete: 'off',
      placeholder: 'API key', required: true, 'aria-label': 'API key',
    });
    const error = h('p', { class: 'error-text', id: 'key-error', role: 'alert', hidden: !message }, message || '');
    const form = h('form', { id: 'key-form' }, input, h('button', { class: 'primary', type: 'submit' }, 'Use key'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORE, key);
      keyFormShown = false;
      try {
        await api('/v1/analytics?days=7');
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) {
          keyFormShown = true;
          error.textContent = err.message;
          error.hidden = false;
        }
        return;
      }
      route();
    });
    main.replaceChildren(h('section', { class: 'panel keybox', id: 'keybox' },
      h('h1', null, 'API key'),
      h('p', { class: 'muted' },
        'This probe\'s API needs a key. It is kept for this browser tab only and sent as the ',
        h('span', { class: 'mono' }, 'Authorization: Bearer'), ' header.'),
      form, error));
    input.focus();
  }

  // ------------------------------------------------------------------ views

  /** The running page: its timers, charts and requests, all stopped on navigation. */
  let view = null;

  function newView() {
    const v = {
      alive: true,
      timers: [],
      charts: new Map(),
      observers: [],
      abort: new AbortController(),
      every(ms, fn) {
        const t = setInterval(() => {
          if (document.visibilityState === 'visible') fn().catch(handleError);
        }, ms);
        v.timers.push(t);
      },
    };
    return v;
  }

  function stopView() {
    if (!view) return;
    view.alive = false;
    view.timers.forEach(clearInterval);
    view.observers.forEach((o) => o.disconnect());
    view.charts.forEach((c) => c.destroy());
    view.abort.abort();
    view = null;
  }

  function route() {
    stopView();
    hideBanner();
    if (AUTH_REQUIRED && !apiKey()) {
      showKeyForm(null);
      return;
    }
    keyFormShown = false;
    forgetBtn.hidden = !apiKey();
    const path = location.pathname;
    let page;
    let nav;
    if (path === '/') {
      page = overviewPage;
      nav = 'overview';
    } else if (path === '/calls' || path === '/calls/') {
      page = callsPage;
      nav = 'calls';
    } else if (path.startsWith('/calls/')) {
      page = callPage;
      nav = 'calls';
    } else {
      page = notFoundPage;
    }
    for (const a of document.querySelectorAll('.top nav a')) {
      a.classList.toggle('active', a.dataset.page === nav);
    }
    view = newView();
    main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    page(view).catch(handleError);
  }

  function navigate(href) {
    history.pushState(null, '', href);
    route();
    window.scrollTo(0, 0);
  }

  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[data-nav]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', route);
  forgetBtn.addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORE);
    route();
  });

  async function notFoundPage() {
    document.title = 'Not found · vqprobe';
    main.replaceChildren(h('section', { class: 'panel' },
      h('h1', null, 'No such page'),
      h('p', null, 'The console has ', h('a', { href: '/', 'data-nav': true }, 'the overview'),
        ', ', h('a', { href: '/calls', 'data-nav': true }, 'the call list'), ' and one page per call.')));
  }

  // ------------------------------------------------------------------ health

  async function pollHealth() {
    try {
      const r = await fetch('/healthz', { cache: 'no-store' });
      const j = await r.json();
      healthEl.className = 'health ' + (j.status === 'ok' ? 'ok' : 'down');
      healthEl.textContent = `${j.status} · vqprobe ${j.version} · capture ${j.capture}` +
        (j.last_call_at ? ` · last call ${fmtTime(j.last_call_at)} UTC` : '');
    } catch (_) {
      healthEl.className = 'health down';
      healthEl.textContent = 'probe unreachable';
    }
  }

  // ------------------------------------------------------------------ charts

  const axisStyle = {
    stroke: COLORS.muted,
    grid: { stroke: COLORS.grid, width: 1 },
    ticks: { stroke: COLORS.grid, width: 1 },
    font: '12px system-ui, sans-serif',
  };
  const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');
  /** Time axis labels, 24-hour UTC; seconds only when ticks are less than a minute apart. */
  const timeAxis = {
    ...axisStyle,
    space: 80, // px between ticks: room for "HH:MM:SS"
    values: (u, splits, axis, space, incr) => splits.map((t) => {
      const s = new Date(t * 1e3).toISOString();
      return incr < 60 ? s.slice(11, 19) : s.slice(11, 16);
    }),
  };

  /** Creates the chart `id` in `container`, or gives the existing one new data. */
  function chart(v, id, container, opts, data) {
    const old = v.charts.get(id);
    if (old && old.root.parentNode === container) {
      old.setData(data);
      return old;
    }
    if (old) old.destroy();
    const width = Math.max(260, container.clientWidth || 600);
    const u = new uPlot({ ...opts, width, height: opts.height || 200 }, data, container);
    v.charts.set(id, u);
    const ro = new ResizeObserver(() => {
      const w = container.clientWidth;
      if (w && Math.abs(w - u.width) > 2) u.setSize({ width: w, height: u.height });
    });
    ro.observe(container);
    v.observers.push(ro);
    return u;
  }

  const bars = (opts) => uPlot.paths.bars(opts);

  /** Shades MOS below the poor line, so a bad interval drops into red. */
  function poorBand(u) {
    const ctx = u.ctx;
    const top = u.valToPos(POOR_MOS, 'mos', true);
    const bottom = u.valToPos(1, 'mos', true);
    ctx.save();
    ctx.fillStyle = 'rgba(248,81,73,0.13)';
    ctx.fillRect(u.bbox.left, top, u.bbox.width, bottom - top);
    ctx.restore();
  }

  // ------------------------------------------------------------------ overview

  function tile(id, label, sub) {
    return h('section', { class: 'panel tile', id: 'tile-' + id },
      h('div', { class: 'label' }, label),
      h('div', { class: 'value', id: id }, '–'),
      h('div', { class: 'sub', id: id + '-sub' }, sub || ''));
  }

  function panel(id, title, ...body) {
    return h('section', { class: 'panel', id }, h('div', { class: 'panel-head' }, h('h2', null, title)), ...body);
  }

  async function overviewPage(v) {
    document.title = 'Overview · vqprobe';
    const params = new URLSearchParams(location.search);
    let days = ['7', '30', '90'].includes(params.get('days')) ? params.get('days') : '7';
    const daysSel = h('select', { id: 'rollup-days', 'aria-label': 'Window of the MNO and agent tables' },
      ['7', '30', '90'].map((d) => h('option', { value: d, selected: d === days }, `last ${d} days`)));
    main.replaceChildren(
      h('div', { class: 'page-head' },
        h('h1', null, 'Overview'),
        h('span', { class: 'muted', id: 'updated' }),
        h('span', { class: 'spacer' }),
        h('label', { class: 'muted' }, 'MNO and agent tables: ', daysSel)),
      h('div', { class: 'grid tiles' },
        tile('active-calls', 'Active calls', 'now'),
        tile('calls-1h', 'Calls, last hour'),
        tile('calls-24h', 'Calls, last 24 h'),
        tile('mos-24h', 'Average MOS, 24 h'),
        tile('poor-24h', 'Poor calls, 24 h', 'MOS below 3.1'),
        tile('drops', 'Capture drops', 'since start')),
      h('div', { class: 'grid two' },
        panel('calls-day', 'Calls per hour and poor-call ratio, last 24 h', h('div', { class: 'chart', id: 'chart-day' })),
        panel('calls-hour', 'Calls per 5 minutes and average MOS, last hour', h('div', { class: 'chart', id: 'chart-hour' }))),
      h('div', { class: 'grid two' },
        panel('mos-dist', 'MOS distribution (share of scored calls)', h('div', { class: 'chart', id: 'chart-dist' }),
          h('div', { class: 'table-wrap' }, h('table', { id: 'dist-table' }))),
        panel('poor-calls', 'Poor calls, last 24 h', h('div', { class: 'table-wrap', id: 'poor-list' }))),
      h('div', { class: 'grid two wide' },
        panel('worst-mno', 'MNOs, worst first', h('div', { class: 'table-wrap', id: 'mno-table' })),
        panel('worst-agents', 'Agents, worst first', h('div', { class: 'table-wrap', id: 'agent-table' }))),
      panel('capture', 'Capture health', h('div', { id: 'capture-body' })));

    const sorts = { mno: { key: 'p10_mos', dir: 1 }, agent: { key: 'p10_mos', dir: 1 } };
    const rollups = { mno: [], agent: [] };
    daysSel.addEventListener('change', () => {
      days = daysSel.value;
      history.replaceState(null, '', days === '7' ? '/' : '/?days=' + days);
      loadRollups().catch(handleError);
    });

    async function loadTraffic() {
      const now = Date.now();
      const dayStart = Math.floor(now / HOUR) * HOUR - 23 * HOUR;
      const hourStart = Math.floor(now / MIN5) * MIN5 - 11 * MIN5;
      const ops = [
        { operation: 'count', column: 'call_id', alias: 'calls' },
        { operation: 'count', column: 'mos', alias: 'scored' },
        { operation: 'avg', column: 'mos', alias: 'avg_mos' },
      ];
      const q = (name, start, end, step) => ({
        name, table: 'calls', operations: ops,
        timeRange: { start: iso(start), end: iso(end), ...(step ? { step } : {}) },
      });
      const [res, poorHours, poor24] = await Promise.all([
        api('/v1/analytics', {
          method: 'POST', signal: v.abort.signal,
          body: { queries: [
            q('day', dayStart, dayStart + 24 * HOUR, 'hour'),
            q('hour', hourStart, hourStart + 12 * MIN5, 'minute'),
            // Open-ended like the list's date_from (a replay may date calls ahead).
            q('last24h', now - 24 * HOUR, now + HOUR),
            q('last1h', now - HOUR, now + HOUR),
          ] },
        }),
        pool(Array.from({ length: 24 }, (_, i) => () => countCalls({
          date_from: iso(dayStart + i * HOUR), date_to: iso(dayStart + (i + 1) * HOUR - 1), max_mos: below(POOR_MOS),
        }, v.abort.signal))),
        countCalls({ date_from: iso(now - 24 * HOUR), max_mos: below(POOR_MOS) }, v.abort.signal),
      ]);
      if (!v.alive) return;
      const by = Object.fromEntries(res.map((r) => [r.name, r.result]));
      const total = (name) => by[name][0] || { calls: 0, scored: 0, avg_mos: null };
      const t24 = total('last24h');
      const t1 = total('last1h');
      setText('calls-1h', fmtInt(t1.calls), t1.calls);
      setText('calls-1h-sub', t1.scored ? `avg MOS ${fmtMos(t1.avg_mos)}` : 'no scored call');
      setText('calls-24h', fmtInt(t24.calls), t24.calls);
      setText('calls-24h-sub', `${fmtInt(t24.scored)} scored`);
      setText('mos-24h', fmtMos(t24.avg_mos), t24.avg_mos);
      byId('mos-24h').className = 'value ' + mosClass(t24.avg_mos);
      setText('poor-24h', fmtInt(poor24), poor24);
      setText('poor-24h-sub', t24.scored ? `${fmtPct(poor24 / t24.scored, 1)} of scored calls` : 'MOS below 3.1');
      byId('poor-24h').className = 'value ' + (poor24 > 0 ? 'bad' : 'good');

      // Last 24 h, hourly: calls (bars) and the poor-call ratio (line).
      const dayRows = new Map(by.day.map((r) => [Date.parse(r.date), r]));
      const xs = [];
      const calls = [];
      const ratio = [];
      for (let i = 0; i < 24; i++) {
        const t = dayStart + i * HOUR;
        const r = dayRows.get(t) || { calls: 0, scored: 0 };
        xs.push(t / 1e3);
        calls.push(r.calls);
        ratio.push(r.scored ? (100 * poorHours[i]) / r.scored : null);
      }
      const dayEl = byId('chart-day');
      dayEl.dataset.calls = JSON.stringify(calls);
      dayEl.dataset.poorRatio = JSON.stringify(ratio);
      chart(v, 'day', dayEl, {
        height: 220, tzDate: utc,
        scales: { x: { time: true }, n: { range: (u, lo, hi) => [0, Math.max(1, hi) * 1.1] }, pct: { range: [0, 100] } },
        axes: [
          { ...timeAxis },
          { ...axisStyle, scale: 'n', label: 'calls', size: 50 },
          { ...axisStyle, scale: 'pct', side: 1, label: 'poor %', grid: { show: false }, size: 50 },
        ],
        series: [
          { value: (u, ts) => (ts == null ? '–' : fmtTime(iso(ts * 1e3)).slice(5, 16) + ' UTC') },
          { label: 'calls', scale: 'n', stroke: COLORS.accent, fill: 'rgba(88,166,255,0.35)', paths: bars({ size: [0.7, 40] }), points: { show: false } },
          { label: 'poor-call ratio', scale: 'pct', stroke: COLORS.bad, width: 2, spanGaps: true, points: { show: true, size: 6, fill: COLORS.bad }, value: (u, x) => (x == null ? '–' : x.toFixed(1) + ' %') },
        ],
      }, [xs, calls, ratio]);

      // Last hour, 5-minute buckets from the minute buckets: calls and average MOS.
      const hx = [];
      const hCalls = [];
      const hMos = [];
      const acc = Array.from({ length: 12 }, () => ({ calls: 0, scored: 0, sum: 0 }));
      for (const r of by.hour) {
        const i = Math.floor((Date.parse(r.date) - hourStart) / MIN5);
        if (i < 0 || i >= 12) continue;
        acc[i].calls += r.calls;
        acc[i].scored += r.scored;
        if (isNum(r.avg_mos)) acc[i].sum += r.avg_mos * r.scored;
      }
      acc.forEach((a, i) => {
        hx.push((hourStart + i * MIN5) / 1e3);
        hCalls.push(a.calls);
        hMos.push(a.scored ? a.sum / a.scored : null);
      });
      chart(v, 'hour', byId('chart-hour'), {
        height: 220, tzDate: utc,
        scales: { x: { time: true }, n: { range: (u, lo, hi) => [0, Math.max(1, hi) * 1.1] }, mos: { range: [1, 4.5] } },
        axes: [
          { ...timeAxis },
          { ...axisStyle, scale: 'n', label: 'calls', size: 50 },
          { ...axisStyle, scale: 'mos', side: 1, label: 'MOS', grid: { show: false }, size: 50 },
        ],
        series: [
          { value: (u, ts) => (ts == null ? '–' : fmtTime(iso(ts * 1e3), false).slice(0, 5) + ' UTC') },
          { label: 'calls', scale: 'n', stroke: COLORS.accent, fill: 'rgba(88,166,255,0.35)', paths: bars({ size: [0.7, 40] }), points: { show: false } },
          { label: 'average MOS', scale: 'mos', stroke: COLORS.good, width: 2, spanGaps: true, points: { show: true, size: 6, fill: COLORS.good }, value: (u, x) => fmtMos(x) },
        ],
      }, [hx, hCalls, hMos]);
    }

    async function loadDist() {
      const now = Date.now();
      const windows = [['1h', now - HOUR], ['24h', now - 24 * HOUR]];
      const tasks = [];
      for (const [, from] of windows) {
        for (const b of BANDS) tasks.push(() => countCalls({ date_from: iso(from), min_mos: b.min, max_mos: b.max }, v.abort.signal));
      }
      const counts = await pool(tasks);
      if (!v.alive) return;
      const per = windows.map((_, w) => counts.slice(w * BANDS.length, (w + 1) * BANDS.length));
      const share = per.map((c) => {
        const n = c.reduce((a, b) => a + b, 0);
        return c.map((x) => (n ? (100 * x) / n : 0));
      });
      const xs = BANDS.map((_, i) => i);
      chart(v, 'dist', byId('chart-dist'), {
        height: 200,
        scales: { x: { time: false, range: [-0.5, BANDS.length - 0.5] }, pct: { range: (u, lo, hi) => [0, Math.max(10, hi * 1.15)] } },
        axes: [
          { ...axisStyle, splits: () => xs, values: (u, splits) => splits.map((i) => (BANDS[i] ? BANDS[i].label : '')), grid: { show: false } },
          { ...axisStyle, scale: 'pct', label: '% of scored calls', size: 50 },
        ],
        series: [
          { label: 'MOS', value: (u, i) => (i == null || !BANDS[i] ? '–' : BANDS[i].label) },
          { label: 'last hour', scale: 'pct', stroke: COLORS.violet, fill: 'rgba(188,140,255,0.55)', paths: bars({ size: [0.35, 60], align: -1 }), points: { show: false }, value: (u, x) => (x == null ? '–' : x.toFixed(1) + ' %') },
          { label: 'last 24 h', scale: 'pct', stroke: COLORS.accent, fill: 'rgba(88,166,255,0.55)', paths: bars({ size: [0.35, 60], align: 1 }), points: { show: false }, value: (u, x) => (x == null ? '–' : x.toFixed(1) + ' %') },
        ],
      }, [xs, share[0], share[1]]);
      const table = byId('dist-table');
      table.replaceChildren(
        h('thead', null, h('tr', null, h('th', null, 'MOS'), BANDS.map((b) => h('th', { class: 'num ' + b.cls }, b.label)))),
        h('tbody', null,
          h('tr', { id: 'dist-1h' }, h('th', null, 'last hour'), per[0].map((c) => numCell(c, fmtInt(c)))),
          h('tr', { id: 'dist-24h' }, h('th', null, 'last 24 h'), per[1].map((c) => numCell(c, fmtInt(c))))));
    }

    function rollupTable(kind) {
      const nameKey = kind === 'mno' ? 'mno' : 'agent_id';
      const cols = [
        { key: nameKey, label: kind === 'mno' ? 'MNO' : 'Agent', text: true },
        { key: 'calls', label: 'Calls', fmt: fmtInt },
        { key: 'p10_mos', label: 'p10 MOS', fmt: fmtMos, cls: mosClass },
        { key: 'average_mos', label: 'Avg MOS', fmt: fmtMos, cls: mosClass },
        { key: 'poor_call_ratio', label: 'Poor', fmt: (x) => fmtPct(x, 1), cls: (x) => (isNum(x) && x > 0.1 ? 'bad' : '') },
        { key: 'average_loss_ratio', label: 'Loss', fmt: (x) => fmtPct(x, 2) },
        { key: 'average_jitter_ms', label: 'Jitter', fmt: (x) => fmtMs(x, 1) },
        { key: 'average_rtt_ms', label: 'RTT', fmt: (x) => fmtMs(x, 0) },
      ];
      const sort = sorts[kind];
      const rows = rollups[kind].slice().sort((a, b) => {
        const x = a[sort.key];
        const y = b[sort.key];
        if (x == null && y == null) return 0;
        if (x == null) return 1; // unscored groups last whichever way
        if (y == null) return -1;
        if (typeof x === 'string') return sort.dir * x.localeCompare(y);
        return sort.dir * (x - y) || b.calls - a.calls;
      });
      const head = h('tr', null, cols.map((c) => {
        const th = h('th', {
          class: 'sortable' + (c.text ? '' : ' num') + (sort.key === c.key ? (sort.dir > 0 ? ' sorted-asc' : ' sorted-desc') : ''),
          dataset: { key: c.key }, title: 'Sort by ' + c.label,
        }, c.label);
        th.addEventListener('click', () => {
          if (sort.key === c.key) sort.dir = -sort.dir;
          else {
            sort.key = c.key;
            // Worst first: low MOS, high loss/jitter/RTT/poor, most calls.
            sort.dir = c.text || c.key.includes('mos') ? 1 : -1;
          }
          rollupTable(kind);
        });
        return th;
      }));
      const body = rows.map((r) => {
        const name = r[nameKey];
        const filter = kind === 'mno' ? { mno: name } : { agent_id: name };
        return h('tr', { class: isNum(r.p10_mos) && r.p10_mos < POOR_MOS ? 'poor' : null },
          cols.map((c) => {
            if (c.text) {
              return h('td', { dataset: { v: name == null ? 'null' : name } },
                name == null ? h('span', { class: 'muted' }, '(no agent)')
                  : h('a', { href: '/calls' + qs(filter), 'data-nav': true }, name));
            }
            const x = r[c.key];
            return numCell(x, c.fmt(x), c.cls ? c.cls(x) : '');
          }));
      });
      byId(kind + '-table').replaceChildren(rows.length
        ? h('table', { class: 'data', id: kind + '-rollup' }, h('thead', null, head), h('tbody', null, body))
        : h('p', { class: 'muted' }, `No calls in the last ${days} days.`));
    }

    async function loadRollups() {
      const [mno, agents] = await Promise.all([
        api('/v1/analytics/mno?days=' + days, { signal: v.abort.signal }),
        api('/v1/analytics/agents?days=' + days, { signal: v.abort.signal }),
      ]);
      if (!v.alive) return;
      rollups.mno = mno;
      rollups.agent = agents;
      rollupTable('mno');
      rollupTable('agent');
    }

    async function loadPoor() {
      const from = iso(Date.now() - 24 * HOUR);
      const filter = { date_from: from, max_mos: below(POOR_MOS) };
      const r = await api('/v1/calls' + qs({ ...filter, page_size: 8 }), { signal: v.abort.signal });
      if (!v.alive) return;
      const el = byId('poor-list');
      if (!r.total) {
        el.replaceChildren(h('p', { class: 'good' }, 'No call below MOS 3.1 in the last 24 hours.'));
        return;
      }
      el.replaceChildren(
        h('table', { class: 'data', id: 'poor-table' },
          h('thead', null, h('tr', null, ['Started (UTC)', 'Agent', 'MNO', 'MOS', 'Loss', 'Flags'].map((t, i) => h('th', { class: i >= 3 && i < 5 ? 'num' : null }, t)))),
          h('tbody', null, r.data.map((c) => h('tr', null,
            h('td', null, h('a', { href: '/calls/' + encodeURIComponent(c.call_id), 'data-nav': true }, fmtTime(c.created_at))),
            h('td', null, c.agent_id || '–'),
            h('td', null, c.mno),
            numCell(c.quality_mos, fmtMos(c.quality_mos), mosClass(c.quality_mos)),
            numCell(c.quality.loss_ratio, fmtPct(c.quality.loss_ratio)),
            h('td', null, flags(c)))))),
        h('p', { class: 'legend-note' },
          h('a', { href: '/calls' + qs(filter), 'data-nav': true, id: 'poor-all' }, `All ${r.total} poor calls of the last 24 h →`)));
    }

    async function loadCapture() {
      let text;
      try {
        text = await api('/metrics', { signal: v.abort.signal });
      } catch (err) {
        if (err instanceof ApiError && err.status === 503) {
          byId('capture-body').replaceChildren(h('p', { class: 'muted' }, 'This process collects no capture metrics.'));
          setText('active-calls', '–');
          return;
        }
        throw err;
      }
      if (!v.alive) return;
      const m = parseMetrics(text);
      const sum = (name, pred) => m.filter((s) => s.name === name && (!pred || pred(s.labels))).reduce((a, s) => a + s.value, 0);
      setText('active-calls', fmtInt(sum('vqprobe_active_calls')), sum('vqprobe_active_calls'));
      setText('active-calls-sub', `${fmtInt(sum('vqprobe_active_streams'))} streams`);
      const drops = sum('vqprobe_capture_dropped_packets_total');
      setText('drops', fmtInt(drops), drops);
      byId('drops').className = 'value ' + (drops > 0 ? 'bad' : 'good');
      const ifaces = [...new Set(m.filter((s) => s.name === 'vqprobe_capture_packets_total').map((s) => s.labels.interface))];
      const reasons = ['kernel', 'interface', 'queue'];
      const dropOf = (i, r) => sum('vqprobe_capture_dropped_packets_total', (l) => l.interface === i && l.reason === r);
      const kinds = m.filter((s) => s.name === 'vqprobe_malformed_packets_total');
      const methods = m.filter((s) => s.name === 'vqprobe_sip_messages_total' && s.value > 0);
      const packetsOf = (i) => sum('vqprobe_capture_packets_total', (l) => l.interface === i);
      const sources = h('div', { class: 'table-wrap' }, h('table', { id: 'capture-table' },
        h('thead', null, h('tr', null, h('th', null, 'Source'), h('th', { class: 'num' }, 'Packets'),
          reasons.map((r) => h('th', { class: 'num' }, `Dropped (${r})`)))),
        h('tbody', null, ifaces.map((i) => h('tr', null, h('td', { class: 'mono' }, i),
          numCell(packetsOf(i), fmtInt(packetsOf(i))),
          reasons.map((r) => numCell(dropOf(i, r), fmtInt(dropOf(i, r)), dropOf(i, r) > 0 ? 'bad' : '')))))));
      const row = (label, name) => h('tr', null, h('th', null, label), numCell(sum(name), fmtInt(sum(name))));
      const traffic = h('table', { class: 'kv', id: 'capture-kinds' }, h('tbody', null,
        row('RTP packets', 'vqprobe_rtp_packets_total'),
        row('RTCP packets', 'vqprobe_rtcp_packets_total'),
        h('tr', null, h('th', null, 'SIP messages'), h('td', { class: 'num' }, methods.length
          ? methods.map((s) => `${s.labels.method} ${fmtInt(s.value)}`).join(' · ') : '0')),
        row('Streams refused (cap)', 'vqprobe_streams_refused_total')));
      const malformed = sum('vqprobe_malformed_packets_total');
      const damage = h('table', { class: 'kv', id: 'capture-malformed' }, h('tbody', null,
        h('tr', null, h('th', null, 'Malformed, all'), numCell(malformed, fmtInt(malformed), malformed > 0 ? 'warn' : '')),
        kinds.map((s) => h('tr', null, h('th', null, 'Malformed ' + s.labels.kind), numCell(s.value, fmtInt(s.value))))));
      byId('capture-body').replaceChildren(sources, h('div', { class: 'grid two' }, traffic, damage));
    }

    const refresh = async () => {
      await Promise.all([loadTraffic(), loadDist(), loadRollups(), loadPoor(), loadCapture()].map((p) => p.catch(handleError)));
      if (v.alive) setText('updated', 'updated ' + fmtTime(iso(Date.now()), false) + ' UTC · every 30 s');
    };
    await refresh();
    v.every(OVERVIEW_MS, refresh);
  }

  /** Prometheus text format → [{name, labels, value}] (histogram buckets included). */
  function parseMetrics(text) {
    const out = [];
    const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (const l of text.split('\n')) {
      if (!l || l[0] === '#') continue;
      const m = line.exec(l);
      if (!m) continue;
      const labels = {};
      if (m[2]) for (const lm of m[2].matchAll(label)) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      const value = Number(m[3]);
      if (Number.isFinite(value)) out.push({ name: m[1], labels, value });
    }
    return out;
  }

  // ------------------------------------------------------------------ call list

  const STATUSES = ['in_progress', 'completed', 'failed', 'abandoned'];
  const FILTER_KEYS = ['agent_id', 'mno', 'status', 'direction', 'min_mos', 'max_mos', 'date_from', 'date_to'];
  const PAGE_SIZE = 50;

  /** A datetime-local value (taken as UTC) ↔ RFC 3339. */
  const fromLocalInput = (v) => (v ? new Date(v + 'Z').toISOString() : '');
  const toLocalInput = (s) => {
    const d = new Date(s);
    return Number.isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 16);
  };

  async function callsPage(v) {
    document.title = 'Calls · vqprobe';
    const params = new URLSearchParams(location.search);
    const filter = {};
    for (const k of FILTER_KEYS) if (params.get(k)) filter[k] = params.get(k);
    const page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);

    const select = (name, label, values, current) => h('label', null, label,
      h('select', { name, id: 'f-' + name },
        h('option', { value: '' }, 'any'),
        values.map((x) => h('option', { value: x, selected: x === current }, x))));
    const number = (name, label) => h('label', null, label,
      h('input', { type: 'number', name, id: 'f-' + name, min: 1, max: 4.5, step: 'any', value: filter[name] || null, inputmode: 'decimal' }));
    const when = (name, label) => h('label', null, label,
      h('input', { type: 'datetime-local', name, id: 'f-' + name, value: filter[name] ? toLocalInput(filter[name]) : null }));

    const form = h('form', { class: 'filters', id: 'filters' },
      h('label', null, 'Agent', h('select', { name: 'agent_id', id: 'f-agent_id' }, h('option', { value: '' }, 'any'))),
      h('label', null, 'MNO', h('select', { name: 'mno', id: 'f-mno' }, h('option', { value: '' }, 'any'))),
      select('status', 'Status', STATUSES, filter.status),
      select('direction', 'Direction', ['inbound', 'outbound'], filter.direction),
      number('min_mos', 'MOS from'),
      number('max_mos', 'MOS to'),
      when('date_from', 'From (UTC)'),
      when('date_to', 'To (UTC)'),
      h('button', { class: 'primary', type: 'submit', id: 'apply' }, 'Apply'),
      h('button', { type: 'button', id: 'last-hour' }, 'Last hour'),
      h('button', { type: 'button', id: 'last-day' }, 'Last 24 h'),
      h('button', { type: 'button', id: 'poor-only' }, 'Poor only'),
      h('button', { type: 'button', id: 'clear', class: 'link' }, 'Clear'));

    const go = (f, p) => navigate('/calls' + qs({ ...f, page: p > 1 ? p : null }));
    const formFilter = () => {
      const f = {};
      for (const k of FILTER_KEYS) {
        const el = form.elements[k];
        if (!el || !el.value) continue;
        f[k] = k.startsWith('date_') ? fromLocalInput(el.value) : el.value;
      }
      return f;
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      go(formFilter(), 1);
    });
    byIdIn(form, 'last-hour').addEventListener('click', () => go({ ...formFilter(), date_from: iso(Date.now() - HOUR), date_to: null }, 1));
    byIdIn(form, 'last-day').addEventListener('click', () => go({ ...formFilter(), date_from: iso(Date.now() - 24 * HOUR), date_to: null }, 1));
    byIdIn(form, 'poor-only').addEventListener('click', () => go({ ...formFilter(), min_mos: null, max_mos: below(POOR_MOS) }, 1));
    byIdIn(form, 'clear').addEventListener('click', () => go({}, 1));

    main.replaceChildren(
      h('div', { class: 'page-head' },
        h('h1', null, 'Calls'),
        h('span', { class: 'muted', id: 'calls-summary' }),
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted', id: 'live-note' })),
      h('section', { class: 'panel' }, form),
      h('section', { class: 'panel', id: 'calls-panel' }, h('div', { class: 'table-wrap', id: 'calls-list' }, h('p', { class: 'muted' }, 'Loading…')),
        h('div', { class: 'pager', id: 'pager' })));

    // Filter choices: every agent and MNO seen in the last 90 days.
    Promise.all([api('/v1/analytics/agents?days=90', { signal: v.abort.signal }), api('/v1/analytics/mno?days=90', { signal: v.abort.signal })])
      .then(([agents, mnos]) => {
        if (!v.alive) return;
        const fill = (sel, values, current) => {
          const vals = [...new Set(values.filter((x) => x != null))].sort();
          if (current && !vals.includes(current)) vals.unshift(current);
          sel.append(...vals.map((x) => h('option', { value: x, selected: x === current }, x)));
        };
        fill(form.elements.agent_id, agents.map((r) => r.agent_id), filter.agent_id);
        fill(form.elements.mno, mnos.map((r) => r.mno), filter.mno);
      })
      .catch(handleError);

    async function load() {
      let r;
      try {
        r = await api('/v1/calls' + qs({ ...filter, page, page_size: PAGE_SIZE }), { signal: v.abort.signal });
      } catch (err) {
        if (err instanceof ApiError && err.status === 400) {
          byId('calls-list').replaceChildren(h('p', { class: 'error-text', id: 'filter-error' }, 'Filter refused by the API: ' + err.message));
          return;
        }
        throw err;
      }
      if (!v.alive) return;
      const pages = Math.max(1, Math.ceil(r.total / PAGE_SIZE));
      setText('calls-summary', `${fmtInt(r.total)} calls` + (Object.keys(filter).length ? ' match' : ''), r.total);
      const live = r.data.some((c) => c.status === 'in_progress');
      setText('live-note', (live ? 'live: in-progress calls update every 5 s · ' : 'refreshes every 5 s · ') + 'updated ' + fmtTime(iso(Date.now()), false) + ' UTC');
      const cols = ['Started (UTC)', 'Agent', 'Remote', 'MNO', 'Dir', 'Status', 'Duration', 'Codec', 'MOS', 'Min 5 s', 'Loss', 'Jitter', 'RTT'];
      const numeric = new Set(['Duration', 'MOS', 'Min 5 s', 'Loss', 'Jitter', 'RTT']);
      byId('calls-list').replaceChildren(r.data.length === 0
        ? h('p', { class: 'muted', id: 'no-calls' }, 'No call matches these filters.')
        : h('table', { class: 'data', id: 'calls-table' },
          h('thead', null, h('tr', null, cols.map((c) => h('th', { class: numeric.has(c) ? 'num' : null }, c)))),
          h('tbody', null, r.data.map((c) => {
            const remote = c.direction === 'inbound' ? c.from_number : c.to_number;
            const q = c.quality || {};
            return h('tr', {
              class: c.status === 'in_progress' ? 'live' : isNum(c.quality_mos) && c.quality_mos < POOR_MOS ? 'poor' : null,
              dataset: { callId: c.call_id, status: c.status },
            },
            h('td', { class: 'mono' }, h('a', { href: '/calls/' + encodeURIComponent(c.call_id), 'data-nav': true, title: c.call_id }, fmtTime(c.created_at))),
            h('td', null, c.agent_id || '–'),
            h('td', { class: 'mono' }, remote || '–'),
            h('td', null, c.mno),
            h('td', null, c.direction === 'inbound' ? 'in' : 'out'),
            h('td', null, badge(c.status.replace('_', ' '), c.status), flags(c),
              c.ended_reason && c.ended_reason !== 'bye' ? h('span', { class: 'muted' }, c.ended_reason) : null),
            numCell(c.duration_seconds, fmtDuration(c.duration_seconds)),
            h('td', null, c.codec || '–'),
            numCell(c.quality_mos, fmtMos(c.quality_mos), mosClass(c.quality_mos)),
            numCell(q.min_interval_mos, fmtMos(q.min_interval_mos), mosClass(q.min_interval_mos)),
            numCell(q.loss_ratio, fmtPct(q.loss_ratio)),
            numCell(q.jitter_ms, fmtMs(q.jitter_ms)),
            numCell(q.rtt_ms, fmtMs(q.rtt_ms, 0)));
          }))));
      const prev = h('button', { type: 'button', id: 'prev', disabled: page <= 1 }, '← Newer');
      const next = h('button', { type: 'button', id: 'next', disabled: page >= pages }, 'Older →');
      prev.addEventListener('click', () => go(filter, page - 1));
      next.addEventListener('click', () => go(filter, page + 1));
      byId('pager').replaceChildren(prev, h('span', { class: 'muted', id: 'page-of' }, `page ${page} of ${pages}`), next);
    }
    await load();
    v.every(LIVE_MS, load);
  }

  function byIdIn(root, id) {
    return root.querySelector('#' + id);
  }

  // ------------------------------------------------------------------ one call

  function kv(id, rows) {
    return h('table', { class: 'kv', id }, h('tbody', null, rows.filter(Boolean).map(([k, val, raw, cls]) =>
      h('tr', null, h('th', null, k), h('td', { class: cls || null, dataset: raw === undefined ? null : { v: raw === null ? 'null' : String(raw) } }, val)))));
  }

  function download(name, type, data) {
    const url = URL.createObjectURL(new Blob([data], { type }));
    const a = h('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  async function callPage(v) {
    let id;
    try {
      id = decodeURIComponent(location.pathname.slice('/calls/'.length));
    } catch (_) {
      id = location.pathname.slice('/calls/'.length);
    }
    document.title = 'Call ' + id + ' · vqprobe';
    let c;
    try {
      c = await api('/v1/calls/' + encodeURIComponent(id), { signal: v.abort.signal });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        main.replaceChildren(h('section', { class: 'panel', id: 'call-missing' },
          h('h1', null, 'No such call'),
          h('p', null, 'The probe has no call with id ', h('span', { class: 'mono' }, id), '. ',
            h('a', { href: '/calls', 'data-nav': true }, 'Back to the list'))));
        return;
      }
      throw err;
    }
    if (!v.alive) return;
    renderCall(v, c);
    if (c.status === 'in_progress') {
      v.every(LIVE_MS, async () => {
        const next = await api('/v1/calls/' + encodeURIComponent(id), { signal: v.abort.signal });
        if (v.alive) renderCall(v, next);
      });
    }
  }

  function renderCall(v, c) {
    const q = c.quality || {};
    const created = Date.parse(c.created_at);
    const ended = c.ended_at ? Date.parse(c.ended_at) : null;
    const answered = c.status === 'completed' && ended != null && isNum(c.duration_seconds) && c.sip_call_id
      ? ended - c.duration_seconds * 1e3 : null;
    const streams = c.streams || [];
    const dirs = ['inbound', 'outbound'].map((d) => [d, streams.filter((s) => s.direction === d)]).filter(([, s]) => s.length);

    const exportJson = h('button', { type: 'button', id: 'export-json' }, 'Download call (JSON)');
    exportJson.addEventListener('click', () => download(`call-${c.call_id.replace(/[^A-Za-z0-9._-]/g, '_')}.json`, 'application/json', JSON.stringify(c, null, 2)));
    let exportCsv = null;
    if (c.agent_id) {
      exportCsv = h('button', { type: 'button', id: 'export-csv' }, `Agent ${c.agent_id}: all calls (CSV)`);
      exportCsv.addEventListener('click', async () => {
        try {
          const r = await api(`/v1/agents/${encodeURIComponent(c.agent_id)}/conversations/export?format=csv`, { raw: true });
          download(`${c.agent_id.replace(/[^A-Za-z0-9._-]/g, '_')}-calls.csv`, 'text/csv', await r.blob());
        } catch (err) {
          handleError(err);
        }
      });
    }

    const content = [
      h('div', { class: 'page-head' },
        h('h1', null, 'Call ', h('span', { class: 'mono', id: 'call-id' }, c.call_id)),
        badge(c.status.replace('_', ' '), c.status), flags(c),
        h('span', { class: 'spacer' }),
        c.status === 'in_progress' ? h('span', { class: 'muted', id: 'live-note' }, 'live: updates every 5 s') : null,
        h('a', { href: '/calls', 'data-nav': true }, '← all calls')),
      h('div', { class: 'grid two' },
        h('section', { class: 'panel' }, h('h2', null, 'Quality'),
          kv('call-quality', [
            ['MOS (worst direction)', fmtMos(c.quality_mos), c.quality_mos, mosClass(c.quality_mos)],
            ['Lowest 5-second MOS', fmtMos(q.min_interval_mos), q.min_interval_mos, mosClass(q.min_interval_mos)],
            ['MOS-LQ (listening)', fmtMos(q.mos_lq), q.mos_lq],
            ['R-factor', isNum(q.r_factor) ? q.r_factor.toFixed(1) : '–', q.r_factor],
            ['Loss (worst direction)', fmtPct(q.loss_ratio), q.loss_ratio],
            ['Jitter (worst direction)', fmtMs(q.jitter_ms), q.jitter_ms],
            ['Round trip (RTCP)', fmtMs(q.rtt_ms, 1), q.rtt_ms],
            ['One-way delay', fmtMs(q.one_way_delay_ms, 1), q.one_way_delay_ms],
            ['One-way audio', c.one_way_audio ? 'yes' : 'no', c.one_way_audio, c.one_way_audio ? 'bad' : ''],
            ['Fax', c.fax ? 'yes' : 'no', c.fax],
          ])),
        h('section', { class: 'panel' }, h('h2', null, 'Parties'),
          kv('call-parties', [
            ['Agent', c.agent_id || '–', c.agent_id],
            ['Direction', c.direction, c.direction],
            ['From', c.from_number || '–', c.from_number],
            ['To', c.to_number || '–', c.to_number],
            ['MNO', c.mno, c.mno],
            ['Country', c.country || '–', c.country],
            ['Codec', c.codec || '–', c.codec],
            ['SIP Call-ID', c.sip_call_id || '(RTP only)', c.sip_call_id, 'mono'],
            ['Resolution', c.resolution || '–', c.resolution],
            c.recording_url ? ['Recording', c.recording_url, c.recording_url, 'mono'] : null,
          ]))),
      h('div', { class: 'grid two' },
        h('section', { class: 'panel' }, h('h2', null, 'SIP outcome and timings'),
          kv('call-sip', [
            ['Status', c.status, c.status],
            ['Ended by', c.ended_reason || (c.status === 'in_progress' ? '(still open)' : '–'), c.ended_reason],
            ['Started (INVITE)', fmtTime(c.created_at) + ' UTC', c.created_at],
            answered != null ? ['Answered', fmtTime(iso(answered)) + ' UTC', iso(answered)] : null,
            answered != null ? ['Set-up time (INVITE → answer)', ((answered - created) / 1e3).toFixed(3) + ' s', (answered - created) / 1e3] : null,
            ['Ended', c.ended_at ? fmtTime(c.ended_at) + ' UTC' : '–', c.ended_at],
            ['Talk time', fmtDuration(c.duration_seconds) + (isNum(c.duration_seconds) ? ` (${c.duration_seconds.toFixed(1)} s)` : ''), c.duration_seconds],
          ])),
        h('section', { class: 'panel', id: 'export' }, h('h2', null, 'Export'),
          h('div', { class: 'filters' }, exportJson, exportCsv),
          h('p', { class: 'legend-note' }, 'API: ', h('span', { class: 'mono' }, 'GET /v1/calls/' + encodeURIComponent(c.call_id)),
            c.agent_id ? [' · ', h('span', { class: 'mono' }, `GET /v1/agents/${encodeURIComponent(c.agent_id)}/conversations/export?format=csv`)] : null))),
    ];

    // The timelines: for each direction and each of its streams, MOS per 5-second
    // interval, then jitter and loss. Every chart spans the same time range.
    const allStarts = streams.flatMap((s) => s.intervals.map((i) => Date.parse(i.start) / 1e3));
    const xMin = allStarts.length ? Math.min(...allStarts) : created / 1e3;
    const xMax = allStarts.length ? Math.max(...allStarts) + 5 : (ended || created) / 1e3;
    const charts = [];
    const timeline = h('section', { class: 'panel', id: 'timelines' }, h('h2', null, 'Quality per 5 seconds'));
    if (!dirs.length) timeline.append(h('p', { class: 'muted' }, 'This call carried no media.'));
    for (const [dir, list] of dirs) {
      list.forEach((s, k) => {
        const sid = `${dir}-${k}`;
        const mosEl = h('div', { class: 'chart', id: 'mos-' + sid });
        const netEl = h('div', { class: 'chart', id: 'net-' + sid });
        const worst = s.intervals.reduce((m, i) => (isNum(i.mos) && (m == null || i.mos < m.mos) ? i : m), null);
        timeline.append(h('div', { class: 'direction', id: 'dir-' + sid, dataset: { direction: dir, ssrc: s.ssrc } },
          h('h3', null, `${dir === 'inbound' ? 'Inbound (towards the site)' : 'Outbound (towards the far end)'} · `,
            h('span', { class: 'mono' }, `${s.src} → ${s.dst}`), ` · SSRC ${s.ssrc} · ${s.codec || 'unknown codec'}`,
            ` · MOS ${fmtMos(s.mos)}`, worst ? ` · worst 5 s: ${fmtMos(worst.mos)} at ${fmtTime(worst.start, false)} UTC` : ''),
          mosEl, netEl,
          h('details', null, h('summary', null, `${s.intervals.length} intervals as a table`),
            h('div', { class: 'table-wrap' }, h('table', { class: 'data intervals', id: 'intervals-' + sid },
              h('thead', null, h('tr', null, ['Start (UTC)', 'Packets', 'Lost', 'Loss', 'Jitter', 'MOS'].map((t, i) => h('th', { class: i ? 'num' : null }, t)))),
              h('tbody', null, s.intervals.map((i) => h('tr', { class: isNum(i.mos) && i.mos < POOR_MOS ? 'poor' : null },
                h('td', { class: 'mono', dataset: { v: i.start } }, fmtTime(i.start, false)),
                numCell(i.packets, fmtInt(i.packets)),
                numCell(i.lost, fmtInt(i.lost)),
                numCell(i.packets + i.lost ? i.lost / (i.packets + i.lost) : 0, fmtPct(i.packets + i.lost ? i.lost / (i.packets + i.lost) : 0)),
                numCell(i.jitter_ms, fmtMs(i.jitter_ms)),
                numCell(i.mos, fmtMos(i.mos), mosClass(i.mos))))))))));
        charts.push([sid, s, mosEl, netEl]);
      });
    }
    content.push(timeline);
    content.push(streamsTable(streams), farEnd(streams));
    main.replaceChildren(...content);
    v.charts.forEach((u) => u.destroy());
    v.charts.clear();

    const sync = uPlot.sync('call');
    for (const [sid, s, mosEl, netEl] of charts) {
      const xs = s.intervals.map((i) => Date.parse(i.start) / 1e3);
      const mos = s.intervals.map((i) => (isNum(i.mos) ? i.mos : null));
      const poor = mos.map((m) => (m != null && m < POOR_MOS ? m : null));
      const jitter = s.intervals.map((i) => i.jitter_ms);
      const loss = s.intervals.map((i) => (i.packets + i.lost ? (100 * i.lost) / (i.packets + i.lost) : 0));
      const cursor = { sync: { key: sync.key } };
      const x = { time: true, range: () => [xMin, xMax] };
      chart(v, 'mos-' + sid, mosEl, {
        height: 170, tzDate: utc, cursor,
        scales: { x, mos: { range: [1, 4.5] } },
        axes: [{ ...timeAxis }, { ...axisStyle, scale: 'mos', label: 'MOS', size: 50 }],
        hooks: { drawAxes: [poorBand] },
        series: [
          { value: (u, ts) => (ts == null ? '–' : fmtTime(iso(ts * 1e3), false) + ' UTC') },
          { label: 'MOS', scale: 'mos', stroke: COLORS.good, width: 2, points: { show: true, size: 5, fill: COLORS.good }, value: (u, y) => fmtMos(y) },
          { label: 'below 3.1', scale: 'mos', stroke: COLORS.bad, width: 0, paths: () => null, points: { show: true, size: 9, fill: COLORS.bad, stroke: COLORS.bad }, value: (u, y) => fmtMos(y) },
        ],
      }, [xs, mos, poor]);
      chart(v, 'net-' + sid, netEl, {
        height: 150, tzDate: utc, cursor,
        scales: { x, ms: { range: (u, lo, hi) => [0, Math.max(10, hi * 1.15)] }, pct: { range: (u, lo, hi) => [0, Math.max(5, hi * 1.15)] } },
        axes: [
          { ...timeAxis },
          { ...axisStyle, scale: 'ms', label: 'jitter ms', size: 50 },
          { ...axisStyle, scale: 'pct', side: 1, label: 'loss %', grid: { show: false }, size: 50 },
        ],
        series: [
          { value: (u, ts) => (ts == null ? '–' : fmtTime(iso(ts * 1e3), false) + ' UTC') },
          { label: 'loss', scale: 'pct', stroke: COLORS.bad, fill: 'rgba(248,81,73,0.55)', paths: bars({ size: [0.8, 30] }), points: { show: false }, value: (u, y) => (y == null ? '–' : y.toFixed(2) + ' %') },
          { label: 'jitter', scale: 'ms', stroke: COLORS.warn, width: 2, points: { show: false }, value: (u, y) => fmtMs(y) },
        ],
      }, [xs, loss, jitter]);
    }
  }

  /** Every figure of every stream: one column per stream, one row per figure. */
  function streamsTable(streams) {
    const fig = (label, f) => [label, f];
    const rows = [
      fig('Direction', (s) => [s.direction, s.direction]),
      fig('Source', (s) => [s.src, s.src]),
      fig('Destination', (s) => [s.dst, s.dst]),
      fig('SSRC', (s) => [s.ssrc, s.ssrc]),
      fig('Payload type', (s) => [s.payload_type == null ? '–' : String(s.payload_type), s.payload_type]),
      fig('Codec', (s) => [s.codec || '–', s.codec]),
      fig('Clock rate', (s) => [s.clock_rate ? s.clock_rate + ' Hz' : '–', s.clock_rate]),
      fig('Packets', (s) => [fmtInt(s.packets), s.packets]),
      fig('Other payload packets', (s) => [fmtInt(s.other_payload_packets || 0), s.other_payload_packets || 0]),
      fig('Expected', (s) => [fmtInt(s.expected), s.expected]),
      fig('Lost', (s) => [`${fmtInt(s.lost)} (${fmtPct(s.expected ? s.lost / s.expected : null)})`, s.lost]),
      fig('Duplicates', (s) => [fmtInt(s.duplicates), s.duplicates]),
      fig('Out of order', (s) => [fmtInt(s.out_of_order), s.out_of_order]),
      fig('Loss runs 1…10+', (s) => [s.loss_runs.join(' · '), JSON.stringify(s.loss_runs)]),
      fig('Jitter (RFC 3550)', (s) => [fmtMs(s.jitter_ms, 3), s.jitter_ms]),
      fig('Max jitter', (s) => [fmtMs(s.max_jitter_ms, 3), s.max_jitter_ms]),
      fig('Mean jitter', (s) => [fmtMs(s.mean_jitter_ms, 3), s.mean_jitter_ms]),
      fig('Max delta', (s) => [fmtMs(s.max_delta_ms, 3), s.max_delta_ms]),
      fig('MOS', (s) => [fmtMos(s.mos), s.mos]),
      fig('MOS-LQ', (s) => [fmtMos(s.mos_lq), s.mos_lq]),
      fig('MOS, 50 ms buffer', (s) => [fmtMos(s.mos_jb50), s.mos_jb50]),
      fig('MOS, 200 ms buffer', (s) => [fmtMos(s.mos_jb200), s.mos_jb200]),
      fig('R-factor', (s) => [isNum(s.r_factor) ? s.r_factor.toFixed(2) : '–', s.r_factor]),
      fig('Round trip (RTCP)', (s) => [fmtMs(s.rtt_ms, 1), s.rtt_ms]),
    ];
    return h('section', { class: 'panel', id: 'streams' }, h('h2', null, `Streams (${streams.length})`),
      streams.length === 0 ? h('p', { class: 'muted' }, 'No media stream.')
        : h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'streams-table' },
          h('thead', null, h('tr', null, h('th', null, 'Figure'), streams.map((s, i) => h('th', { class: 'num' }, `#${i + 1} ${s.direction}`)))),
          h('tbody', null, rows.map(([label, f]) => h('tr', null, h('th', null, label), streams.map((s) => {
            const [text, raw] = f(s);
            return numCell(raw, text, label.startsWith('MOS') ? mosClass(raw) : '');
          })))))));
  }

  /** What the far end reported about our streams (RTCP RR/SR blocks, XR when present). */
  function farEnd(streams) {
    const reported = streams.filter((s) => s.remote || s.xr || isNum(s.rtt_ms));
    const section = h('section', { class: 'panel', id: 'far-end' }, h('h2', null, 'Far end view (RTCP)'));
    if (!reported.length) {
      section.append(h('p', { class: 'muted' }, 'No RTCP report about these streams was seen.'));
      return section;
    }
    section.append(h('div', { class: 'grid two' }, reported.map((s) => h('div', null,
      h('h3', null, `${s.direction} · SSRC ${s.ssrc}`),
      kv('far-' + s.ssrc, [
        ['Fraction lost (last report)', s.remote ? fmtPct(s.remote.fraction_lost) : '–', s.remote ? s.remote.fraction_lost : null],
        ['Cumulative lost', s.remote ? fmtInt(s.remote.cumulative_lost) : '–', s.remote ? s.remote.cumulative_lost : null],
        ['Jitter it measured', s.remote ? fmtMs(s.remote.jitter_ms, 2) : '–', s.remote ? s.remote.jitter_ms : null],
        ['Round trip to it', fmtMs(s.rtt_ms, 1), s.rtt_ms],
        ...(s.xr && typeof s.xr === 'object' ? Object.entries(s.xr).map(([k, x]) => [`XR ${k}`, x == null ? '–' : typeof x === 'object' ? JSON.stringify(x) : String(x), typeof x === 'object' ? JSON.stringify(x) : x]) : []),
      ])))));
    return section;
  }

  // ------------------------------------------------------------------ start

  pollHealth();
  setInterval(() => { if (document.visibilityState === 'visible') pollHealth(); }, 15000);
  route();
})();
