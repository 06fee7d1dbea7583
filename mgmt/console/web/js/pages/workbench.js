// The dead-letter workbench on a queue's page: its health (growth, oldest message, counts by
// reason, origin queue and error header), a paged browse of its ready messages that takes
// nothing, its unacked ones with their consumers, and redrive (to each message's origin or a chosen exchange and key, with a dry run)
// or delete of the selected messages or of everything the filter matches.
import { get, post, enc } from '../api.js';
import { h, clear, num, rate, facts, table } from '../dom.js';
import { notify, explain } from '../ui.js';

const counts = (o) => Object.entries(o || {}).map(([k, v]) => `${k === '' ? '(none)' : k}: ${num(v)}`).join(', ') || '—';

function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.floor(seconds);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.floor(s / 60)} min` : `${Math.floor(s / 3600)} h`;
}

// `onChange` runs after a redrive or delete (the queue page refreshes its counts).
export function workbench(vhost, name, onChange) {
  const base = `/queues/${enc(vhost)}/${enc(name)}`;
  const health = h('div', { id: 'wb-health' });
  const rows = h('div', { id: 'wb-messages' });
  const held = h('div', { id: 'wb-unacked' });
  const status = h('span', { class: 'form-status', id: 'wb-status', role: 'status' });
  const input = (id, placeholder, value = '') => h('input', { id, placeholder, value, size: 14 });
  const f = {
    reason: input('wb-reason', 'reason (rejected…)'),
    origin: input('wb-origin', 'origin queue'),
    header: input('wb-header', 'header', 'error.cause'),
    value: input('wb-header-value', 'header value'),
  };
  const target = h('select', { id: 'wb-target', onchange: () => { chosen.hidden = target.value !== 'chosen'; } },
    h('option', { value: 'origin' }, 'each message\'s origin (x-death)'), h('option', { value: 'chosen' }, 'a chosen exchange and key'));
  const exchange = input('wb-exchange', 'exchange');
  const key = input('wb-routing-key', 'routing key');
  const chosen = h('span', { hidden: true }, exchange, ' ', key);
  let cursors = [''];  // the cursor of each page seen, for Previous
  let page = 0;
  let shown = [];
  const selected = new Set();

  function filterQuery() {
    const q = new URLSearchParams();
    if (f.reason.value) q.set('reason', f.reason.value);
    if (f.origin.value) q.set('origin_queue', f.origin.value);
    if (f.value.value && f.header.value) { q.set('header', f.header.value); q.set('header_value', f.value.value); }
    return q;
  }
  function filterBody() {
    const o = {};
    if (f.reason.value) o.reason = f.reason.value;
    if (f.origin.value) o.origin_queue = f.origin.value;
    if (f.value.value && f.header.value) { o.header = f.header.value; o.header_value = f.value.value; }
    return o;
  }

  async function browse() {
    const q = filterQuery();
    q.set('count', '20');
    q.set('truncate', '200');
    q.set('cursor', cursors[page]);
    const res = await get(`${base}/messages?${q}`);
    if (res.next_cursor !== null) cursors[page + 1] = res.next_cursor; else cursors = cursors.slice(0, page + 1);
    shown = res.messages;
    for (const handle of [...selected]) if (!shown.some((m) => m.handle === handle)) selected.delete(handle);
    const hdr = f.header.value || 'error.cause';
    clear(rows, table([
      { label: '', value: (m) => h('input', { type: 'checkbox', 'aria-label': `select ${m.handle}`, checked: selected.has(m.handle),
        onchange: (ev) => { if (ev.target.checked) selected.add(m.handle); else selected.delete(m.handle); } }) },
      { label: 'Reason', value: (m) => (m.death ? m.death.first_reason : '') },
      { label: 'Origin queue', value: (m) => (m.death ? m.death.first_queue : '') },
      { label: 'Goes back to', value: (m) => (m.death ? `${m.death.origin_exchange === '' ? '(AMQP default)' : m.death.origin_exchange} / ${m.death.origin_routing_key}` : '—') },
      { label: hdr, value: (m) => { const v = ((m.properties || {}).headers || {})[hdr]; return v === undefined ? '' : String(v); } },
      { label: 'Deaths', num: true, value: (m) => (m.death && m.death.count !== null ? num(m.death.count) : '') },
      { label: 'Body', value: (m) => h('code', { class: 'preview' }, m.readable ? m.payload + (m.payload_truncated ? '…' : '') : '(unreadable)') },
    ], shown, 'No messages'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary small', disabled: page === 0, onclick: () => { page -= 1; run(browse); } }, 'Previous'),
      h('span', { class: 'muted' }, `Page ${page + 1} · ${num(res.messages_ready)} ready`),
      h('button', { type: 'button', class: 'secondary small', disabled: res.next_cursor === null, onclick: () => { page += 1; run(browse); } }, 'Next')));
  }

  // Delivered and not yet acknowledged: shown with the consumer that holds them (not selectable:
  // a redrive or delete takes ready messages only).
  async function showUnacked() {
    const res = await get(`${base}/messages/unacked?count=20&truncate=200`);
    clear(held, table([
      { label: 'Channel', value: (m) => m.channel_name },
      { label: 'Consumer tag', value: (m) => (m.consumer_tag === '' ? '(basic.get)' : m.consumer_tag) },
      { label: 'Delivery tag', num: true, value: (m) => num(m.delivery_tag) },
      { label: 'Unacked for', num: true, value: (m) => age(m.unacked_for_ms / 1000) },
      { label: 'Reason', value: (m) => (m.death ? m.death.first_reason : '') },
      { label: 'Body', value: (m) => h('code', { class: 'preview' }, m.readable ? m.payload + (m.payload_truncated ? '…' : '') : '(unreadable)') },
    ], res.messages, 'None'), res.more ? h('p', { class: 'muted' }, 'The first 20 are shown.') : null);
  }

  async function showHealth() {
    const hq = new URLSearchParams();
    if (f.header.value && f.header.value !== 'error.cause') hq.set('header', f.header.value);
    const x = await get(`${base}/dead-letter-health?${hq}`);
    clear(health, facts([
      ['Ready', num(x.messages_ready)],
      ['Oldest message', age(x.oldest_message_age_seconds)],
      // A rate over a few seconds is noise: shown once the window is long enough.
      ['Growth', x.rate_window_seconds >= 10 ? rate(x.growth_rate) : 'measuring…'],
      ['Arrivals', x.rate_window_seconds >= 10 ? rate(x.arrival_rate) : 'measuring…'],
      ['By reason', h('span', { id: 'wb-by-reason' }, counts(x.by_reason))],
      ['By origin queue', counts(x.by_origin_queue)],
      [`By ${x.header}`, counts(x.by_header)],
      x.counts_complete ? null : ['', h('span', { class: 'muted' }, 'counting…')],
    ]));
  }

  async function run(step) {
    try { await step(); } catch (e) { notify(explain(e), 'error'); }
  }

  // A redrive or delete of the selection (or, with `all`, of the filter's matches).
  async function act(what, { all = false, dryRun = false } = {}) {
    const body = {};
    if (all) {
      const fb = filterBody();
      if (Object.keys(fb).length) body.filter = fb; else body.all = true;
    } else {
      if (!selected.size) { status.className = 'form-status error'; status.textContent = 'Select messages first'; return; }
      body.handles = [...selected];
    }
    if (dryRun) body.dry_run = true;
    if (what === 'redrive' && target.value === 'chosen') {
      body.target = { exchange: exchange.value };
      if (key.value) body.target.routing_key = key.value;
    }
    if (!dryRun && what === 'delete' && !confirm(`Delete ${all ? 'every matching message' : `${selected.size} messages`} from ${name}?`)) return;
    status.className = 'form-status';
    status.textContent = '…';
    try {
      const r = await post(`${base}/messages/${what}`, body);
      const done = what === 'redrive' ? r.redriven : r.deleted;
      const verb = what === 'redrive' ? 'redriven' : 'deleted';
      status.className = 'form-status ' + (r.failed ? 'error' : 'ok');
      status.textContent = `${num(done)} ${dryRun ? `would be ${verb}` : verb}` +
        (r.failed ? `, ${num(r.failed)} stay: ${r.failures.slice(0, 3).map((x) => x.reason).join('; ')}` : '');
      if (!dryRun) {
        selected.clear();
        cursors = [''];
        page = 0;
        await Promise.all([browse(), showUnacked(), showHealth(), onChange()]);
      }
    } catch (e) {
      status.className = 'form-status error';
      status.textContent = explain(e);
    }
  }

  const button = (label, cls, onclick) => h('button', { type: 'button', class: cls, onclick }, label);
  const el = h('div', { class: 'workbench' },
    health,
    h('div', { class: 'toolbar' }, f.reason, f.origin, f.header, f.value,
      button('Browse', 'secondary', () => { cursors = ['']; page = 0; selected.clear(); run(async () => { await Promise.all([browse(), showUnacked(), showHealth()]); }); })),
    rows,
    h('details', { class: 'form-box' }, h('summary', {}, 'Unacknowledged, with the consumers holding them'), held),
    h('div', { class: 'actions' }, h('label', { class: 'inline', for: 'wb-target' }, 'Redrive to'), target, chosen),
    h('div', { class: 'actions' },
      button('Dry run', 'secondary', () => act('redrive', { all: !selected.size, dryRun: true })),
      button('Redrive selected', '', () => act('redrive')),
      button('Redrive all matching', '', () => act('redrive', { all: true })),
      button('Delete selected', 'danger', () => act('delete')),
      status));
  el.querySelector('.toolbar button').id = 'wb-browse';

  let started = false;
  // The queue page's refresh: the health figures; the browsed page stays until asked again
  // (a refresh must not undo a selection).
  async function refresh() {
    try {
      if (!started) {
        await Promise.all([browse(), showUnacked()]);
        started = true;
      }
      await showHealth();
    } catch (e) {
      // Shown in the panel (a user without read permission on the queue gets 401 here).
      clear(health, h('p', { class: 'error' }, `Workbench: ${explain(e)}`));
    }
  }
  return { el, refresh };
}
