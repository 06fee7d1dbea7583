// amqplib and Warren's consumer groups: a super stream declared by plain AMQP (an
// x-consistent-hash exchange marked x-super-stream over 6 stream partitions), groups of 1, 2 and
// 5 members (x-stream-group on a consumer per partition) with members joining and leaving while
// messages flow: every message of every key reaches exactly one member of each group, in order
// per key.
'use strict';
const { EventEmitter } = require('node:events');
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { unique, connect, closeAll } = require('./helpers');

after(closeAll);

const PARTITIONS = 6;
const KEYS = Array.from({ length: 30 }, (_, i) => `ad-${i}`);
const deliveries = new EventEmitter(); // 'delivery' after each one, for until()

// A member: its own connection and channel, a consumer on every partition. Deliveries are
// worked through one at a time, a millisecond each, then logged and acked, so that some wait
// in the prefetch window when partitions change hands.
async function join(stream, group, name, log) {
  const conn = await connect();
  const ch = await conn.createChannel();
  await ch.prefetch(10);
  const tags = [];
  const waiting = [];
  let working = false;
  const work = async () => {
    if (working) return;
    working = true;
    while (waiting.length > 0) {
      const msg = waiting.shift();
      await new Promise((r) => setTimeout(r, 1));
      log.push({ member: name, body: msg.content.toString() });
      ch.ack(msg);
      deliveries.emit('delivery');
    }
    working = false;
    deliveries.emit('idle');
  };
  for (let i = 0; i < PARTITIONS; i++) {
    const { consumerTag } = await ch.consume(`${stream}-${i}`, (msg) => {
      waiting.push(msg);
      work();
    }, { noAck: false, arguments: { 'x-stream-group': group, 'x-stream-offset': 'first' } });
    tags.push(consumerTag);
  }
  return {
    name,
    // Cancel every consumer, work through and ack what came before the cancel-oks, close:
    // nothing is read twice.
    async leave() {
      for (const tag of tags) await ch.cancel(tag);
      while (working || waiting.length > 0) await new Promise((r) => deliveries.once('idle', r));
      await ch.close();
      await conn.close();
    },
  };
}

// Resolves once predicate() holds, checked after each delivery.
function until(predicate, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!predicate()) return;
      clearTimeout(timer);
      deliveries.off('delivery', check);
      resolve();
    };
    const timer = setTimeout(() => {
      deliveries.off('delivery', check);
      reject(new Error(`timed out waiting for ${what}`));
    }, 60000);
    deliveries.on('delivery', check);
    check();
  });
}

test('groups of 1, 2 and 5 over 6 partitions, members joining and leaving mid-stream',
  { timeout: 120000, skip: process.env.INTEROP_BROKER === 'rabbitmq' && "consumer groups are Warren's" },
  async () => {
    const stream = unique('node-clicks');
    const admin = await connect();
    const ch = await admin.createConfirmChannel();
    await ch.assertExchange(stream, 'x-consistent-hash', { durable: true, arguments: { 'x-super-stream': true } });
    for (let i = 0; i < PARTITIONS; i++) {
      await ch.assertQueue(`${stream}-${i}`, { durable: true, arguments: { 'x-queue-type': 'stream' } });
      await ch.bindQueue(`${stream}-${i}`, stream, '1', { 'x-stream-partition-order': i });
    }
    const seq = {};
    let sent = 0;
    const publish = async (perKey) => {
      for (let r = 0; r < perKey; r++) {
        for (const k of KEYS) {
          seq[k] = (seq[k] || 0) + 1;
          ch.publish(stream, k, Buffer.from(`${k}:${seq[k]}`));
          sent++;
        }
      }
      await ch.waitForConfirms();
    };
    const logs = { one: [], two: [], five: [] };
    const members = { one: [], two: [], five: [] };
    const add = async (group, name) => members[group].push(await join(stream, group, name, logs[group]));
    const remove = async (group, i) => { const [m] = members[group].splice(i, 1); await m.leave(); };
    const allIn = () => Object.values(logs).every((l) => l.length >= sent);

    await add('one', 'o1');
    await add('two', 't1');
    for (let i = 1; i <= 4; i++) await add('five', `f${i}`);
    await publish(6);
    await add('two', 't2');
    await add('five', 'f5');
    await remove('five', 1);
    await publish(6);
    await add('five', 'f6');
    await remove('two', 0);
    await add('two', 't3');
    await publish(4);
    await until(allIn, 'every group to read every message');

    for (const [group, log] of Object.entries(logs)) {
      const seen = new Set();
      const last = {};
      for (const { body } of log) {
        assert.ok(!seen.has(body), `${group}: ${body} delivered twice`);
        seen.add(body);
        const [k, n] = body.split(':');
        assert.equal(Number(n), (last[k] || 0) + 1, `${group}: ${body} out of order`);
        last[k] = Number(n);
      }
      assert.equal(log.length, sent, `${group}: ${log.length} of ${sent}`);
    }
    assert.ok(new Set(logs.two.map((e) => e.member)).size >= 2, 'group two shared the work');
    for (const ms of Object.values(members)) for (const m of ms) await m.leave();
  });
