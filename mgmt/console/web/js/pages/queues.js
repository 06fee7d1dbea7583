// Queues: the list (paged by the server: filter, sort, page), a form to add one, and one
// queue's page: counts and rates, consumers, bindings, publish, get, the dead-letter workbench,
// purge and delete.
import { get, put, post, del, enc } from '../api.js';
import { h, clear, num, rate, bytes, yesno, args, facts, section, table, link } from '../dom.js';
import { pagedList, form, parseJson, notify, explain, route } from '../ui.js';
import { workbench } from './workbench.js';

const r = (q, k) => ((q.message_stats || {})[k + '_details'] || {}).rate;

function features(q) {
  const f = [];
  if (q.durable) f.push(h('abbr', { title: 'durable' }, 'D'));
  if (q.auto_delete) f.push(h('abbr', { title: 'auto-delete' }, 'AD'));
  if (q.exclusive) f.push(h('abbr', { title: 'exclusive' }, 'Excl'));
  for (const k of Object.keys(q.arguments || {})) f.push(h('abbr', { title: `${k}: ${JSON.stringify(q.arguments[k])}` }, k.replace(/^x-/, '')));
  return h('span', { class: 'features' }, f);
}

export async function queues(root) {
  const list = pagedList({
    id: 'queues-list',
    path: '/queues',
    placeholder: 'Filter queues by name',
    columns: [
      { label: 'Virtual host', sort: 'vhost', fields: ['vhost'], value: (q) => q.vhost },
      { label: 'Name', sort: 'name', fields: ['name'], value: (q) => link(route('queues', q.vhost, q.name), q.name) },
      { label: 'Type', fields: ['type'], value: (q) => q.type },
      { label: 'Features', fields: ['durable', 'auto_delete', 'exclusive', 'arguments'], value: features },
      { label: 'State', fields: ['state'], value: (q) => q.state },
      { label: 'Ready', sort: 'messages_ready', num: true, fields: ['messages_ready'], value: (q) => num(q.messages_ready) },
      { label: 'Unacked', sort: 'messages_unacknowledged', num: true, fields: ['messages_unacknowledged'], value: (q) => num(q.messages_unacknowledged) },
      { label: 'Total', sort: 'messages', num: true, fields: ['messages'], value: (q) => num(q.messages) },
      { label: 'Consumers', sort: 'consumers', num: true, fields: ['consumers'], value: (q) => num(q.consumers) },
      { label: 'Incoming', sort: 'message_stats.publish_details.rate', num: true, fields: ['message_stats'], value: (q) => rate(r(q, 'publish')) },
      { label: 'Deliver/get', sort: 'message_stats.deliver_get_details.rate', num: true, value: (q) => rate(r(q, 'deliver_get')) },
      { label: 'Ack', sort: 'message_stats.ack_details.rate', num: true, value: (q) => rate(r(q, 'ack')) },
    ],
  });
  const vhostNames = (await get('/vhosts?columns=name')).map((v) => v.name);
  const add = form('Add a queue', [
    { name: 'vhost', label: 'Virtual host', type: 'select', options: vhostNames },
    { name: 'name', label: 'Name', required: true },
    { name: 'type', label: 'Type', type: 'select', options: ['classic', 'quorum'] },
    { name: 'durable', label: 'Durable', type: 'checkbox', value: true },
    { name: 'auto_delete', label: 'Auto-delete', type: 'checkbox', value: false },
    { name: 'arguments', label: 'Arguments (JSON)', type: 'textarea', placeholder: '{"x-message-ttl": 60000}' },
  ], 'Add queue', async (v) => {
    const a = parseJson(v.arguments, 'Arguments');
    if (v.type === 'quorum') a['x-queue-type'] = 'quorum';
    await put(`/queues/${enc(v.vhost)}/${enc(v.name)}`, { durable: v.durable, auto_delete: v.auto_delete, arguments: a });
    list.refresh();
    return `Queue ${v.name} added`;
  }, { collapsed: true });
  clear(root, h('h1', {}, 'Queues'), list.el, add);
  return { refresh: list.refresh };
}

