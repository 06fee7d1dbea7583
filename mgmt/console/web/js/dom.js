// DOM building and formatting. Text from the broker (queue names, payloads) only ever goes in
// through textContent and attributes, never as HTML, so a name cannot inject markup.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A link inside the console: "#/queues/%2F/name".
export const link = (href, text) => h('a', { href: '#' + href }, text);

export function num(n) {
  if (n === undefined || n === null) return '';
  return Number(n).toLocaleString('en-US');
}

export function rate(r) {
  if (r === undefined || r === null) return '';
  const v = Number(r);
  return (v === 0 ? '0' : v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')) + '/s';
}

export function bytes(n) {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; ++i; }
  return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + units[i];
}

export function duration(ms) {
  let s = Math.floor(Number(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return d ? `${d}d ${hr}h` : hr ? `${hr}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}

export const yesno = (b) => (b ? 'yes' : 'no');

// Object fields as "k: v" text (arguments, client properties).
export function args(o) {
  if (!o || typeof o !== 'object') return '';
  return Object.entries(o).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
}

// A two-column table of label / value pairs.
export function facts(rows) {
  return h('table', { class: 'facts' },
    h('tbody', {}, rows.filter(Boolean).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))));
}

// A section with a heading.
export const section = (title, ...body) => h('section', {}, h('h2', {}, title), ...body);

// A plain table from column definitions { label, value(item), num }.
export function table(cols, items, empty = 'None') {
  if (!items || items.length === 0) return h('p', { class: 'empty' }, empty);
  return h('table', { class: 'list' },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { class: c.num ? 'num' : null }, c.label)))),
    h('tbody', {}, items.map((it) => h('tr', {}, cols.map((c) => h('td', { class: c.num ? 'num' : null }, c.value(it)))))));
}
