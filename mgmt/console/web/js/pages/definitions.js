// Definitions: export the broker's exchanges, queues and bindings (and what else the API lists)
// as a JSON file, and import one (POST /api/definitions).
import { get, post, enc } from '../api.js';
import { h, clear, num, facts } from '../dom.js';
import { form } from '../ui.js';

export async function definitions(root) {
  const summary = h('div');
  const vhostNames = (await get('/vhosts?columns=name')).map((v) => v.name);
  const vhost = h('select', { id: 'export-vhost', 'aria-label': 'Virtual host to export' },
    h('option', { value: '' }, 'All virtual hosts'), vhostNames.map((v) => h('option', { value: v }, v)));
  const status = h('span', { class: 'form-status', role: 'status' });
  const exportButton = h('button', { type: 'button', onclick: async () => {
    status.textContent = '…';
    try {
      const path = vhost.value ? `/definitions/${enc(vhost.value)}` : '/definitions';
      const defs = await get(path);
      const blob = new Blob([JSON.stringify(defs, null, 2)], { type: 'application/json' });
      const a = h('a', { href: URL.createObjectURL(blob),
        download: `warren-definitions-${new Date().toISOString().slice(0, 10)}.json` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      show(defs);
      status.className = 'form-status ok';
      status.textContent = 'Downloaded';
    } catch (e) {
      status.className = 'form-status error';
      status.textContent = e.message;
    }
  } }, 'Download definitions');

  function show(d) {
    const n = (k) => (Array.isArray(d[k]) ? num(d[k].length) : null);
    clear(summary, facts([
      ['Exchanges', n('exchanges')], ['Queues', n('queues')], ['Bindings', n('bindings')],
      d.vhosts ? ['Virtual hosts', n('vhosts')] : null, d.users ? ['Users', n('users')] : null,
      d.policies ? ['Policies', n('policies')] : null,
    ]));
  }

  const upload = form('Import definitions', [
    { name: 'file', label: 'Definitions file (JSON)', type: 'file', accept: '.json,application/json' },
    { name: 'vhost', label: 'Into', type: 'select', options: ['All virtual hosts', ...vhostNames] },
  ], 'Upload', async (v) => {
    if (!v.file) throw new Error('Choose a file first');
    const text = await v.file.text();
    try { JSON.parse(text); } catch { throw new Error('The file is not JSON'); }
    const path = v.vhost === 'All virtual hosts' ? '/definitions' : `/definitions/${enc(v.vhost)}`;
    await post(path, text);
    return 'Definitions imported';
  });

  clear(root, h('h1', {}, 'Definitions'),
    h('section', {}, h('h2', {}, 'Export'),
      h('p', {}, 'Exchanges, queues and bindings, in the format RabbitMQ exports and imports.'),
      h('div', { class: 'actions' }, vhost, exportButton, status), summary),
    h('section', {}, h('h2', {}, 'Import'), upload));
}
