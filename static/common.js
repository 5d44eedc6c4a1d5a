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
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/Z$/, ' UTC');
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

MXW.palette = ['#d1495b', '#edae49', '#00798c', '#30638e', '#003d5b', '#8e6c8a', '#6a994e', '#bc4749',
  '#f4a259', '#5b8e7d', '#8cb369', '#7d5ba6', '#e07a5f', '#3d405b', '#81b29a', '#f2cc8f', '#118ab2', '#073b4c'];

MXW.codeColors = { '421': '#8e6c8a', '451': '#edae49', '4xx': '#d1495b', '5xx': '#30638e', 'none': '#9aa5b1' };