export async function queue(root, vhost, name) {
  const base = `/queues/${enc(vhost)}/${enc(name)}`;
  const details = h('div');
  const consumers = h('div');
  const bindings = h('div');
  const messages = h('div', { class: 'messages' });

  const bind = form('Add a binding to this queue', [
    { name: 'source', label: 'From exchange', required: true },
    { name: 'routing_key', label: 'Routing key' },
    { name: 'arguments', label: 'Arguments (JSON)', type: 'textarea', rows: 2 },
  ], 'Bind', async (v) => {
    await post(`/bindings/${enc(vhost)}/e/${enc(v.source)}/q/${enc(name)}`,
      { routing_key: v.routing_key, arguments: parseJson(v.arguments, 'Arguments') });
    await refresh();
    return 'Bound';
  }, { collapsed: true });

  const publish = form('Publish a message', [
    { name: 'payload', label: 'Payload', type: 'textarea' },
    { name: 'delivery_mode', label: 'Delivery mode', type: 'select', options: ['1 - transient', '2 - persistent'] },
    { name: 'headers', label: 'Headers (JSON)', type: 'textarea', rows: 2 },
  ], 'Publish', async (v) => {
    const res = await post(`/exchanges/${enc(vhost)}/amq.default/publish`, {
      routing_key: name, payload: v.payload, payload_encoding: 'string',
      properties: { delivery_mode: Number(v.delivery_mode[0]), headers: parseJson(v.headers, 'Headers') },
    });
    await refresh();
    return res && res.routed ? 'Published' : 'Published, but not routed';
  }, { collapsed: true });

  const getForm = form('Get messages', [
    { name: 'ackmode', label: 'Ack mode', type: 'select', value: 'ack_requeue_true',
      options: ['ack_requeue_true', 'ack_requeue_false', 'reject_requeue_true', 'reject_requeue_false'] },
    { name: 'encoding', label: 'Encoding', type: 'select', options: ['auto', 'base64'] },
    { name: 'count', label: 'Messages', type: 'number', value: 1, min: 1 },
  ], 'Get messages', async (v) => {
    const got = await post(`${base}/get`, { count: Number(v.count), ackmode: v.ackmode, encoding: v.encoding, truncate: 50000 });
    clear(messages, got.length ? got.map((m, i) => h('div', { class: 'message' },
      h('h3', {}, `Message ${i + 1}`),
      facts([
        ['Exchange', m.exchange === '' ? '(AMQP default)' : m.exchange],
        ['Routing key', m.routing_key],
        ['Redelivered', yesno(m.redelivered)],
        ['Properties', args(m.properties)],
        ['Payload', h('span', {}, `${num(m.payload_bytes)} bytes, encoding ${m.payload_encoding}`)],
      ]),
      h('pre', { class: 'payload' }, m.payload))) : h('p', { class: 'empty' }, 'Queue is empty'));
    await refresh();
    return `${got.length} message${got.length === 1 ? '' : 's'}`;
  });

  const purge = h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!confirm(`Purge all ready messages from ${name}?`)) return;
    try {
      await del(`${base}/contents`);
      notify(`Queue ${name} purged`);
      await refresh();
    } catch (e) { notify(explain(e), 'error'); }
  } }, 'Purge messages');
  const remove = h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!confirm(`Delete queue ${name}?`)) return;
    try {
      await del(base);
      notify(`Queue ${name} deleted`);
      location.hash = '#/queues';
    } catch (e) { notify(explain(e), 'error'); }
  } }, 'Delete queue');

  const bench = workbench(vhost, name, () => refresh());

  clear(root, h('h1', {}, 'Queue ', h('span', { class: 'name' }, name), h('span', { class: 'muted' }, ` in ${vhost}`)),
    details, section('Consumers', consumers), section('Bindings', bindings, bind),
    section('Messages', publish, getForm, messages),
    section('Dead-letter workbench', h('p', { class: 'muted' }, 'Browsing takes nothing: no message moves or is marked redelivered.'), bench.el),
    section('Purge and delete', h('div', { class: 'actions' }, purge, remove)));

  async function refresh() {
    const [q, bs] = await Promise.all([get(base), get(`${base}/bindings`)]);
    if (q.type !== 'stream') await bench.refresh();
    clear(details, facts([
      ['State', q.state],
      ['Type', q.type],
      ['Features', features(q)],
      ['Arguments', args(q.arguments)],
      ['Messages', h('span', { id: 'queue-messages' }, num(q.messages))],
      ['Ready', num(q.messages_ready)],
      ['Unacked', num(q.messages_unacknowledged)],
      ['Consumers', num(q.consumers)],
      ['Consumer utilisation', q.consumer_utilisation != null ? `${Math.round(q.consumer_utilisation * 100)} %` : ''],
      ['Memory', bytes(q.memory)],
      ['Incoming', rate(r(q, 'publish'))],
      ['Deliver/get', rate(r(q, 'deliver_get'))],
      ['Ack', rate(r(q, 'ack'))],
      q.exclusive_consumer_tag ? ['Exclusive consumer', q.exclusive_consumer_tag] : null,
    ]));
    clear(consumers, table([
      { label: 'Channel', value: (c) => (c.channel_details || {}).name },
      { label: 'Consumer tag', value: (c) => c.consumer_tag },
      { label: 'Ack required', value: (c) => yesno(c.ack_required) },
      { label: 'Exclusive', value: (c) => yesno(c.exclusive) },
      { label: 'Prefetch', value: (c) => num(c.prefetch_count), num: true },
      { label: 'Active', value: (c) => yesno(c.active) },
      { label: 'Arguments', value: (c) => args(c.arguments) },
    ], q.consumer_details, 'No consumers'));
    clear(bindings, table([
      { label: 'From', value: (b) => (b.source === '' ? '(AMQP default)' : link(route('exchanges', vhost, b.source), b.source)) },
      { label: 'Routing key', value: (b) => b.routing_key },
      { label: 'Arguments', value: (b) => args(b.arguments) },
      { label: '', value: (b) => (b.source === '' ? '' : h('button', { type: 'button', class: 'secondary small', onclick: async () => {
        try {
          await del(`/bindings/${enc(vhost)}/e/${enc(b.source)}/q/${enc(name)}/${enc(b.properties_key)}`);
          await refresh();
        } catch (e) { notify(explain(e), 'error'); }
      } }, 'Unbind')) },
    ], bs));
  }
  return { refresh };
}
