// Shared setup for the amqplib interop tests: the broker URL comes from the Python fixture
// (tests/interop/python/test_node_amqplib.py) in AMQP_URL, and so does INTEROP_RESTART_URL;
// every test names its own queues.
'use strict';
const crypto = require('node:crypto');
const amqp = require('amqplib');

const url = process.env.AMQP_URL;
if (!url) throw new Error('AMQP_URL is not set: run these through tests/interop/run.sh');

function unique(prefix) {
  return `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
}

// Connections opened through here are closed by closeAll() in an after() hook.
const open = [];
async function connect() {
  const conn = await amqp.connect(url);
  conn.on('error', () => {}); // surfaced through the awaiting promise instead
  open.push(conn);
  return conn;
}

async function closeAll() {
  for (const conn of open.splice(0)) {
    try { await conn.close(); } catch { /* already closed */ }
  }
}

// Restarts the broker (SIGTERM, then the same data on the same port) through the Python
// fixture; resolves once it accepts connections again. Connections open before it are gone.
async function restartBroker() {
  const res = await fetch(process.env.INTEROP_RESTART_URL, { method: 'POST' });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`broker restart: ${res.status} ${text}`);
}

module.exports = { unique, connect, closeAll, restartBroker };
