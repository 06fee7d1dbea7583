// Connections (paged by the server) with one connection's page (its channels, client
// properties, and closing it), and the channels list.
import { get, del, enc } from '../api.js';
import { h, clear, num, rate, bytes, args, facts, section, table, link } from '../dom.js';
import { pagedList, notify, explain, route } from '../ui.js';

const r = (x, k) => ((x.message_stats || {})[k + '_details'] || {}).rate;
const client = (c) => {
  const p = c.client_properties || {};
  return [p.product, p.version, p.platform].filter(Boolean).join(' ');
};

export async function connections(root) {
  const list = pagedList({
    id: 'connections-list',
    path: '/connections',
    placeholder: 'Filter connections by name',
    columns: [
      { label: 'Virtual host', sort: 'vhost', fields: ['vhost'], value: (c) => c.vhost },
      { label: 'Name', sort: 'name', fields: ['name'], value: (c) => [link(route('connections', c.name), c.name),
        // The name a client gives itself (client_properties.connection_name), as RabbitMQ's console shows it.
        (c.client_properties || {}).connection_name ? h('div', { class: 'muted' }, c.client_properties.connection_name) : null] },
      { label: 'User', sort: 'user', fields: ['user'], value: (c) => c.user },
      { label: 'State', fields: ['state'], value: (c) => c.state },
      { label: 'Client', fields: ['client_properties'], value: client },
      { label: 'Channels', sort: 'channels', num: true, fields: ['channels'], value: (c) => num(c.channels) },
      { label: 'From client', sort: 'recv_oct_details.rate', num: true, fields: ['recv_oct_details'], value: (c) => `${bytes((c.recv_oct_details || {}).rate)}/s` },
      { label: 'To client', sort: 'send_oct_details.rate', num: true, fields: ['send_oct_details'], value: (c) => `${bytes((c.send_oct_details || {}).rate)}/s` },
    ],
  });
  clear(root, h('h1', {}, 'Connections'), list.el);
  return { refresh: list.refresh };
}

export async function connection(root, name) {
  const base = `/connections/${enc(name)}`;
  const details = h('div');
  const chans = h('div');
  const props = h('div');
  const reason = h('input', { id: 'close-reason', value: 'Closed via management plugin', size: 40 });
  const close = h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!confirm(`Close connection ${name}?`)) return;
    try {
      // The reason travels in X-Reason, as with RabbitMQ's console; the client gets it in connection.close.
      await del(base, { 'X-Reason': reason.value });
      notify(`Connection ${name} closed`);
      location.hash = '#/connections';
    } catch (e) { notify(explain(e), 'error'); }
  } }, 'Force close');
  clear(root, h('h1', {}, 'Connection ', h('span', { class: 'name' }, name)), details,
    section('Channels', chans), section('Client properties', props),
    section('Close this connection', h('div', { class: 'field' }, h('label', { for: 'close-reason' }, 'Reason'), reason), close));

  async function refresh() {
    const [c, cs] = await Promise.all([get(base), get(`${base}/channels`)]);
    clear(details, facts([
      ['Virtual host', c.vhost], ['User', c.user], ['State', c.state], ['Protocol', c.protocol],
      ['Client', `${c.peer_host}:${c.peer_port}`], ['Server', `${c.host}:${c.port}`],
      ['Heartbeat', `${c.timeout} s`], ['Frame max', num(c.frame_max)], ['Channel max', num(c.channel_max)],
      ['Received', `${bytes(c.recv_oct)} (${bytes((c.recv_oct_details || {}).rate)}/s)`],
      ['Sent', `${bytes(c.send_oct)} (${bytes((c.send_oct_details || {}).rate)}/s)`],
    ]));
    clear(chans, channelTable(cs));
    const p = c.client_properties || {};
    clear(props, facts(Object.entries(p).map(([k, v]) => [k, typeof v === 'object' ? args(v) : String(v)])));
  }
  return { refresh };
}

function channelTable(items) {
  return table([
    { label: 'Channel', value: (c) => c.name },
    { label: 'Virtual host', value: (c) => c.vhost },
    { label: 'User', value: (c) => c.user },
    { label: 'Mode', value: (c) => (c.confirm ? 'confirm' : c.transactional ? 'transactional' : '') },
    { label: 'State', value: (c) => c.state },
    { label: 'Consumers', value: (c) => num(c.consumer_count), num: true },
    { label: 'Prefetch', value: (c) => num(c.prefetch_count), num: true },
    { label: 'Unacked', value: (c) => num(c.messages_unacknowledged), num: true },
    { label: 'Publish', value: (c) => rate(r(c, 'publish')), num: true },
    { label: 'Deliver/get', value: (c) => rate(r(c, 'deliver_get')), num: true },
    { label: 'Ack', value: (c) => rate(r(c, 'ack')), num: true },
  ], items, 'No channels');
}

export async function channels(root) {
  const list = pagedList({
    id: 'channels-list',
    path: '/channels',
    placeholder: 'Filter channels by name',
    columns: [
      { label: 'Channel', sort: 'name', fields: ['name', 'connection_details'], value: (c) =>
        link(route('connections', (c.connection_details || {}).name || ''), c.name) },
      { label: 'Virtual host', sort: 'vhost', fields: ['vhost'], value: (c) => c.vhost },
      { label: 'User', fields: ['user'], value: (c) => c.user },
      { label: 'Mode', fields: ['confirm', 'transactional'], value: (c) => (c.confirm ? 'confirm' : c.transactional ? 'transactional' : '') },
      { label: 'State', fields: ['state'], value: (c) => c.state },
      { label: 'Consumers', sort: 'consumer_count', num: true, fields: ['consumer_count'], value: (c) => num(c.consumer_count) },
      { label: 'Unacked', sort: 'messages_unacknowledged', num: true, fields: ['messages_unacknowledged'], value: (c) => num(c.messages_unacknowledged) },
      { label: 'Publish', sort: 'message_stats.publish_details.rate', num: true, fields: ['message_stats'], value: (c) => rate(r(c, 'publish')) },
      { label: 'Deliver/get', num: true, value: (c) => rate(r(c, 'deliver_get')) },
      { label: 'Ack', num: true, value: (c) => rate(r(c, 'ack')) },
    ],
  });
  clear(root, h('h1', {}, 'Channels'), list.el);
  return { refresh: list.refresh };
}
