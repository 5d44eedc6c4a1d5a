/* app.js - the overview: summary cards, rejection charts (Chart.js) by
 * reply-code class and by category over 1 h / 24 h / 7 d / 30 d, top
 * offenders, active blocks; live updates from /api/v1/stream. */
'use strict';

(function () {
  const state = { range: 3600, charts: {}, blocksNext: null, refreshing: false, lastRefresh: 0, pending: false, dirty: false };

  function seriesToDatasets(ts, keepNone, colors) {
    const perMin = (ts.step || 60) / 60;
    const out = [];
    let i = 0;
    const names = Object.keys(ts.series || {}).sort();
    for (const name of names) {
      if (!keepNone && (name === 'none' || name === 'accepted')) continue;
      const vals = ts.series[name].map(function (v) { return Math.round((v / perMin) * 100) / 100; });
      const color = (colors && colors[name]) || MXW.palette[i % MXW.palette.length];
      i++;
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

  function drawChart(id, ts, keepNone, colors) {
    const labels = labelsOf(ts);
    const datasets = seriesToDatasets(ts, keepNone, colors);
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
          x: { stacked: true, ticks: { maxTicksLimit: 12, autoSkip: true } },
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

  function renderTop(tableId, top) {
    const tb = document.querySelector('#' + tableId + ' tbody');
    MXW.clear(tb);
    const items = (top && top.items) || [];
    if (!items.length) {
      const tr = MXW.el('tr');
      const td = MXW.td(tr, 'nothing in this window', 'empty');
      td.colSpan = 3;
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
      tb.appendChild(tr);
    }
  }

  function blockRow(b, now) {
    const tr = MXW.el('tr');
    tr.dataset.id = b.id;
    const td = MXW.el('td');
    td.appendChild(MXW.el('a', { href: MXW.lookupHref(b.prefix) }, b.prefix));
    tr.appendChild(td);
    MXW.td(tr, b.response, 'resp resp-' + String(b.response).replace(/[^a-z]/g, ''));
    MXW.td(tr, b.rule + (b.manual ? ' (manual)' : ''));
    const until = MXW.toDate(b.until);
    const left = until ? (until.getTime() / 1000 - now) : null;
    MXW.td(tr, MXW.fmtDuration(left)).title = MXW.fmtTime(b.until);
    MXW.td(tr, b.reason, 'reason');
    return tr;
  }

  function renderBlocks(page, append) {
    const tb = document.querySelector('#blocks tbody');
    if (!append) MXW.clear(tb);
    const now = Date.now() / 1000;
    const items = (page && page.items) || [];
    if (!items.length && !append) {
      const tr = MXW.el('tr');
      const td = MXW.td(tr, 'no active block', 'empty');
      td.colSpan = 5;
      tb.appendChild(tr);
    }
    for (const b of items) tb.appendChild(blockRow(b, now));
    state.blocksNext = page ? page.next : null;
    document.getElementById('blocks-more').hidden = !state.blocksNext;
  }

  function windowName(range) {
    return range >= 86400 ? (range / 86400) + 'd' : (range / 3600) + 'h';
  }

  async function refresh() {
    if (state.refreshing) { state.pending = true; return; }
    state.refreshing = true;
    state.lastRefresh = Date.now();
    try {
      const to = Math.ceil(Date.now() / 60000) * 60;
      const from = to - state.range;
      const q = 'from=' + from + '&to=' + to;
      const win = windowName(state.range);
      const [sum, codes, cats, topc, topi, blocks] = await Promise.all([
        MXW.getJSON('/api/v1/summary'),
        MXW.getJSON('/api/v1/timeseries?metric=codes&' + q),
        MXW.getJSON('/api/v1/timeseries?metric=categories&' + q),
        MXW.getJSON('/api/v1/top?by=class&limit=10&window=' + win),
        MXW.getJSON('/api/v1/top?by=ip&limit=10&window=' + win),
        MXW.getJSON('/api/v1/blocks?active=true&limit=50')
      ]);
      renderSummary(sum);
      drawChart('chart-codes', codes, false, MXW.codeColors);
      drawChart('chart-cats', cats, false, null);
      renderTop('top-class', topc);
      renderTop('top-ip', topi);
      renderBlocks(blocks, false);
      MXW.showError(null);
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    } catch (e) {
      MXW.showError('Could not load the data: ' + e.message);
    } finally {
      state.refreshing = false;
      if (state.pending) { state.pending = false; setTimeout(refresh, 500); }
    }
  }

  function wireRanges() {
    const box = document.getElementById('ranges');
    box.addEventListener('click', function (ev) {
      const b = ev.target.closest('button[data-range]');
      if (!b) return;
      for (const x of box.querySelectorAll('button')) x.classList.toggle('on', x === b);
      state.range = Number(b.dataset.range);
      refresh();
    });
  }

  function wireMore() {
    document.getElementById('blocks-more').addEventListener('click', async function () {
      if (!state.blocksNext) return;
      try {
        const page = await MXW.getJSON('/api/v1/blocks?active=true&limit=50&cursor=' + encodeURIComponent(state.blocksNext));
        renderBlocks(page, true);
      } catch (e) { MXW.showError(e.message); }
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
      /* new lines: redraw, at most every 5 s */
      if (t.events > 0 || t.lines > 0) state.dirty = true;
      if (state.dirty && Date.now() - state.lastRefresh > 5000) { state.dirty = false; refresh(); }
    });
    es.addEventListener('decision', function (ev) {
      let d;
      try { d = JSON.parse(ev.data); } catch (e) { return; }
      if (!d.active) return;
      const tb = document.querySelector('#blocks tbody');
      const empty = tb.querySelector('td.empty');
      if (empty) MXW.clear(tb);
      tb.insertBefore(blockRow(d, Date.now() / 1000), tb.firstChild);
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    MXW.wireSearch();
    wireRanges();
    wireMore();
    refresh();
    wireLive();
    setInterval(function () { if (Date.now() - state.lastRefresh > 60000) refresh(); }, 10000);
  });
})();
