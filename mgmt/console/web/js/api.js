// The management API as the console uses it: Basic auth from sessionStorage (as RabbitMQ's
// console keeps it: gone when the tab closes), JSON in and out, errors as ApiError.
const KEY = 'warren.auth';

export class ApiError extends Error {
  constructor(status, reason) {
    super(reason || `HTTP ${status}`);
    this.status = status;
  }
  // 405: the broker has the path but not this change (users, permissions, policies, vhosts today).
  get unsupported() { return this.status === 405; }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

export function credentials() {
  const token = sessionStorage.getItem(KEY);
  if (!token) return null;
  return { token, user: sessionStorage.getItem(KEY + '.user') || '' };
}

export function forget() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY + '.user');
}

function basic(user, password) {
  // btoa needs bytes: UTF-8 encode first so non-ASCII passwords work.
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return 'Basic ' + btoa(s);
}

// Checks the credentials against /api/whoami and keeps them on success.
export async function login(user, password) {
  const token = basic(user, password);
  const res = await fetch('api/whoami', { headers: { Authorization: token }, credentials: 'omit' });
  if (res.status === 401) throw new ApiError(401, 'Login failed');
  if (!res.ok) throw new ApiError(res.status, await reason(res));
  const who = await res.json();
  sessionStorage.setItem(KEY, token);
  sessionStorage.setItem(KEY + '.user', who.name);
  return who;
}

async function reason(res) {
  try {
    const body = await res.json();
    return body.reason || body.error || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

// One request; the parsed JSON (or null for an empty answer). `headers` adds to the defaults.
export async function request(method, path, body, headers = {}) {
  const auth = credentials();
  const h = { ...headers };
  if (auth) h.Authorization = auth.token;
  // credentials 'omit': the Authorization header is ours; without credentials the browser never
  // answers a 401 with its own login dialog (the Fetch standard prompts only when it includes them).
  const init = { method, headers: h, credentials: 'omit' };
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch('api' + path, init);
  if (res.status === 401) {
    const why = await reason(res);
    // A refused login (the password changed, the session is gone) sends back to the login page.
    if (why === 'Login failed' || !auth) {
      forget();
      onUnauthorized();
    }
    throw new ApiError(401, why);
  }
  if (!res.ok) throw new ApiError(res.status, await reason(res));
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path) => request('GET', path);
export const put = (path, body) => request('PUT', path, body ?? {});
export const post = (path, body) => request('POST', path, body ?? {});
export const del = (path, headers) => request('DELETE', path, undefined, headers);

// A name in a path: vhost "/" is "%2F".
export const enc = (s) => encodeURIComponent(s);
