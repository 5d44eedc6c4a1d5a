/* lookup.js - the lookup page at /lookup/QUERY: what `mxwarden lookup`
 * says, in one screen: the state (blocked, partly blocked, decided but not
 * enforced, allowed, clean, never seen) and its sentence, the decision in
 * force (who made it, the upgrades, the worst connection), which blocklists
 * hold it or why not, what was seen of the sender, the thresholds crossed,
 * the evidence lines, a timeline, the history with the evidence of ended
 * decisions, and unblock / block / allow with the API token (sent as a
 * bearer header, never stored). Panels with nothing to show stay hidden. */
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

  function show(id, yes) { document.getElementById(id).hidden = !yes; }

  function fmtNum(v) {
    if (typeof v !== 'number') return v === undefined || v === null ? '' : String(v);
    return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
  }

  function fact(dl, term, text) {
    if (text === undefined || text === null || text === '') return;
    dl.appendChild(MXW.el('dt', null, term));
    dl.appendChild(MXW.el('dd', null, text));
  }

  /* The decision's explanation (aggregator: explain = {window, value,
   * threshold, multiplier, numbers, thresholds}): one row per measure,
   * the crossed thresholds first. */
  function renderThresholds(d) {
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
    show('thresholds-panel', rows.length > 0);
  }

  /* One connection of decision.sessions, in words (docs/api.md). */
  function sessionText(s) {
    if (!s) return '';
    let t = s.rcpts + ' RCPT' + (s.rcpts === 1 ? '' : 's') + ', ' + s.rejected + ' rejected';
    if (s.unknown_recipients) t += ' (' + s.unknown_recipients + ' unknown)';
    if (s.other_rejections) t += ', ' + s.other_rejections + ' other refusals';
    if (s.auth_failures) t += ', ' + s.auth_failures + ' AUTH failures';
    if (s.protocol) t += ', ' + s.protocol + ' protocol errors';
    t += ', ' + s.accepted + ' accepted';
    if (s.code) t += '; mostly ' + s.code + (s.dsn ? ' ' + s.dsn : '');
    if (s.back_off) t += '; came back ' + s.back_off.seconds + 's after a ' + s.back_off.after_code + (s.back_off.after_dsn ? ' ' + s.back_off.after_dsn : '');
    if (s.start) t += ' (' + MXW.fmtTime(s.start) + ')';
    return t;
  }

  function renderDecision(d) {
    const dl = document.getElementById('facts');
    MXW.clear(dl);
    const ch = document.getElementById('changes');
    MXW.clear(ch);
    if (!d) {
      show('facts', false); show('changes-box', false); show('worst', false);
      return;
    }
    fact(dl, 'decision', '#' + d.id + ' on ' + d.prefix + ' (' + d.scope + ')');
    fact(dl, 'rule', d.rule + (d.manual ? ' (made by hand)' : ''));
    fact(dl, 'response', d.response);
    fact(dl, 'since', MXW.fmtTime(d.since));
    fact(dl, d.ended_at ? 'ended' : 'until', MXW.fmtTime(d.ended_at || d.until));
    fact(dl, 'made by', d.created_by);
    fact(dl, 'why', d.reason);
    show('facts', true);
    for (const c of (d.changes || [])) {
      ch.appendChild(MXW.el('li', null, MXW.fmtTime(c.at) + ': ' + c.change + ' ' + (c.from || '?') + ' → ' + c.response +
        ' (rule ' + c.rule + ', until ' + MXW.fmtTime(c.until) + '): ' + (c.reason || '')));
    }
    show('changes-box', (d.changes || []).length > 0);
    const s = d.sessions || {};
    const w = document.getElementById('worst');
    w.textContent = s.worst ? 'Worst connection: ' + sessionText(s.worst) + (s.bad ? '; ' + s.bad + ' connection(s) ended badly.' : '.') : '';
    show('worst', !!s.worst);
  }

  function renderOutputs(data) {
    const ul = document.getElementById('outputs');
    MXW.clear(ul);
    const outs = data.outputs || [];
    for (const o of outs) {
      let t = o.output + ' (' + o.format + ', ' + o.path + '): ';
      if (o.why) t += o.detail;
      else if (o.holds) t += 'holds ' + o.entry;
      else if (o.inside) t += 'holds ' + o.inside + ' entr' + (o.inside === 1 ? 'y' : 'ies') + ' inside it (' + (o.inside_entries || []).join(', ') + ')';
      else if (!o.readable) t += 'its file cannot be read (not written yet?)';
      else t += 'does not hold it';
      const li = MXW.el('li', { cls: o.holds ? 'resp-drop' : '' }, t);
      li.dataset.output = o.output;
      ul.appendChild(li);
    }
    if (!outs.length && data.decision) ul.appendChild(MXW.el('li', null, 'No [output] is configured: no blocklist carries any decision.'));
    show('outputs-panel', ul.childNodes.length > 0);
  }

  function renderSeen(seen, recent) {
    const dl = document.getElementById('seen');
    MXW.clear(dl);
    if (seen && seen.connections) {
      fact(dl, seen.scope === 'class' ? 'connections (class)' : 'connections', MXW.fmtInt(seen.connections));
      if (seen.delivered !== null && seen.delivered !== undefined) fact(dl, 'delivered', MXW.fmtInt(seen.delivered) + ' message(s)');
      fact(dl, 'refused', MXW.fmtInt(seen.refused));
      if (seen.other_evidence) fact(dl, 'other evidence', MXW.fmtInt(seen.other_evidence) + ' (AUTH failures, protocol errors, lost connections)');
      fact(dl, 'first seen', 'in the hour from ' + MXW.fmtTime(seen.first_hour));
      fact(dl, 'last seen', 'in the hour from ' + MXW.fmtTime(seen.last_hour));
    }
    if (recent && recent.total) fact(dl, 'events, last day', MXW.fmtInt(recent.total));
    show('seen-panel', dl.childNodes.length > 0);
  }

  function renderInside(items) {
    const tb = document.querySelector('#inside tbody');
    MXW.clear(tb);
    for (const d of items) {
      const tr = MXW.el('tr');
      const td = MXW.el('td');
      td.appendChild(MXW.el('a', { href: MXW.lookupHref(d.prefix) }, d.prefix));
      tr.appendChild(td);
      MXW.respCell(tr, d.response);
      MXW.td(tr, d.rule + (d.manual ? ' (manual)' : ''));
      MXW.td(tr, MXW.fmtTime(d.until));
      MXW.td(tr, d.reason, 'reason').title = d.reason || '';
      tb.appendChild(tr);
    }
    show('inside-panel', items.length > 0);
  }

  function renderEvidence(lines, note) {
    const ol = document.getElementById('evidence');
    MXW.clear(ol);
    for (const l of lines) ol.appendChild(MXW.el('li', { cls: 'logline' }, l));
    document.getElementById('evidence-note').textContent = note || '';
    show('panel-evidence', lines.length > 0);
  }

  function renderHistory(hist) {
    const tb = document.querySelector('#history tbody');
    MXW.clear(tb);
    for (const d of hist) {
      const tr = MXW.el('tr');
      MXW.td(tr, MXW.fmtTime(d.since), 'time');
      MXW.td(tr, MXW.fmtTime(d.ended_at || d.until), 'time');
      MXW.td(tr, d.prefix);
      MXW.respCell(tr, d.response);
      MXW.td(tr, d.rule + (d.manual ? ' (manual)' : ''));
      MXW.td(tr, d.active ? 'in force' : (d.ended_at ? (d.end_reason === 'expired' ? 'expired' : 'ended') : 'expired'));
      MXW.td(tr, d.created_by || '');
      MXW.td(tr, d.reason, 'reason').title = d.reason || '';
      tb.appendChild(tr);
    }
    show('panel-decision-history', hist.length > 0);
  }

  function renderEvents(items) {
    const tb = document.querySelector('#events tbody');
    MXW.clear(tb);
    const shown = items.slice(0, 50);
    document.getElementById('events-note').textContent = items.length > shown.length
      ? 'The newest ' + shown.length + ' of ' + items.length + (items.length >= 1000 ? '+' : '') + ' stored events.' : '';
    for (const e of shown) {
      const tr = MXW.el('tr');
      MXW.td(tr, MXW.fmtTime(e.ts), 'time');
      MXW.td(tr, e.ip);
      MXW.td(tr, e.kind);
      MXW.td(tr, e.category);
      MXW.td(tr, e.code === -1 || e.code === null ? '' : e.code);
      MXW.td(tr, e.helo, 'helo');
      MXW.td(tr, e.from);
      MXW.td(tr, e.to);
      tb.appendChild(tr);
    }
    show('panel-recent-events', items.length > 0);
  }

  function renderTimeline(events, hist) {
    const canvas = document.getElementById('chart-timeline');
    const old = Chart.getChart(canvas);
    if (old) old.destroy();
    show('panel-timeline', events.length > 0 || hist.length > 0);
    if (!events.length && !hist.length) return;
    const times = events.map(function (e) { return MXW.toDate(e.ts); }).filter(Boolean);
    for (const d of hist) { const t = MXW.toDate(d.since); if (t) times.push(t); }
    if (!times.length) return;
    let lo = Math.min.apply(null, times.map(function (t) { return t.getTime(); }));
    const hi = Math.max.apply(null, times.map(function (t) { return t.getTime(); })) + 60000;
    if (hi - lo < 3600000) lo = hi - 3600000; /* at least an hour, ending at the newest */
    const span = hi - lo;
    const step = span <= 2 * 3600000 ? 300000 : (span <= 12 * 3600000 ? 900000 :
      (span <= 4 * 86400000 ? 3600000 : 86400000));
    lo = Math.floor(lo / step) * step;
    const n = Math.min(Math.floor(span / step) + 2, 500);
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
    new Chart(canvas, {
      type: 'bar',
      data: {
        labels: labels,
        datasets: [
          { label: 'evidence events', data: evCounts, backgroundColor: '#0072B2' },
          { label: 'decisions', data: decCounts, backgroundColor: '#D55E00' }
        ]
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { ticks: { maxTicksLimit: 8, maxRotation: 0 } }, y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } }
      }
    });
  }

  /* After an action the daemon rewrites its blocklists within a second or
   * two: look again until the state moves (at most 15 s). */
  function reloadUntilChanged() {
    const before = document.getElementById('status').dataset.state;
    let tries = 0;
    const again = async function () {
      await load();
      if (document.getElementById('status').dataset.state === before && ++tries < 10) setTimeout(again, 1500);
    };
    setTimeout(again, 1000);
  }

  let unblockFor = null;
  function wireUnblock() {
    const form = document.getElementById('unblock-form');
    const result = document.getElementById('unblock-result');
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
      const reason = document.getElementById('unblock-reason').value.trim() || 'unblocked from the dashboard';
      const url = '/api/v1/blocks/' + unblockFor.split('/').map(encodeURIComponent).join('/') +
        '?reason=' + encodeURIComponent(reason);
      try {
        await MXW.sendWithToken('DELETE', url, tokenInput.value.trim());
        result.textContent = 'Unblocked ' + unblockFor + '. The daemon applies it within seconds.';
        form.hidden = true;
        reloadUntilChanged();
      } catch (e) {
        result.textContent = 'Unblock failed: ' + e.message;
      } finally {
        tokenInput.value = '';
      }
    });
  }

  let actPrefix = null;
  function wireActions() {
    let which = 'block';
    for (const id of ['act-block', 'act-allow'])
      document.getElementById(id).addEventListener('click', function (ev) { which = ev.target.value; });
    document.getElementById('act-form').addEventListener('submit', async function (ev) {
      ev.preventDefault();
      const tokenInput = document.getElementById('act-token');
      const body = {
        prefix: actPrefix,
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
        reloadUntilChanged();
      } catch (e) {
        out.textContent = (which === 'block' ? 'Block' : 'Allow') + ' failed: ' + e.message;
        out.className = 'note error';
      } finally {
        tokenInput.value = '';
      }
    });
  }

  function renderMail(data) {
    for (const p of document.querySelectorAll('.ip-only, #outputs-panel, #seen-panel, #thresholds-panel, #inside-panel')) p.hidden = true;
    show('senders-panel', true);
    const senders = data.senders || [];
    const st = document.getElementById('status');
    const blocked = data.senders_blocked || 0;
    st.textContent = blocked ? (blocked + ' of ' + senders.length + ' blocked') : (senders.length ? 'none blocked' : 'not seen');
    st.className = 'badge ' + (blocked ? 'bad' : senders.length ? 'good' : 'neutral');
    document.getElementById('scope').textContent = data.kind === 'domain' ? 'sender domain' : 'e-mail address';
    document.getElementById('sentence').textContent = data.summary || '';
    document.getElementById('senders-note').textContent = 'From the stored refusals and other evidence of the last ' + data.days +
      ' days (' + MXW.fmtInt(data.matched) + ' events' + (data.truncated ? '; the search stopped after the newest ' + MXW.fmtInt(data.scanned) : '') +
      '). Accepted mail is counted, not stored: look up an address to see its deliveries.';
    const tb = document.querySelector('#senders tbody');
    MXW.clear(tb);
    if (!senders.length) {
      const tr = MXW.el('tr');
      MXW.td(tr, 'no stored event carries it', 'empty').colSpan = 7;
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
      const cell = MXW.td(tr, '', 'reason');
      const b = MXW.el('span');
      MXW.stateBadge(b, x.state);
      b.classList.add('small');
      cell.appendChild(b);
      cell.appendChild(document.createTextNode(' ' + (x.summary || '')));
      cell.title = x.summary || '';
      tb.appendChild(tr);
    }
    document.body.dataset.loaded = '1';
  }

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
      document.body.dataset.loaded = '1';
      return;
    }
    MXW.showError(null);
    if (data.kind === 'email' || data.kind === 'domain') {
      renderMail(data);
      return;
    }
    const d = data.decision && typeof data.decision === 'object' ? data.decision : null;
    MXW.stateBadge(document.getElementById('status'), data.state);
    document.getElementById('scope').textContent = data.kind + ' ' + data.prefix;
    document.getElementById('sentence').textContent = data.summary || '';
    renderDecision(d);
    renderInside(data.inside || []);
    renderOutputs(data);
    renderSeen(data.seen, data.recent);
    renderThresholds(d);
    const hist = data.history || [];
    const lines = (d && Array.isArray(d.evidence)) ? d.evidence.slice() : [];
    let events = [];
    try {
      const evq = q.indexOf('/') >= 0 ? 'class=' + encodeURIComponent(data.prefix) : 'ip=' + encodeURIComponent(data.prefix.replace(/\/\d+$/, ''));
      const page = await MXW.getJSON('/api/v1/events?limit=1000&' + evq);
      events = page.items || [];
    } catch (e) { events = []; }
    let note = '';
    if (!lines.length) {
      /* an ended decision's evidence, else the newest stored lines */
      const ended = hist.find(function (x) { return Array.isArray(x.evidence) && x.evidence.length; });
      if (ended) {
        for (const l of ended.evidence) lines.push(l);
        note = 'The evidence of decision #' + ended.id + ' (' + ended.rule + ', ' + (ended.active ? 'in force' : 'ended') + ').';
      } else {
        for (const e of events.slice(0, 20)) if (e.line) lines.push(e.line);
        if (lines.length) note = 'The newest stored log lines of this sender.';
      }
    }
    renderEvidence(lines, note);
    renderHistory((d ? [d] : []).concat(hist));
    renderEvents(events);
    renderTimeline(events, (d ? [d] : []).concat(hist));
    /* an evidence report is for an abuse desk: only when there is abuse to report */
    const reportable = !!d || hist.length > 0 || events.length > 0;
    const a = document.getElementById('evidence-report');
    a.href = '/api/v1/report/evidence?format=html&prefix=' + encodeURIComponent(d && d.prefix ? d.prefix : data.prefix);
    show('evidence-report-box', reportable);
    if (reportable) show('panel-evidence', true);
    if (!lines.length) document.getElementById('evidence-note').textContent = reportable ? 'No log lines are stored for it.' : '';
    if (d && d.active && d.prefix) {
      unblockFor = d.prefix;
      show('unblock-box', true);
    } else {
      show('unblock-box', false);
    }
    actPrefix = data.prefix;
    show('act-box', true);
    document.body.dataset.loaded = '1';
  }

  document.addEventListener('DOMContentLoaded', function () {
    MXW.wireSearch();
    wireUnblock();
    wireActions();
    load();
  });
})();
