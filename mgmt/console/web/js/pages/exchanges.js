// Exchanges: the list (paged by the server), a form to add one, and one exchange's page:
// bindings from and to it, publish a message, delete.
import { get, put, post, del, enc } from '../api.js';
import { h, clear, rate, yesno, args, facts, section, table, link } from '../dom.js';
import { pagedList, form, parseJson, notify, explain, route } from '../ui.js';

const r = (x, k) => ((x.message_stats || {})[k + '_details'] || {}).rate;
const shown = (name) => (name === '' ? '(AMQP default)' : name);

export async function exchanges(root) {
  const list = pagedList({
    id: 'exchanges-list',
    path: '/exchanges',
    placeholder: 'Filter exchanges by name',
    columns: [
      { label: 'Virtual host', sort: 'vhost', fields: ['vhost'], value: (x) => x.vhost },
      { label: 'Name', sort: 'name', fields: ['name'], value: (x) => link(route('exchanges', x.vhost, x.name), shown(x.name)) },
      { label: 'Type', sort: 'type', fields: ['type'], value: (x) => x.type },
      { label: 'Features', fields: ['durable', 'auto_delete', 'internal', 'arguments'], value: (x) =>
        [x.durable ? 'D ' : '', x.auto_delete ? 'AD ' : '', x.internal ? 'I ' : '', args(x.arguments)].join('') },
      { label: 'Rate in', sort: 'message_stats.publish_in_details.rate', num: true, fields: ['message_stats'], value: (x) => rate(r(x, 'publish_in')) },
      { label: 'Rate out', sort: 'message_stats.publish_out_details.rate', num: true, value: (x) => rate(r(x, 'publish_out')) },
    ],
  });
  const vhostNames = (await get('/vhosts?columns=name')).map((v) => v.name);
  const add = form('Add an exchange', [
    { name: 'vhost', label: 'Virtual host', type: 'select', options: vhostNames },
    { name: 'name', label: 'Name', required: true },
    { name: 'type', label: 'Type', type: 'select', options: ['direct', 'fanout', 'topic', 'headers'] },
    { name: 'durable', label: 'Durable', type: 'checkbox', value: true },
    { name: 'auto_delete', label: 'Auto-delete', type: 'checkbox' },
    { name: 'internal', label: 'Internal', type: 'checkbox' },
    { name: 'arguments', label: 'Arguments (JSON)', type: 'textarea', placeholder: '{"alternate-exchange": "ae"}' },
  ], 'Add exchange', async (v) => {
    await put(`/exchanges/${enc(v.vhost)}/${enc(v.name)}`, { type: v.type, durable: v.durable, auto_delete: v.auto_delete,
      internal: v.internal, arguments: parseJson(v.arguments, 'Arguments') });
    list.refresh();
    return `Exchange ${v.name} added`;
  }, { collapsed: true });
  clear(root, h('h1', {}, 'Exchanges'), list.el, add);
  return { refresh: list.refresh };
}

export async function exchange(root, vhost, name) {
  const base = `/exchanges/${enc(vhost)}/${enc(name || 'amq.default')}`;
  const details = h('div');
  const from = h('div');
  const to = h('div');
  const bindingCols = (end, kind) => [
    { label: kind, value: (b) => (b[end + '_type'] === 'queue' ? link(route('queues', vhost, b[end]), b[end])
      : link(route('exchanges', vhost, b[end]), shown(b[end]))) },
    { label: 'Routing key', value: (b) => b.routing_key },
    { label: 'Arguments', value: (b) => args(b.arguments) },
    { label: '', value: (b) => (b.source === '' ? '' : h('button', { type: 'button', class: 'secondary small', onclick: async () => {
      try {
        await del(`/bindings/${enc(vhost)}/e/${enc(b.source)}/${b.destination_type === 'queue' ? 'q' : 'e'}/${enc(b.destination)}/${enc(b.properties_key)}`);
        await refresh();
      } catch (e) { notify(explain(e), 'error'); }
    } }, 'Unbind')) },
  ];
  const bind = form('Add a binding from this exchange', [
    { name: 'kind', label: 'To', type: 'select', options: ['queue', 'exchange'] },
    { name: 'destination', label: 'Name', required: true },
    { name: 'routing_key', label: 'Routing key' },
    { name: 'arguments', label: 'Arguments (JSON)', type: 'textarea', rows: 2 },
  ], 'Bind', async (v) => {
    await post(`/bindings/${enc(vhost)}/e/${enc(name)}/${v.kind === 'queue' ? 'q' : 'e'}/${enc(v.destination)}`,
      { routing_key: v.routing_key, arguments: parseJson(v.arguments, 'Arguments') });
    await refresh();
    return 'Bound';
  }, { collapsed: true });
  const publish = form('Publish a message', [
    { name: 'routing_key', label: 'Routing key' },
    { name: 'payload', label: 'Payload', type: 'textarea' },
    { name: 'delivery_mode', label: 'Delivery mode', type: 'select', options: ['1 - transient', '2 - persistent'] },
    { name: 'headers', label: 'Headers (JSON)', type: 'textarea', rows: 2 },
  ], 'Publish', async (v) => {
    const res = await post(`${base}/publish`, { routing_key: v.routing_key, payload: v.payload, payload_encoding: 'string',
      properties: { delivery_mode: Number(v.delivery_mode[0]), headers: parseJson(v.headers, 'Headers') } });
    return res && res.routed ? 'Published and routed' : 'Published, but not routed';
  }, { collapsed: true });
  const remove = h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!confirm(`Delete exchange ${name}?`)) return;
    try {
      await del(base);
      notify(`Exchange ${name} deleted`);
      location.hash = '#/exchanges';
    } catch (e) { notify(explain(e), 'error'); }
  } }, 'Delete exchange');

  clear(root, h('h1', {}, 'Exchange ', h('span', { class: 'name' }, shown(name)), h('span', { class: 'muted' }, ` in ${vhost}`)),
    details, section('Bindings from this exchange', from, name === '' ? null : bind),
    section('Bindings to this exchange', to), section('Publish', publish),
    name === '' || name.startsWith('amq.') ? null : section('Delete', remove));

  async function refresh() {
    const [x, src, dst] = await Promise.all([get(base), get(`${base}/bindings/source`), get(`${base}/bindings/destination`)]);
    clear(details, facts([
      ['Type', x.type],
      ['Durable', yesno(x.durable)],
      ['Auto-delete', yesno(x.auto_delete)],
      ['Internal', yesno(x.internal)],
      ['Arguments', args(x.arguments)],
      ['Rate in', rate(r(x, 'publish_in'))],
      ['Rate out', rate(r(x, 'publish_out'))],
    ]));
    clear(from, table(bindingCols('destination', 'To'), src, name === '' ? 'Every queue, by its name' : 'None'));
    clear(to, table(bindingCols('source', 'From'), dst));
  }
  return { refresh };
}
