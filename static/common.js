/* common.js - helpers shared by the dashboard pages.
 * Every string that may come from a log (HELO, addresses, reasons) is put
 * into the page with textContent, never innerHTML. */
'use strict';

const MXW = {};

/* Create an element; text (if any) is set with textContent. */
MXW.el = function (tag, opts, text) {
  const e = document.createElement(tag);
  if (opts) {
    if (opts.cls) e.className = opts.cls;
    if (opts.href) e.setAttribute('href', opts.href);
    if (opts.title) e.setAttribute('title', opts.title);
  }
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
};

MXW.td = function (tr, text, cls) {
  const td = MXW.el('td', cls ? { cls: cls } : null, text);
  tr.appendChild(td);
  return td;
};

MXW.clear = function (node) {
  while (node.firstChild) node.removeChild(node.firstChild);
};

MXW.getJSON = async function (url) {
  const r = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    const msg = body && body.error ? body.error : ('HTTP ' + r.status);
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return body;
};

/* A request that needs the API token (sent as a bearer header, never
 * stored): JSON body or none. Throws with the server's message. */
MXW.sendWithToken = async function (method, url, token, body) {
  const headers = { Authorization: 'Bearer ' + token, Accept: 'application/json' };
  const opts = { method: method, headers: headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  let res = null;
  try { res = await r.json(); } catch (e) { res = null; }
  if (!r.ok) throw new Error(res && res.error ? res.error : 'HTTP ' + r.status);
  return res;
};

MXW.showError = function (msg) {
  const p = document.getElementById('error');
  if (!p) return;
  if (msg) { p.textContent = msg; p.hidden = false; } else { p.textContent = ''; p.hidden = true; }
};

MXW.fmtInt = function (n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Number(n).toLocaleString('en-US');
};

/* Accepts epoch seconds or an RFC 3339 string. */
MXW.toDate = function (t) {
  if (t === null || t === undefined) return null;
  if (typeof t === 'number') return new Date(t * 1000);
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
};

MXW.fmtTime = function (t) {
  const d = MXW.toDate(t);
  if (!d) return '–';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/:\d\dZ$/, 'Z').replace(/Z$/, ' UTC');
};

MXW.fmtDuration = function (secs) {
  if (secs === null || secs === undefined) return '–';
  secs = Math.round(secs);
  if (secs < 0) return 'expired';
  const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600), m = Math.floor((secs % 3600) / 60);
  if (d) return d + 'd ' + h + 'h';
  if (h) return h + 'h ' + m + 'm';
  if (m) return m + 'm';
  return secs + 's';
};

/* "3m ago", "2d ago" */
MXW.fmtAgo = function (t) {
  const d = MXW.toDate(t);
  if (!d) return 'never';
  const s = (Date.now() - d.getTime()) / 1000;
  return s < 0 ? 'in ' + MXW.fmtDuration(-s) : MXW.fmtDuration(s) + ' ago';
};

MXW.lookupHref = function (q) {
  /* keep the slash of a prefix: /lookup/203.0.113.0/24 */
  return '/lookup/' + String(q).split('/').map(encodeURIComponent).join('/');
};

MXW.wireSearch = function () {
  const form = document.getElementById('search');
  if (!form) return;
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    const q = document.getElementById('q').value.trim();
    if (q) window.location.assign(MXW.lookupHref(q));
  });
};

/* A response as a coloured word (the same classes everywhere). */
MXW.respCell = function (tr, resp) {
  return MXW.td(tr, resp, 'resp resp-' + String(resp).replace(/[^a-z]/g, ''));
};

/*
 * Fixed colours: one per reply-code class and one per category, whatever
 * appears in a chart (never assigned by position), chosen so that the code
 * classes and the eight most common categories stay apart for readers with
 * protanopia, deuteranopia and tritanopia (Okabe-Ito and Paul Tol's
 * palettes; the browser test checks the distances).
 */
MXW.codeColors = { '421': '#882255', '451': '#56B4E9', '4xx': '#F0E442', '5xx': '#D55E00', 'none': '#BBBBBB' };
MXW.categoryColors = {
  unknown_recipient: '#0072B2', dnsbl: '#D55E00', helo: '#000000', client_policy: '#BBBBBB',
  no_rdns: '#882255', relay_denied: '#EECC66', auth: '#33BBEE', pregreet: '#332288',
  greylisted: '#CC6677', rate_limited: '#E69F00', sender_policy: '#661100', unknown_sender_domain: '#CC79A7',
  recipient_policy: '#663333', too_many_errors: '#117733', non_smtp: '#999933', pipelining: '#004488',
  content: '#AA3377', no_mail: '#F0E442', size: '#222255', other: '#6699CC'
};
MXW.categoryOrder = ['unknown_recipient', 'dnsbl', 'helo', 'client_policy', 'no_rdns', 'relay_denied', 'auth',
  'pregreet'];
/* A category the table does not know (a newer server): a stable colour from its name. */
MXW.colorOf = function (map, name) {
  if (map[name]) return map[name];
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return 'hsl(' + (h % 360) + ', 45%, 45%)';
};

/* The lookup states (docs/api.md): label and badge class. */
MXW.states = {
  blocked: ['BLOCKED', 'bad'],
  partly_blocked: ['PARTLY BLOCKED', 'warn'],
  decided_not_enforced: ['DECIDED, NOT ENFORCED', 'warn'],
  allowed: ['ALLOWED', 'info'],
  clean: ['NOT BLOCKED', 'good'],
  never_seen: ['NEVER SEEN', 'neutral']
};
MXW.stateBadge = function (node, state) {
  const s = MXW.states[state] || [String(state || 'unknown'), 'neutral'];
  node.textContent = s[0];
  node.className = 'badge ' + s[1];
  node.dataset.state = state || '';
};
