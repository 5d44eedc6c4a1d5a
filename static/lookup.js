/* lookup.js - the lookup page at /lookup/ADDRESS_OR_PREFIX: is it blocked,
 * the sentence that explains why, the thresholds crossed, the evidence log
 * lines, the decision history, a timeline, and an unblock button that asks
 * for the API token (sent as a bearer header, never stored). */
'use strict';

(function () {
  function queryFromPath() {
    const rest = window.location.pathname.replace(/^\/lookup\//, '');
    try {
      return rest.split('/').map(decodeURIComponent).join('/');
    } catch (e) {
      return rest;
    }
  }

  function decisionOf(data) {
    if (data.decision && typeof data.decision === 'object') return data.decision;
    return null;
  }

  function historyOf(data) {
    const h = data.history;
    if (Array.isArray(h)) return h;
    if (h && Array.isArray(h.items)) return h.items;
    return [];
  }

  function sentenceOf(data, d) {
    const cands = [data.sentence, data.explanation, d && d.explanation, d && d.sentence, d && d.reason];
    for (const c of cands) if (typeof c === 'string' && c) return c;
    return null;
  }

  function isLineList(v) {
    return Array.isArray(v) && v.every(function (x) {
      return typeof x === 'string' || (x && typeof x === 'object' && typeof x.line === 'string');
    });
  }

  function fmtNum(v) {
    if (typeof v !== 'number') return v === undefined || v === null ? '' : String(v);
    return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
  }

  /* The decision's explanation (aggregator: explain = {window, value,
   * threshold, multiplier, numbers, thresholds}): one row per measure,
   * the crossed thresholds first. */
  function renderThresholds(d) {
    const panel = document.getElementById('thresholds-panel');
    const tb = document.querySelector('#thresholds tbody');
    MXW.clear(tb);
    const ex = (d && d.explain) || {};
    const nums = ex.numbers || {}, thr = ex.thresholds || {};
    const rows = [];
    for (const k of new Set(Object.keys(nums).concat(Object.keys(thr)))) {
      const v = nums[k], t = thr[k];
      const crossed = typeof v === 'number' && typeof t === 'number' && t > 0 && v >= t;
      rows.push({ k: k, v: v, t: t, crossed: crossed });
    }
    rows.sort(function (a, b) { return (b.crossed - a.crossed) || (b.t !== undefined) - (a.t !== undefined) || a.k.localeCompare(b.k); });
    for (const r of rows) {
      const tr = MXW.el('tr', r.crossed ? { cls: 'crossed' } : null);
      MXW.td(tr, r.k);
      MXW.td(tr, fmtNum(r.v), 'num');
      MXW.td(tr, fmtNum(r.t), 'num');
      MXW.td(tr, r.crossed ? 'yes' : '');
      tb.appendChild(tr);
    }
    let head = '';
    if (d && d.rule) {
      head = 'Rule ' + d.rule;
      if (ex.value !== undefined) head += ': ' + fmtNum(ex.value);
      if (ex.threshold !== undefined) head += ' against a threshold of ' + fmtNum(ex.threshold);
      if (ex.window) head += ' within ' + MXW.fmtDuration(ex.window);
      if (ex.multiplier !== undefined && ex.multiplier !== 1) head += ' (threshold multiplier ' + fmtNum(ex.multiplier) + ')';
      if (d.score !== undefined && d.score !== null) head += '; score ' + fmtNum(d.score) + ' → ' + d.response;
      if (ex.past_decisions) head += '; ' + ex.past_decisions + ' earlier decision(s)';
      head += '.';
    }
    document.getElementById('explain').textContent = head;
    const counts = (d && d.counts) || {};
    document.getElementById('counts').textContent = Object.keys(counts).length ? 'Events behind it: ' +
      Object.keys(counts).map(function (k) { return k + ' ' + counts[k]; }).join(', ') : '';
    panel.hidden = !d;
  }

  function renderEvidence(lines, note) {
    const ol = document.getElementById('evidence');
    MXW.clear(ol);
    for (const l of lines) ol.appendChild(MXW.el('li', { cls: 'logline' }, l));
    document.getElementById('evidence-note').textContent = note || (lines.length ? '' : 'No evidence lines stored.');
  }

  function renderHistory(hist) {
    const tb = document.querySelector('#history tbody');
    MXW.clear(tb);
    if (!hist.length) {
      const tr = MXW.el('tr');
      MXW.td(tr, 'no decision so far', 'empty').colSpan = 7;
      tb.appendChild(tr);
      return;
    }
    for (const d of hist) {
      const tr = MXW.el('tr');
      MXW.td(tr, MXW.fmtTime(d.since));
      MXW.td(tr, MXW.fmtTime(d.ended_at || d.until));
      MXW.td(tr, d.prefix);
      MXW.td(tr, d.response, 'resp resp-' + String(d.response).replace(/[^a-z]/g, ''));
      MXW.td(tr, d.rule + (d.manual ? ' (manual)' : ''));
      MXW.td(tr, d.active ? 'active' : (d.ended_at ? 'ended' : 'expired'));
      MXW.td(tr, d.reason, 'reason');
      tb.appendChild(tr);
    }
  }

  function renderEvents(items) {
    const tb = document.querySelector('#events tbody');
    MXW.clear(tb);
    if (!items.length) {
      const tr = MXW.el('tr');
      MXW.td(tr, 'no stored event', 'empty').colSpan = 8;
      tb.appendChild(tr);
      return;
    }
    const shown = items.slice(0, 50);
    document.getElementById('events-note').textContent = items.length > shown.length
      ? 'The newest ' + shown.length + ' of ' + items.length + (items.length >= 1000 ? '+' : '') + ' stored events.' : '';
    for (const e of shown) {
      const tr = MXW.el('tr');
      MXW.td(tr, MXW.fmtTime(e.ts));
      MXW.td(tr, e.ip);
      MXW.td(tr, e.kind);
      MXW.td(tr, e.category);
      MXW.td(tr, e.code === -1 || e.code === null ? '' : e.code);
      MXW.td(tr, e.helo, 'helo');
      MXW.td(tr, e.from);
      MXW.td(tr, e.to);
      tb.appendChild(tr);
    }
  }

  function renderTimeline(events, hist) {
    if (!events.length && !hist.length) {
      const old = Chart.getChart(document.getElementById('chart-timeline'));
      if (old) old.destroy();
      return;
    }
    const times = events.map(function (e) { return MXW.toDate(e.ts); }).filter(Boolean);
    for (const d of hist) { const t = MXW.toDate(d.since); if (t) times.push(t); }
    if (!times.length) return;
    let lo = Math.min.apply(null, times.map(function (t) { return t.getTime(); }));
    const hi = Math.max(Date.now(), Math.max.apply(null, times.map(function (t) { return t.getTime(); })));
    if (hi - lo < 3600000) lo = hi - 3600000; /* at least an hour, ending now */
    const span = hi - lo;
    const step = span <= 2 * 3600000 ? 300000 : (span <= 12 * 3600000 ? 900000 :
      (span <= 4 * 86400000 ? 3600000 : 86400000));
    lo = Math.floor(lo / step) * step;
    const n = Math.min(Math.floor(span / step) + 1, 500);
    const labels = [], evCounts = new Array(n).fill(0), decCounts = new Array(n).fill(0);
    for (let i = 0; i < n; i++) {
      const iso = new Date(lo + i * step).toISOString();
      labels.push(step >= 86400000 ? iso.slice(0, 10) : iso.slice(5, 10) + ' ' + iso.slice(11, 16));
    }
    for (const e of events) {
      const t = MXW.toDate(e.ts); if (!t) continue;
      const i = Math.floor((t.getTime() - lo) / step); if (i >= 0 && i < n) evCounts[i]++;
    }
    for (const d of hist) {
      const t = MXW.toDate(d.since); if (!t) continue;
      const i = Math.floor((t.getTime() - lo) / step); if (i >= 0 && i < n) decCounts[i]++;
    }
    const canvas = document.getElementById('chart-timeline');
    const old = Chart.getChart(canvas);
    if (old) old.destroy();
    new Chart(canvas, {
      type: 'bar',
      data: {
        labels: labels,
        datasets: [
          { label: 'evidence events', data: evCounts, backgroundColor: '#30638e' },
          { label: 'decisions', data: decCounts, backgroundColor: '#d1495b' }
        ]
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { ticks: { maxTicksLimit: 12 } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } }
      }
    });
  }

  function wireUnblock(prefix) {
    const box = document.getElementById('unblock-box');
    const form = document.getElementById('unblock-form');
    const result = document.getElementById('unblock-result');
    box.hidden = false;
    document.getElementById('unblock').addEventListener('click', function () {
      form.hidden = false;
      document.getElementById('token').focus();
    });
    document.getElementById('unblock-cancel').addEventListener('click', function () {
      form.hidden = true;
      document.getElementById('token').value = '';
    });
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      const tokenInput = document.getElementById('token');
      const token = tokenInput.value.trim();
      const reason = document.getElementById('unblock-reason').value.trim() || 'unblocked from the dashboard';
      const url = '/api/v1/blocks/' + prefix.split('/').map(encodeURIComponent).join('/') +
        '?reason=' + encodeURIComponent(reason);
      try {
        const r = await fetch(url, { method: 'DELETE', headers: { Authorization: 'Bearer ' + token } });
        let body = null;
        try { body = await r.json(); } catch (e) { body = null; }
        if (!r.ok) throw new Error(body && body.error ? body.error : 'HTTP ' + r.status);
        result.textContent = 'Unblocked ' + prefix + '. The daemon applies it within seconds.';
        form.hidden = true;
        setTimeout(load, 1000);
      } catch (e) {
        result.textContent = 'Unblock failed: ' + e.message;
      } finally {
        tokenInput.value = '';
      }
    });
  }

  function renderEmail(data) {
    for (const p of document.querySelectorAll('.ip-only')) p.hidden = true;
    document.getElementById('senders-panel').hidden = false;
    const senders = data.senders || [];
    const blocked = senders.filter(function (x) { return x.blocked; }).length;
    const st = document.getElementById('status');
    st.textContent = blocked ? (blocked + ' of ' + senders.length + ' blocked') : 'no client blocked';
    st.className = 'badge ' + (blocked ? 'bad' : 'good');
    document.getElementById('scope').textContent = 'e-mail address';
    document.getElementById('sentence').textContent = 'Seen in ' + MXW.fmtInt(data.matched) + ' stored events from ' +
      senders.length + ' client IP(s) over the last ' + data.days + ' days' +
      (data.truncated ? ' (the search stopped after the newest ' + MXW.fmtInt(data.scanned) + ' events)' : '') + '.';
    const tb = document.querySelector('#senders tbody');
    MXW.clear(tb);
    if (!senders.length) {
      const tr = MXW.el('tr');
      MXW.td(tr, 'no stored event carries this address', 'empty').colSpan = 7;
      tb.appendChild(tr);
    }
    for (const x of senders) {
      const tr = MXW.el('tr');
      const td = MXW.el('td');
      td.appendChild(MXW.el('a', { href: MXW.lookupHref(x.ip) }, x.ip));
      tr.appendChild(td);
      MXW.td(tr, x.role);
      MXW.td(tr, MXW.fmtInt(x.count), 'num');
      MXW.td(tr, MXW.fmtTime(x.first));
      MXW.td(tr, MXW.fmtTime(x.last));
      const cats = x.categories || {};
      MXW.td(tr, Object.keys(cats).sort(function (a, b) { return cats[b] - cats[a]; }).slice(0, 3)
        .map(function (k) { return k + ' ' + cats[k]; }).join(', '));
      const d = x.decision;
      const status = d ? ('blocked: ' + d.prefix + ' (' + d.rule + ', ' + d.response + ') — ' + d.reason) : 'not blocked';
      MXW.td(tr, status, d ? 'resp-reject reason' : 'reason').title = status;
      tb.appendChild(tr);
    }
    document.body.dataset.loaded = '1';
  }

  let unblockWired = false;

  async function load() {
    const q = queryFromPath();
    document.getElementById('query').textContent = q;
    document.getElementById('q').value = q;
    document.title = 'mxwarden — ' + q;
    let data;
    try {
      data = await MXW.getJSON('/api/v1/lookup/' + q.split('/').map(encodeURIComponent).join('/'));
    } catch (e) {
      MXW.showError('Lookup failed: ' + e.message);
      document.getElementById('status').textContent = 'unknown';
      return;
    }
    MXW.showError(null);
    if (data.kind === 'email') {
      renderEmail(data);
      return;
    }
    const d = decisionOf(data);
    const blocked = !!(data.blocked || (d && d.active));
    const st = document.getElementById('status');
    st.textContent = blocked ? 'BLOCKED' : 'not blocked';
    st.className = 'badge ' + (blocked ? 'bad' : 'good');
    document.getElementById('scope').textContent = d ? ('decision on ' + d.prefix + ' (' + d.scope + ', ' +
      d.response + ', until ' + MXW.fmtTime(d.until) + ')') : '';
    const s = sentenceOf(data, d);
    document.getElementById('sentence').textContent = s || (blocked ? '' : 'No decision is in force on this address or its class.');

    renderThresholds(d);
    const lines = [];
    if (d && isLineList(d.evidence)) for (const x of d.evidence) lines.push(typeof x === 'string' ? x : x.line);

    const hist = (d ? [d] : []).concat(historyOf(data));
    renderHistory(hist);

    let events = [];
    let evq = null;
    if (q.indexOf('@') < 0) evq = q.indexOf('/') >= 0 ? 'class=' + encodeURIComponent(q) : 'ip=' + encodeURIComponent(q);
    if (evq) {
      try {
        const page = await MXW.getJSON('/api/v1/events?limit=1000&' + evq);
        events = page.items || [];
      } catch (e) { events = []; }
    }
    if (!lines.length) {
      for (const e of events.slice(0, 20)) if (e.line) lines.push(e.line);
      renderEvidence(lines, lines.length ? 'The newest stored log lines of this sender.' : null);
    } else {
      renderEvidence(lines, null);
    }
    renderEvents(events);
    renderTimeline(events, hist);
    if (q.indexOf('@') < 0) {
      const a = document.getElementById('evidence-report');
      a.href = '/api/v1/report/evidence?format=html&prefix=' + encodeURIComponent(d && d.prefix ? d.prefix : q);
      a.hidden = false;
    }
    if (blocked && d && d.prefix && !unblockWired) {
      unblockWired = true;
      wireUnblock(d.prefix);
    }
    document.body.dataset.loaded = '1';
  }

  document.addEventListener('DOMContentLoaded', function () {
    MXW.wireSearch();
    load();
  });
})();
