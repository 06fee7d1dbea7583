// The console's shell: login (Basic auth kept in sessionStorage), the header and tabs, and a
// hash router (#/queues/%2F/name) that shows one page and refreshes it every few seconds.
import * as api from './api.js';
import { h, clear } from './dom.js';
import { notify, explain } from './ui.js';
import { overview } from './pages/overview.js';
import { queues, queue } from './pages/queues.js';
import { exchanges, exchange } from './pages/exchanges.js';
import { connections, connection, channels } from './pages/connections.js';
import { vhosts, users, policies } from './pages/admin.js';
import { definitions } from './pages/definitions.js';

const tabs = [
  ['/', 'Overview'], ['/connections', 'Connections'], ['/channels', 'Channels'], ['/exchanges', 'Exchanges'],
  ['/queues', 'Queues'], ['/vhosts', 'Virtual hosts'], ['/users', 'Users'], ['/policies', 'Policies'],
  ['/definitions', 'Definitions'],
];

const routes = [
  [/^\/$/, overview],
  [/^\/connections$/, connections],
  [/^\/connections\/([^/]+)$/, connection],
  [/^\/channels$/, channels],
  [/^\/exchanges$/, exchanges],
  [/^\/exchanges\/([^/]+)\/([^/]*)$/, exchange],
  [/^\/queues$/, queues],
  [/^\/queues\/([^/]+)\/([^/]+)$/, queue],
  [/^\/vhosts$/, vhosts],
  [/^\/users$/, users],
  [/^\/policies$/, policies],
  [/^\/definitions$/, definitions],
];

const app = document.getElementById('app');
let current = null;  // the page shown: { refresh, destroy }
let timer = null;
let interval = Number(sessionStorage.getItem('warren.refresh') || 5000);
let shownAt = 0;  // bumped per navigation: a page still loading when the hash changes is dropped

function path() {
  const p = location.hash.replace(/^#/, '') || '/';
  return p.startsWith('/') ? p : '/' + p;
}

function showLogin(message) {
  stop();
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const status = h('p', { class: 'form-status error', role: 'alert' }, message || '');
  clear(app, h('div', { class: 'login' },
    h('h1', {}, 'Warren'),
    h('form', { 'aria-label': 'Log in', onsubmit: async (ev) => {
      ev.preventDefault();
      status.textContent = '';
      try {
        await api.login(user.value, pass.value);
        showShell();
      } catch (e) {
        status.textContent = e.status === 401 ? 'Login failed' : explain(e);
      }
    } },
    h('div', { class: 'field' }, h('label', { for: 'login-user' }, 'Username'), user),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), pass),
    h('button', { type: 'submit' }, 'Log in'), status)));
  user.focus();
}

function showShell() {
  const who = api.credentials();
  const refreshSelect = h('select', { 'aria-label': 'Refresh interval', onchange: () => {
    interval = Number(refreshSelect.value);
    sessionStorage.setItem('warren.refresh', String(interval));
    schedule();
  } }, [[2000, 'Refresh every 2 s'], [5000, 'Refresh every 5 s'], [10000, 'Refresh every 10 s'], [30000, 'Refresh every 30 s'], [0, 'No refresh']]
    .map(([v, t]) => h('option', { value: v }, t)));
  refreshSelect.value = String(interval);
  const nav = h('nav', { 'aria-label': 'Sections' }, tabs.map(([href, label]) => h('a', { href: '#' + href, dataset: { tab: href } }, label)));
  clear(app,
    h('header', {},
      h('a', { class: 'brand', href: '#/' }, 'Warren'),
      h('span', { id: 'node-info', class: 'muted' }),
      h('span', { class: 'spacer' }),
      refreshSelect,
      h('span', { class: 'muted' }, 'User ', h('strong', { id: 'current-user' }, who ? who.user : '')),
      h('button', { type: 'button', class: 'secondary', onclick: () => { api.forget(); showLogin(); } }, 'Log out')),
    nav,
    h('div', { id: 'notices', 'aria-live': 'polite' }),
    h('main', { id: 'page' }));
  api.get('/overview?columns=node').then((o) => {
    const el = document.getElementById('node-info');
    if (el) el.textContent = o.node;
  }).catch(() => {});
  show();
}

function stop() {
  clearTimeout(timer);
  timer = null;
  if (current && current.destroy) current.destroy();
  current = null;
}

function schedule() {
  clearTimeout(timer);
  if (!interval || !current || !current.refresh) return;
  timer = setTimeout(async () => {
    const page = current;
    // Skip while the tab is hidden; keep the last answer on screen if a refresh fails.
    if (!document.hidden) await page.refresh().catch(() => {});
    if (page === current) schedule();
  }, interval);
}

async function show() {
  const main = document.getElementById('page');
  if (!main) return;
  stop();
  const mine = ++shownAt;
  const p = path();
  for (const a of document.querySelectorAll('nav a')) {
    const t = a.dataset.tab;
    a.classList.toggle('active', t === '/' ? p === '/' : p === t || p.startsWith(t + '/'));
  }
  // Each navigation gets its own element: a page that finishes loading after the next one was
  // asked for renders into a detached element, never over the page shown.
  const root = h('div');
  clear(main, root);
  for (const [re, page] of routes) {
    const m = p.match(re);
    if (!m) continue;
    const params = m.slice(1).map(decodeURIComponent);
    try {
      const shown = (await page(root, ...params)) || {};
      if (mine !== shownAt) return shown.destroy && shown.destroy();
      current = shown;
      if (current.refresh) await current.refresh();
      if (mine === shownAt) schedule();
    } catch (e) {
      if (mine === shownAt) clear(root, h('p', { class: 'error' }, explain(e)));
    }
    return;
  }
  clear(root, h('h1', {}, 'Not found'), h('p', {}, 'No such page: ', p));
}

api.setUnauthorizedHandler(() => showLogin('Your session has ended: log in again.'));
window.addEventListener('hashchange', () => { if (api.credentials()) show(); });
window.addEventListener('unhandledrejection', (ev) => notify(explain(ev.reason), 'error'));

if (api.credentials()) showShell();
else showLogin();
