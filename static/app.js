/* app.js - the overview: what is enforced (the status strip), summary
 * cards, rejection charts (Chart.js) by reply-code class and by category
 * over a preset or an absolute time range (kept in the URL), top offenders
 * with the decision in force on each, the decisions (in force or all,
 * filtered, paged), the allows made by hand, and block/allow with the API
 * token; live updates from /api/v1/stream. After an import of older logs
 * it opens where the data is and says so. */
'use strict';

(function () {
  const PRESETS = { '1h': 3600, '24h': 86400, '7d': 604800, '30d': 2592000 };
  const state = {
    range: 3600, from: null, to: null, /* absolute range (epoch seconds) when set */
    charts: {}, refreshing: false, lastRefresh: 0, pending: false, dirty: false,
    dec: { cursors: [null], page: 0, next: null }
  };

  /* ------------------------------------------------------------ the range */

  function presetName(secs) {
    for (const k of Object.keys(PRESETS)) if (PRESETS[k] === secs) return k;
    return null;
  }

  function rangeFromURL() {
    const p = new URLSearchParams(window.location.search);
    const from = Number(p.get('from')), to = Number(p.get('to'));
    if (p.has('from') && p.has('to') && from > 0 && to > from) {
      state.from = from; state.to = to;
      return true;
    }
    if (p.has('range') && PRESETS[p.get('range')]) {
      state.range = PRESETS[p.get('range')];
      return true;
    }
    return false;
  }

  function rangeToURL() {
    const p = new URLSearchParams(window.location.search);
    p.delete('range'); p.delete('from'); p.delete('to');
    if (state.from !== null) { p.set('from', String(state.from)); p.set('to', String(state.to)); } else p.set('range', presetName(state.range) || '1h');
    history.replaceState(null, '', window.location.pathname + '?' + p.toString());
  }

  function currentRange() {
    if (state.from !== null) return { from: state.from, to: state.to };
    const to = Math.ceil(Date.now() / 60000) * 60;
    return { from: to - state.range, to: to };
  }

  /* datetime-local values are local time; the API takes epoch seconds */
  function toLocalInput(secs) {
    const d = new Date(secs * 1000);
    const pad = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  function showRange() {
    const r = currentRange();
    for (const b of document.querySelectorAll('#ranges button[data-range]'))
      b.classList.toggle('on', state.from === null && Number(b.dataset.range) === state.range);
    document.getElementById('range-from').value = toLocalInput(r.from);
    document.getElementById('range-to').value = toLocalInput(r.to);
  }

  /* ------------------------------------------------------------ charts */

  function seriesToDatasets(ts, colors) {
    const perMin = (ts.step || 60) / 60;
    const out = [];
    const names = Object.keys(ts.series || {}).sort();
    for (const name of names) {
      if (name === 'none' || name === 'accepted') continue;
      const vals = ts.series[name].map(function (v) { return Math.round((v / perMin) * 100) / 100; });
      const color = MXW.colorOf(colors, name);
      out.push({ label: name, data: vals, backgroundColor: color, borderColor: color, borderWidth: 0 });
    }
    return out;
  }

  function labelsOf(ts) {
    const long = (ts.to - ts.from) > 86400;
    return (ts.t || []).map(function (t) {
      const d = MXW.toDate(t);
      if (!d) return '';
      const iso = d.toISOString();
      return long ? iso.slice(5, 10) + ' ' + iso.slice(11, 16) : iso.slice(11, 16);
    });
  }

  function drawChart(id, ts, colors) {
    const labels = labelsOf(ts);
    const datasets = seriesToDatasets(ts, colors);
    let c = state.charts[id];
    if (c) {
      c.data.labels = labels;
      c.data.datasets = datasets;
      c.update('none');
      return;
    }
    c = new Chart(document.getElementById(id), {
      type: 'bar',
      data: { labels: labels, datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: { stacked: true, ticks: { maxTicksLimit: 8, autoSkip: true, maxRotation: 0 } },
          y: { stacked: true, beginAtZero: true, title: { display: true, text: 'per minute' } }
        },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } }
      }
    });
    state.charts[id] = c;
  }

  function setText(id, v) {
    const e = document.getElementById(id);
    if (e) e.textContent = v;
  }

  function renderSummary(s) {
    const ev = s.events || {}, rj = s.rejects || {}, ing = s.ingest || {};
    setText('c-events-hour', MXW.fmtInt(ev.last_hour));
    setText('c-events-day', MXW.fmtInt(ev.last_day));
    setText('c-rejects-hour', MXW.fmtInt(typeof rj === 'object' ? rj.last_hour : rj));
    setText('c-blocks', MXW.fmtInt(s.blocks_active));
    setText('c-lines', MXW.fmtInt(ing.lines_read));
    setText('c-rate', ing.lines_per_sec === undefined || ing.lines_per_sec === null ? '–' : Number(ing.lines_per_sec).toFixed(1));
    setText('c-lag', ing.lag_seconds === null || ing.lag_seconds === undefined ? '–' : MXW.fmtDuration(ing.lag_seconds));
    setText('c-errors', MXW.fmtInt(ing.parse_errors_last_hour));
  }

  function mainCategories(cats) {
    if (!cats) return '';
    return Object.keys(cats).sort(function (a, b) { return cats[b] - cats[a]; }).slice(0, 3)
      .map(function (k) { return k + ' ' + cats[k]; }).join(', ');
  }

  /* The decision in force on a row of the top tables, as a badge. */
  function decisionBadge(td, d) {
    if (!d) { td.textContent = ''; return; }
    const a = MXW.el('a', { href: MXW.lookupHref(d.prefix), cls: 'tag resp-' + String(d.response).replace(/[^a-z]/g, ''),
      title: 'decision #' + d.id + ' on ' + d.prefix + ' (' + d.rule + ')' }, d.response === 'observe' ? 'observed' : 'blocked');
    td.appendChild(a);
  }

  function renderTop(tableId, top) {
    const tb = document.querySelector('#' + tableId + ' tbody');
    MXW.clear(tb);
    const items = (top && top.items) || [];
    if (!items.length) {
      const tr = MXW.el('tr');
      const td = MXW.td(tr, 'nothing in this range', 'empty');
      td.colSpan = 4;
      tb.appendChild(tr);
      return;
    }
    for (const it of items) {
      const tr = MXW.el('tr');
      const td = MXW.el('td');
      td.appendChild(MXW.el('a', { href: MXW.lookupHref(it.prefix) }, it.prefix));
      tr.appendChild(td);
      MXW.td(tr, MXW.fmtInt(it.count), 'num');
      MXW.td(tr, mainCategories(it.categories));
      decisionBadge(MXW.td(tr, '', 'badgecell'), it.decision);
      tb.appendChild(tr);
    }
  }

  /* ------------------------------------------------------------ status strip */

  function chip(box, text, cls, title) {
    const c = MXW.el('span', { cls: 'chip ' + cls, title: title || '' }, text);
    box.appendChild(c);
    return c;
  }

  function renderStatus(st) {
    const box = document.getElementById('status-strip');
    MXW.clear(box);
    const outs = st.outputs || [];
    if (!st.outputs_configured) {
      chip(box, 'NOT ENFORCED: no [output] is configured — decisions are shown here, no blocklist carries them', 'bad')
        .dataset.kind = 'no-output';
    }
    if (st.dry_run) chip(box, 'DRY RUN: automatic decisions reach no blocklist', 'warn').dataset.kind = 'dry-run';
    for (const o of outs) {
      const parts = [o.name + ' (' + (o.format || '?') + ')'];
      if (st.published) {
        parts.push(MXW.fmtInt(o.entries) + ' entries');
        parts.push('written ' + MXW.fmtAgo(o.last_write));
        parts.push('reload ' + (o.reload || 'none'));
      } else {
        parts.push('state not published yet');
      }
      const bad = o.breaker_open || o.reload === 'failed' || o.reload === 'killed' || (o.write_errors > 0 && !o.last_write);
      const c = chip(box, parts.join(' · '), bad ? 'bad' : 'good', o.path);
      c.dataset.kind = 'output';
      c.dataset.output = o.name;
      if (o.breaker_open) chip(box, 'CIRCUIT BREAKER OPEN on ' + o.name + ': the old file is kept', 'bad').dataset.kind = 'breaker';
    }
    for (const w of (st.warnings || [])) {
      if (!st.outputs_configured && /no \[output\]/.test(w)) continue;
      if (st.dry_run && /dry_run/.test(w)) continue;
      chip(box, w, 'warn').dataset.kind = 'warning';
    }
    if (!box.firstChild) chip(box, 'enforced', 'good');
    document.body.dataset.status = '1';
  }

  async function loadStatus() {
    try { renderStatus(await MXW.getJSON('/api/v1/status')); } catch (e) { /* the rest still works */ }
  }

  /* ------------------------------------------------------------ decisions */

  function decRow(b, now) {
    const tr = MXW.el('tr');
    tr.dataset.id = b.id;
    MXW.td(tr, b.id, 'num');
    const td = MXW.el('td');
    td.appendChild(MXW.el('a', { href: MXW.lookupHref(b.prefix) }, b.prefix));
    tr.appendChild(td);
    MXW.respCell(tr, b.response);
    MXW.td(tr, b.rule + (b.manual ? ' (manual)' : ''));
    MXW.td(tr, MXW.fmtTime(b.since), 'time');
    let until;
    if (b.ended_at) until = (b.end_reason === 'expired' ? 'expired ' : 'ended ') + MXW.fmtTime(b.ended_at);
    else if (b.active === false) until = 'expired ' + MXW.fmtTime(b.until);
    else {
      const u = MXW.toDate(b.until);
      until = u ? 'in ' + MXW.fmtDuration(u.getTime() / 1000 - now) : '–';
    }
    MXW.td(tr, until, 'until').title = MXW.fmtTime(b.until);
    MXW.td(tr, b.by || b.created_by || '');
    MXW.td(tr, b.events === null || b.events === undefined ? '' : MXW.fmtInt(b.events), 'num');
    MXW.td(tr, b.reason, 'reason').title = b.reason || '';
    return tr;
  }

  function decQuery() {
    const q = new URLSearchParams();
    q.set('active', document.getElementById('dec-active').value);
    for (const [id, k] of [['dec-since', 'since'], ['dec-rule', 'rule'], ['dec-scope', 'scope']]) {
      const v = document.getElementById(id).value;
      if (v) q.set(k, v);
    }
    q.set('limit', '20');
    return q;
  }

  async function loadDecisions() {
    const q = decQuery();
    const cur = state.dec.cursors[state.dec.page];
    if (cur) q.set('cursor', cur);
    const page = await MXW.getJSON('/api/v1/decisions?' + q.toString());
    const tb = document.querySelector('#blocks tbody');
    MXW.clear(tb);
    const now = Date.now() / 1000;
    const items = page.items || [];
    if (!items.length && state.dec.page === 0 && !state.dec.switched && document.getElementById('dec-active').value === 'true') {
      /* nothing in force (an import of older logs: its decisions ended in
       * its own time): show every decision rather than an empty table */
      state.dec.switched = true;
      document.getElementById('dec-active').value = 'false';
      setText('dec-note', 'No decision is in force now; showing every decision, newest first.');
      return loadDecisions();
    }
    if (!items.length) {
      const tr = MXW.el('tr');
      MXW.td(tr, document.getElementById('dec-active').value === 'true' ? 'no decision in force' : 'no decision', 'empty').colSpan = 9;
      tb.appendChild(tr);
    }
    for (const b of items) tb.appendChild(decRow(b, now));
    state.dec.next = page.next;
    document.getElementById('blocks-more').hidden = !page.next;
    document.getElementById('dec-prev').hidden = state.dec.page === 0;
    setText('dec-page', state.dec.page ? 'page ' + (state.dec.page + 1) : '');
    const al = await MXW.getJSON('/api/v1/allows?active=true');
    const ta = document.querySelector('#allows tbody');
    MXW.clear(ta);
    if (!(al.items || []).length) {
      const tr = MXW.el('tr');
      MXW.td(tr, 'none', 'empty').colSpan = 4;
      ta.appendChild(tr);
    }
    for (const a of (al.items || [])) {
      const tr = MXW.el('tr');
      const td = MXW.el('td');
      td.appendChild(MXW.el('a', { href: MXW.lookupHref(a.prefix) }, a.prefix));
      tr.appendChild(td);
      MXW.td(tr, MXW.fmtTime(a.until));
      MXW.td(tr, a.by || '');
      MXW.td(tr, a.reason, 'reason');
      ta.appendChild(tr);
    }
    document.body.dataset.decisions = String(Number(document.body.dataset.decisions || 0) + 1);
  }

  function wireDecisions() {
    document.getElementById('dec-filter').addEventListener('change', function () {
      setText('dec-note', '');
      state.dec.cursors = [null];
      state.dec.page = 0;
      loadDecisions().catch(function (e) { MXW.showError(e.message); });
    });
    document.getElementById('blocks-more').addEventListener('click', function () {
      if (!state.dec.next) return;
      state.dec.cursors[state.dec.page + 1] = state.dec.next;
      state.dec.page++;
      loadDecisions().catch(function (e) { MXW.showError(e.message); });
    });
    document.getElementById('dec-prev').addEventListener('click', function () {
      if (state.dec.page === 0) return;
      state.dec.page--;
      loadDecisions().catch(function (e) { MXW.showError(e.message); });
    });
    const form = document.getElementById('act-form');
    let which = 'block';
    for (const id of ['act-block', 'act-allow'])
      document.getElementById(id).addEventListener('click', function (ev) { which = ev.target.value; });
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      const tokenInput = document.getElementById('act-token');
      const body = {
        prefix: document.getElementById('act-prefix').value.trim(),
        duration: document.getElementById('act-for').value.trim(),
        reason: document.getElementById('act-reason').value.trim()
      };
      if (which === 'block') body.response = document.getElementById('act-response').value;
      const out = document.getElementById('act-result');
      try {
        const r = await MXW.sendWithToken('POST', '/api/v1/' + (which === 'block' ? 'blocks' : 'allows'), tokenInput.value.trim(), body);
        out.textContent = (which === 'block' ? 'Blocked ' : 'Allowed ') + r.prefix + ' until ' + MXW.fmtTime(r.until) +
          (r.extended ? ' (it was already: made to last longer)' : '') + '. The daemon applies it within seconds.';
        out.className = 'note ok';
        state.dec.cursors = [null];
        state.dec.page = 0;
        await loadDecisions();
      } catch (e) {
        out.textContent = (which === 'block' ? 'Block' : 'Allow') + ' failed: ' + e.message;
        out.className = 'note error';
      } finally {
        tokenInput.value = '';
      }
    });
  }

  /* ------------------------------------------------------------ refresh */

  async function refresh() {
    if (state.refreshing) { state.pending = true; return; }
    state.refreshing = true;
    state.lastRefresh = Date.now();
    try {
      const r = currentRange();
      const q = 'from=' + r.from + '&to=' + r.to;
      const [sum, codes, cats, topc, topi] = await Promise.all([
        MXW.getJSON('/api/v1/summary'),
        MXW.getJSON('/api/v1/timeseries?metric=codes&' + q),
        MXW.getJSON('/api/v1/timeseries?metric=categories&' + q),
        MXW.getJSON('/api/v1/top?by=class&limit=10&' + q),
        MXW.getJSON('/api/v1/top?by=ip&limit=10&' + q)
      ]);
      renderSummary(sum);
      drawChart('chart-codes', codes, MXW.codeColors);
      drawChart('chart-cats', cats, MXW.categoryColors);
      renderTop('top-class', topc);
      renderTop('top-ip', topi);
      MXW.showError(null);
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    } catch (e) {
      MXW.showError('Could not load the data: ' + e.message);
    } finally {
      state.refreshing = false;
      if (state.pending) { state.pending = false; setTimeout(refresh, 500); }
    }
  }

  /* No range asked for, and nothing in the last hour, but data further
   * back (an import of older logs, a source that stopped): open on the
   * newest data and say so. */
  async function openWhereTheDataIs() {
    let sum;
    try { sum = await MXW.getJSON('/api/v1/summary'); } catch (e) { return; }
    const data = sum.data || {};
    const last = MXW.toDate(data.last), first = MXW.toDate(data.first);
    const note = document.getElementById('range-note');
    if (!last) { note.textContent = 'No data yet: nothing was followed or imported.'; return; }
    const now = Date.now() / 1000, lastS = Math.ceil(last.getTime() / 60000) * 60;
    if ((sum.events || {}).last_hour > 0 || lastS > now - 3600) return;
    const span = lastS - Math.floor(first.getTime() / 1000);
    const len = span <= 3600 ? 3600 : span <= 86400 ? 86400 : span <= 604800 ? 604800 : 2592000;
    state.from = lastS - len;
    state.to = lastS;
    note.textContent = 'Nothing in the last hour: showing the newest data, ' + MXW.fmtTime(state.from) + ' to ' +
      MXW.fmtTime(state.to) + ' (the logs\' own time; the data spans ' + MXW.fmtTime(data.first) + ' to ' +
      MXW.fmtTime(data.last) + ').';
    note.dataset.moved = '1';
    rangeToURL();
  }

  function wireRanges() {
    const box = document.getElementById('ranges');
    box.addEventListener('click', function (ev) {
      const b = ev.target.closest('button[data-range]');
      if (!b) return;
      state.range = Number(b.dataset.range);
      state.from = state.to = null;
      document.getElementById('range-note').textContent = '';
      rangeToURL();
      showRange();
      refresh();
    });
    document.getElementById('range-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      const f = new Date(document.getElementById('range-from').value).getTime() / 1000;
      const t = new Date(document.getElementById('range-to').value).getTime() / 1000;
      if (!(f > 0) || !(t > f)) { MXW.showError('The range needs a start before its end.'); return; }
      state.from = Math.floor(f / 60) * 60;
      state.to = Math.ceil(t / 60) * 60;
      document.getElementById('range-note').textContent = '';
      rangeToURL();
      showRange();
      refresh();
    });
  }

  function wireLive() {
    if (!window.EventSource) return;
    const live = document.getElementById('live');
    const es = new EventSource('/api/v1/stream');
    es.addEventListener('open', function () { live.textContent = 'live'; live.className = 'live on'; });
    es.addEventListener('error', function () { live.textContent = 'reconnecting'; live.className = 'live off'; });
    es.addEventListener('tick', function (ev) {
      let t;
      try { t = JSON.parse(ev.data); } catch (e) { return; }
      if (typeof t.lines_read === 'number') setText('c-lines', MXW.fmtInt(t.lines_read));
      if (typeof t.lines === 'number') setText('c-rate', String(t.lines));
      if (typeof t.decisions_active === 'number') setText('c-blocks', MXW.fmtInt(t.decisions_active));
      live.textContent = 'live · ' + (typeof t.lines === 'number' ? t.lines : 0) + ' lines/s';
      document.body.dataset.ticks = String(Number(document.body.dataset.ticks || 0) + 1);
      /* new lines: redraw, at most every 5 s (an absolute range in the past does not move) */
      if (t.events > 0 || t.lines > 0) state.dirty = true;
      if (state.dirty && Date.now() - state.lastRefresh > 5000) { state.dirty = false; refresh(); loadStatus(); }
    });
    es.addEventListener('decision', function (ev) {
      let d;
      try { d = JSON.parse(ev.data); } catch (e) { return; }
      if (!d.active || state.dec.page !== 0 || document.getElementById('dec-active').value !== 'true') return;
      const tb = document.querySelector('#blocks tbody');
      const empty = tb.querySelector('td.empty');
      if (empty) MXW.clear(tb);
      d.by = d.created_by;
      tb.insertBefore(decRow(d, Date.now() / 1000), tb.firstChild);
    });
  }

  document.addEventListener('DOMContentLoaded', async function () {
    MXW.wireSearch();
    wireRanges();
    wireDecisions();
    if (!rangeFromURL()) await openWhereTheDataIs();
    showRange();
    loadStatus();
    refresh();
    loadDecisions().catch(function (e) { MXW.showError(e.message); });
    wireLive();
    setInterval(function () { if (Date.now() - state.lastRefresh > 60000) { refresh(); loadStatus(); } }, 10000);
  });
})();
