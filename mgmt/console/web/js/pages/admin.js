// Virtual hosts, users with their permissions, and policies: what the API serves, with the forms
// to change them. Where the broker does not support a change yet the API answers 405, and the
// form says so instead of failing silently.
import { get, put, del, enc } from '../api.js';
import { h, clear, num, rate, section, table } from '../dom.js';
import { form, parseJson, notify, explain } from '../ui.js';

const r = (x, k) => ((x.message_stats || {})[k + '_details'] || {}).rate;

function deleteButton(label, path, after) {
  return h('button', { type: 'button', class: 'secondary small', onclick: async () => {
    if (!confirm(`${label}?`)) return;
    try {
      await del(path);
      notify(`${label}: done`);
      await after();
    } catch (e) { notify(explain(e), 'error'); }
  } }, 'Delete');
}

export async function vhosts(root) {
  const list = h('div');
  const add = form('Add a virtual host', [
    { name: 'name', label: 'Name', required: true },
    { name: 'description', label: 'Description' },
    { name: 'tags', label: 'Tags (comma-separated)' },
  ], 'Add virtual host', async (v) => {
    await put(`/vhosts/${enc(v.name)}`, { description: v.description, tags: v.tags });
    await refresh();
    return `Virtual host ${v.name} added`;
  }, { collapsed: true });
  clear(root, h('h1', {}, 'Virtual hosts'), list, add);
  async function refresh() {
    const items = await get('/vhosts');
    clear(list, table([
      { label: 'Name', value: (v) => v.name },
      { label: 'Description', value: (v) => v.description },
      { label: 'Ready', value: (v) => num(v.messages_ready), num: true },
      { label: 'Unacked', value: (v) => num(v.messages_unacknowledged), num: true },
      { label: 'Total', value: (v) => num(v.messages), num: true },
      { label: 'Publish', value: (v) => rate(r(v, 'publish')), num: true },
      { label: 'Deliver/get', value: (v) => rate(r(v, 'deliver_get')), num: true },
      { label: '', value: (v) => deleteButton(`Delete virtual host ${v.name}`, `/vhosts/${enc(v.name)}`, refresh) },
    ], items));
  }
  return { refresh };
}

export async function users(root) {
  const userList = h('div');
  const permList = h('div');
  const topicList = h('div');
  const vhostNames = (await get('/vhosts?columns=name')).map((v) => v.name);
  const addUser = form('Add or update a user', [
    { name: 'name', label: 'Username', required: true, autocomplete: 'off' },
    { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password' },
    { name: 'tags', label: 'Tags', type: 'select', options: ['administrator', 'monitoring', 'policymaker', 'management', 'none'] },
  ], 'Save user', async (v) => {
    await put(`/users/${enc(v.name)}`, { password: v.password, tags: v.tags === 'none' ? '' : v.tags });
    await refresh();
    return `User ${v.name} saved`;
  }, { collapsed: true });
  const setPerm = form('Set permissions', [
    { name: 'user', label: 'User', required: true },
    { name: 'vhost', label: 'Virtual host', type: 'select', options: vhostNames },
    { name: 'configure', label: 'Configure regexp', value: '.*' },
    { name: 'write', label: 'Write regexp', value: '.*' },
    { name: 'read', label: 'Read regexp', value: '.*' },
  ], 'Set permission', async (v) => {
    await put(`/permissions/${enc(v.vhost)}/${enc(v.user)}`, { configure: v.configure, write: v.write, read: v.read });
    await refresh();
    return 'Permission set';
  }, { collapsed: true });
  clear(root, h('h1', {}, 'Users'), userList, addUser,
    section('Permissions', permList, setPerm), section('Topic permissions', topicList));
  async function refresh() {
    const [us, ps, tps] = await Promise.all([get('/users'), get('/permissions'), get('/topic-permissions')]);
    clear(userList, table([
      { label: 'Name', value: (u) => u.name },
      { label: 'Tags', value: (u) => (Array.isArray(u.tags) ? u.tags.join(', ') : u.tags) },
      { label: 'Can access virtual hosts', value: (u) => ps.filter((p) => p.user === u.name).map((p) => p.vhost).join(', ') || 'none' },
      { label: '', value: (u) => deleteButton(`Delete user ${u.name}`, `/users/${enc(u.name)}`, refresh) },
    ], us));
    clear(permList, table([
      { label: 'User', value: (p) => p.user },
      { label: 'Virtual host', value: (p) => p.vhost },
      { label: 'Configure', value: (p) => p.configure },
      { label: 'Write', value: (p) => p.write },
      { label: 'Read', value: (p) => p.read },
      { label: '', value: (p) => deleteButton(`Clear ${p.user}'s permissions on ${p.vhost}`, `/permissions/${enc(p.vhost)}/${enc(p.user)}`, refresh) },
    ], ps));
    clear(topicList, table([
      { label: 'User', value: (p) => p.user },
      { label: 'Virtual host', value: (p) => p.vhost },
      { label: 'Exchange', value: (p) => p.exchange },
      { label: 'Write', value: (p) => p.write },
      { label: 'Read', value: (p) => p.read },
    ], tps));
  }
  return { refresh };
}

export async function policies(root) {
  const list = h('div');
  const opList = h('div');
  const vhostNames = (await get('/vhosts?columns=name')).map((v) => v.name);
  const add = form('Add or update a policy', [
    { name: 'vhost', label: 'Virtual host', type: 'select', options: vhostNames },
    { name: 'name', label: 'Name', required: true },
    { name: 'pattern', label: 'Pattern', required: true, placeholder: '^amq\\.' },
    { name: 'apply_to', label: 'Apply to', type: 'select', options: ['all', 'queues', 'exchanges'] },
    { name: 'priority', label: 'Priority', type: 'number', value: 0 },
    { name: 'definition', label: 'Definition (JSON)', type: 'textarea', placeholder: '{"max-length": 1000}' },
  ], 'Save policy', async (v) => {
    await put(`/policies/${enc(v.vhost)}/${enc(v.name)}`, { pattern: v.pattern, 'apply-to': v.apply_to,
      priority: Number(v.priority), definition: parseJson(v.definition, 'Definition') });
    await refresh();
    return `Policy ${v.name} saved`;
  }, { collapsed: true });
  const cols = (kind) => [
    { label: 'Virtual host', value: (p) => p.vhost },
    { label: 'Name', value: (p) => p.name },
    { label: 'Pattern', value: (p) => p.pattern },
    { label: 'Apply to', value: (p) => p['apply-to'] },
    { label: 'Definition', value: (p) => JSON.stringify(p.definition) },
    { label: 'Priority', value: (p) => p.priority, num: true },
    { label: '', value: (p) => deleteButton(`Delete policy ${p.name}`, `/${kind}/${enc(p.vhost)}/${enc(p.name)}`, refresh) },
  ];
  clear(root, h('h1', {}, 'Policies'), list, add, section('Operator policies', opList));
  async function refresh() {
    const [ps, ops] = await Promise.all([get('/policies'), get('/operator-policies')]);
    clear(list, table(cols('policies'), ps, 'No policies'));
    clear(opList, table(cols('operator-policies'), ops, 'No operator policies'));
  }
  return { refresh };
}
