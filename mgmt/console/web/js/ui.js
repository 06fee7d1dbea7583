// Shared pieces of the console's pages: notices, forms that report the API's answer (a 405 as
// "not supported by this broker"), and the server-paged list used for queues, exchanges and
// connections, which asks for one page at a time so 10,000 queues stay quick.
import { get, enc, ApiError } from './api.js';
import { h, clear } from './dom.js';

export function notify(text, kind = 'ok') {
  const box = document.getElementById('notices');
  if (!box) return;
  const n = h('div', { class: 'notice ' + kind, role: kind === 'error' ? 'alert' : 'status' }, text);
  box.append(n);
  setTimeout(() => n.remove(), kind === 'error' ? 8000 : 4000);
}

// What an error means to the user.
export function explain(e) {
  if (e instanceof ApiError) {
    if (e.unsupported) return `Not supported by this broker (405: ${e.message})`;
    return `${e.status}: ${e.message}`;
  }
  return String(e.message || e);
}

// A form from field definitions; `submit(values)` may throw, and its error shows in the form.
// Fields: { name, label, type: text|number|password|checkbox|select|textarea|file, options, value }.
export function form(title, fields, submitLabel, submit, opts = {}) {
  const status = h('span', { class: 'form-status', role: 'status' });
  const inputs = {};
  const rows = fields.map((f) => {
    let input;
    const id = `f-${title}-${f.name}`.replace(/[^A-Za-z0-9_-]/g, '-');
    if (f.type === 'select') {
      input = h('select', { id, name: f.name }, f.options.map((o) => h('option', { value: o }, o)));
      if (f.value !== undefined) input.value = f.value;
    } else if (f.type === 'textarea') {
      input = h('textarea', { id, name: f.name, rows: f.rows || 3, placeholder: f.placeholder }, f.value || '');
    } else if (f.type === 'checkbox') {
      input = h('input', { id, name: f.name, type: 'checkbox', checked: f.value });
    } else {
      input = h('input', { id, name: f.name, type: f.type || 'text', value: f.value, placeholder: f.placeholder,
        required: f.required, min: f.min, accept: f.accept, autocomplete: f.autocomplete });
    }
    inputs[f.name] = input;
    return h('div', { class: 'field' }, h('label', { for: id }, f.label), input);
  });
  const button = h('button', { type: 'submit' }, submitLabel);
  const el = h('form', { class: 'form', 'aria-label': title, onsubmit: async (ev) => {
    ev.preventDefault();
    const values = {};
    for (const [k, input] of Object.entries(inputs))
      values[k] = input.type === 'checkbox' ? input.checked : input.type === 'file' ? input.files[0] : input.value;
    button.disabled = true;
    status.className = 'form-status';
    status.textContent = '…';
    try {
      const msg = await submit(values);
      status.className = 'form-status ok';
      status.textContent = msg || 'Done';
    } catch (e) {
      status.className = 'form-status ' + (e instanceof ApiError && e.unsupported ? 'unsupported' : 'error');
      status.textContent = explain(e);
    } finally {
      button.disabled = false;
    }
  } }, h('h3', {}, title), rows, h('div', { class: 'actions' }, button, status));
  if (opts.collapsed) return h('details', { class: 'form-box' }, h('summary', {}, title), el);
  return el;
}

