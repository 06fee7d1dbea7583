// Overview: totals, queued messages and message rates over time (charts), the node's memory and
// disk against their alarms, and the listeners.
import { get } from '../api.js';
import { h, clear, num, rate, bytes, duration, section, facts, table } from '../dom.js';
import { History, Chart } from '../chart.js';

// Samples survive leaving the page, so the charts keep their past while the console is open.
const queued = new History(['Ready', 'Unacked', 'Total']);
const rates = new History(['Publish', 'Deliver/get', 'Ack', 'Confirm', 'Redeliver']);

export async function overview(root) {
  const alarms = h('div', { id: 'alarms' });
  const totals = h('div', { class: 'totals' });
  const queuedBox = h('div', { class: 'chart' });
  const ratesBox = h('div', { class: 'chart' });
  const node = h('div');
  const listeners = h('div');
  clear(root, h('h1', {}, 'Overview'), alarms, totals,
    h('div', { class: 'charts' }, queuedBox, ratesBox),
    section('Node', node), section('Listeners', listeners));
  let charts = [];

  async function refresh() {
    const [o, nodes] = await Promise.all([get('/overview'), get('/nodes')]);
    const qt = o.queue_totals || {};
    const ms = o.message_stats || {};
    const r = (k) => (ms[k + '_details'] || {}).rate || 0;
    queued.add([qt.messages_ready, qt.messages_unacknowledged, qt.messages]);
    rates.add([r('publish'), r('deliver_get'), r('ack'), r('confirm'), r('redeliver')]);
    if (!charts.length) charts = [new Chart(queuedBox, 'Queued messages', queued, ''), new Chart(ratesBox, 'Message rates', rates, '/s')];
    charts.forEach((c) => c.update());

    const ot = o.object_totals || {};
    const tile = (label, value, id) => h('div', { class: 'tile', dataset: { total: id } }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
    clear(totals,
      tile('Connections', num(ot.connections), 'connections'), tile('Channels', num(ot.channels), 'channels'),
      tile('Exchanges', num(ot.exchanges), 'exchanges'), tile('Queues', num(ot.queues), 'queues'),
      tile('Consumers', num(ot.consumers), 'consumers'), tile('Messages', num(qt.messages), 'messages'),
      tile('Ready', num(qt.messages_ready), 'ready'), tile('Unacked', num(qt.messages_unacknowledged), 'unacked'),
      tile('Publish', rate(r('publish')), 'publish_rate'), tile('Deliver', rate(r('deliver_get')), 'deliver_rate'));

    const n = nodes[0] || {};
    const raised = [];
    if (n.mem_alarm) raised.push(`Memory alarm: ${bytes(n.mem_used)} used, the limit is ${bytes(n.mem_limit)}. Publishers are blocked.`);
    if (n.disk_free_alarm) raised.push(`Disk alarm: ${bytes(n.disk_free)} free, the limit is ${bytes(n.disk_free_limit)}. Publishers are blocked.`);
    clear(alarms, raised.length ? raised.map((t) => h('div', { class: 'alarm', role: 'alert' }, t))
      : h('div', { class: 'no-alarm' }, 'No alarms'));
    clear(node, facts([
      ['Name', n.name],
      ['Uptime', n.uptime !== undefined ? duration(n.uptime) : ''],
      ['Memory', h('span', { class: n.mem_alarm ? 'bad' : null }, `${bytes(n.mem_used)} of ${bytes(n.mem_limit)} (alarm above)`)],
      ['Disk free', h('span', { class: n.disk_free_alarm ? 'bad' : null }, `${bytes(n.disk_free)} (alarm below ${bytes(n.disk_free_limit)})`)],
      // What connection.start reports to clients (server_product, server_version), and what runs.
      ['Reports itself as', `${o.product_name || ''} ${o.product_version || ''}`],
      ['Runtime', o.erlang_version],
    ]));
    clear(listeners, table([
      { label: 'Protocol', value: (l) => l.protocol },
      { label: 'Address', value: (l) => l.ip_address },
      { label: 'Port', value: (l) => l.port, num: true },
    ], o.listeners));
  }
  return { refresh, destroy: () => charts.forEach((c) => c.destroy()) };
}