// JSON typed into a form ("" is {}); throws a readable error.
export function parseJson(text, what) {
  if (!text || !text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what} must be JSON, e.g. {"x-message-ttl": 60000}`);
  }
}

const listState = new Map();  // per list: filter, sort, page, page size (kept across visits)

// A list paged by the server: ?page, page_size, name (filter), use_regex, sort, sort_reverse and
// columns (only the fields shown). Columns: { label, sort, fields: [...], value(item), num }.
export function pagedList({ id, path, columns, sort = 'name', placeholder = 'Filter by name' }) {
  const st = listState.get(id) || { filter: '', regex: false, sort, reverse: false, page: 1, size: 50 };
  listState.set(id, st);
  const fields = [...new Set(columns.flatMap((c) => c.fields || []))];
  const tbody = h('tbody');
  const info = h('span', { class: 'count' });
  const pager = h('span', { class: 'pager' });
  const headRow = h('tr');
  let timer = null;
  let seq = 0;

  const filterInput = h('input', { type: 'search', placeholder, value: st.filter, 'aria-label': placeholder,
    oninput: () => {
      clearTimeout(timer);
      timer = setTimeout(() => { st.filter = filterInput.value; st.page = 1; refresh(); }, 250);
    } });
  const regexBox = h('input', { type: 'checkbox', checked: st.regex,
    onchange: () => { st.regex = regexBox.checked; st.page = 1; refresh(); } });
  const sizeSelect = h('select', { 'aria-label': 'Page size', onchange: () => {
    st.size = Number(sizeSelect.value); st.page = 1; refresh();
  } }, [20, 50, 100, 500].map((n) => h('option', { value: n }, `${n} per page`)));
  sizeSelect.value = String(st.size);

  function drawHead() {
    clear(headRow, columns.map((c) => {
      const sorted = c.sort && c.sort === st.sort;
      const th = h('th', { class: (c.num ? 'num ' : '') + (c.sort ? 'sortable' : ''),
        'aria-sort': sorted ? (st.reverse ? 'descending' : 'ascending') : null },
      c.label, sorted ? (st.reverse ? ' ▼' : ' ▲') : '');
      if (c.sort) th.addEventListener('click', () => {
        if (st.sort === c.sort) st.reverse = !st.reverse;
        else { st.sort = c.sort; st.reverse = !!c.num; }  // numbers: largest first
        st.page = 1;
        refresh();
      });
      return th;
    }));
  }

  function url() {
    const q = new URLSearchParams({ page: st.page, page_size: st.size, sort: st.sort, sort_reverse: st.reverse });
    if (st.filter) {
      q.set('name', st.filter);
      q.set('use_regex', st.regex);
    }
    if (fields.length) q.set('columns', fields.join(','));
    return `${path}?${q}`;
  }

  async function refresh() {
    const mine = ++seq;
    drawHead();
    let res;
    try {
      res = await get(url());
    } catch (e) {
      if (mine !== seq) return;
      // The list shrank under the current page: go back to the first.
      if (e instanceof ApiError && e.status === 400 && st.page > 1) { st.page = 1; return refresh(); }
      clear(tbody, h('tr', {}, h('td', { colspan: columns.length, class: 'error' }, explain(e))));
      return;
    }
    if (mine !== seq) return;  // a newer request (typing) has the last word
    const items = res.items || [];
    clear(tbody, items.length ? items.map((it) => h('tr', {}, columns.map((c) =>
      h('td', { class: c.num ? 'num' : null }, c.value(it)))))
      : h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, st.filter ? 'No match' : 'None')));
    const filtered = res.filtered_count ?? items.length;
    clear(info, `${filtered.toLocaleString('en-US')} ${filtered === res.total_count ? '' : `of ${res.total_count.toLocaleString('en-US')} `}shown`);
    const pages = Math.max(1, res.page_count || 1);
    const go = (p) => () => { st.page = p; refresh(); };
    clear(pager,
      h('button', { type: 'button', disabled: st.page <= 1, onclick: go(1), 'aria-label': 'First page' }, '«'),
      h('button', { type: 'button', disabled: st.page <= 1, onclick: go(st.page - 1), 'aria-label': 'Previous page' }, '‹'),
      h('span', { class: 'page-no' }, `Page ${st.page} of ${pages}`),
      h('button', { type: 'button', disabled: st.page >= pages, onclick: go(st.page + 1), 'aria-label': 'Next page' }, '›'),
      h('button', { type: 'button', disabled: st.page >= pages, onclick: go(pages), 'aria-label': 'Last page' }, '»'));
  }

  const el = h('div', { class: 'paged', id },
    h('div', { class: 'toolbar' }, filterInput, h('label', { class: 'inline' }, regexBox, 'Regex'), sizeSelect, info, pager),
    h('table', { class: 'list' }, h('thead', {}, headRow), tbody));
  return { el, refresh };
}

// "/" -> "%2F" for paths in the console's own routes.
export const route = (...parts) => '/' + parts.map(enc).join('/');
