// amqplib and stream queues (x-queue-type stream): x-stream-offset of every kind and on every
// delivery, prefetch credit given back by acks that delete nothing, filters, what streams
// refuse (RabbitMQ's codes and texts), and a named consumer (x-stream-consumer-name) resuming
// where it acked after a reconnect and after a broker restart.
'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { unique, connect, closeAll, restartBroker } = require('./helpers');

after(closeAll);

const rabbitmq = process.env.INTEROP_BROKER === 'rabbitmq';

async function declareStream(ch, name = unique('node-stream')) {
  await ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  return name;
}

// Publishes on a confirm channel and waits for every confirm: the messages are in the stream.
async function publish(ch, queue, bodies, headers) {
  for (const b of bodies) ch.sendToQueue(queue, Buffer.from(b), headers ? { headers } : {});
  await ch.waitForConfirms();
}

function entry(msg) {
  return [msg.properties.headers['x-stream-offset'], msg.content.toString()];
}

// The first n deliveries ([offset, body]) to a consumer with these arguments on a channel of
// its own, each acked; the channel is closed afterwards (a stream keeps what it held unacked).
async function read(conn, queue, n, args, prefetch = 100) {
  const ch = await conn.createChannel();
  await ch.prefetch(prefetch);
  const got = [];
  let enough;
  const done = new Promise((resolve) => { enough = resolve; });
  await ch.consume(queue, (msg) => {
    if (got.length >= n) return; // past what was asked for: left unacked
    got.push(entry(msg));
    ch.ack(msg);
    if (got.length === n) enough();
  }, { noAck: false, arguments: args });
  await done;
  await ch.close();
  return got;
}

const abc = [[0, 'a'], [1, 'b'], [2, 'c']];

test('x-stream-offset first, numeric, timestamp, interval, last and next', { timeout: 60000 }, async () => {
  const conn = await connect();
  const pub = await conn.createConfirmChannel();
  const q = await declareStream(pub);
  await publish(pub, q, ['a', 'b']);
  await publish(pub, q, ['c']); // a chunk of its own: "last" starts there
  assert.deepEqual(await read(conn, q, 3, { 'x-stream-offset': 'first' }), abc);
  assert.deepEqual(await read(conn, q, 2, { 'x-stream-offset': 1 }), abc.slice(1));
  assert.deepEqual(await read(conn, q, 3, { 'x-stream-offset': -5 }), abc); // before the start
  const y2000 = Math.floor(Date.UTC(2000, 0, 1) / 1000);
  assert.deepEqual(await read(conn, q, 3, { 'x-stream-offset': { '!': 'timestamp', value: y2000 } }), abc);
  assert.deepEqual(await read(conn, q, 3, { 'x-stream-offset': '30s' }), abc);
  assert.deepEqual(await read(conn, q, 1, { 'x-stream-offset': 'last' }), [[2, 'c']]);

  // "next" sees only what is published after its consume-ok: had it started earlier, an older
  // message would come before "d" on this channel.
  const ch = await conn.createChannel();
  await ch.prefetch(10);
  const first = new Promise((resolve) => {
    ch.consume(q, resolve, { noAck: false, arguments: { 'x-stream-offset': 'next' } }).then(() => publish(pub, q, ['d']));
  });
  assert.deepEqual(entry(await first), [3, 'd']);
  await ch.close();
});

test('prefetch bounds the deliveries, acks give credit back and delete nothing', { timeout: 60000 }, async () => {
  const conn = await connect();
  const pub = await conn.createConfirmChannel();
  const q = await declareStream(pub);
  const bodies = Array.from({ length: 10 }, (_, i) => `m${i}`);
  // One at a time: RabbitMQ delivers a stream by whole chunks (the messages of one write) and
  // may exceed the prefetch by up to a chunk; Warren keeps to it exactly (README: streams).
  for (const b of bodies) await publish(pub, q, [b]);

  const ch = await conn.createChannel();
  await ch.prefetch(3);
  const held = [];
  let waiter = null;
  const until = (n) => new Promise((resolve) => {
    waiter = () => { if (held.length >= n) resolve(); };
    waiter();
  });
  await ch.consume(q, (msg) => { held.push(msg); waiter && waiter(); },
    { noAck: false, arguments: { 'x-stream-offset': 'first' } });
  await until(3);
  // A round trip on the channel: deliveries past the prefetch would have come before its reply.
  await ch.checkQueue(q);
  assert.equal(held.length, 3);
  ch.ack(held[2], true); // three acked: three more
  await until(6);
  await ch.checkQueue(q);
  assert.equal(held.length, 6);
  ch.ack(held[5], true);
  await until(9);
  ch.ack(held[8], true);
  await until(10);
  ch.ack(held[9]);
  assert.deepEqual(held.map(entry), bodies.map((b, i) => [i, b]));
  await ch.close();
  // Acked messages stay in the stream for the next reader.
  assert.deepEqual(await read(conn, q, 10, { 'x-stream-offset': 'first' }, 1), bodies.map((b, i) => [i, b]));
});

test('x-stream-filter and x-stream-match-unfiltered pick by x-stream-filter-value',
  { timeout: 60000, skip: rabbitmq && "stream filtering is RabbitMQ 3.13's; the reference node runs 3.10" },
  async () => {
    const conn = await connect();
    const pub = await conn.createConfirmChannel();
    const q = await declareStream(pub);
    await publish(pub, q, ['r1'], { 'x-stream-filter-value': 'red' });
    await publish(pub, q, ['b1'], { 'x-stream-filter-value': 'blue' });
    await publish(pub, q, ['plain']);
    await publish(pub, q, ['r2'], { 'x-stream-filter-value': 'red' });
    // Deliveries come in offset order, so a wrong one would come before the last right one.
    assert.deepEqual(await read(conn, q, 2, { 'x-stream-offset': 'first', 'x-stream-filter': 'red' }),
      [[0, 'r1'], [3, 'r2']]);
    assert.deepEqual(await read(conn, q, 3, {
      'x-stream-offset': 'first', 'x-stream-filter': ['red'], 'x-stream-match-unfiltered': true,
    }), [[0, 'r1'], [2, 'plain'], [3, 'r2']]);
    await publish(pub, q, ['g1'], { 'x-stream-filter-value': 'green' });
    assert.deepEqual(await read(conn, q, 2, { 'x-stream-offset': 'first', 'x-stream-filter': ['blue', 'green'] }),
      [[1, 'b1'], [4, 'g1']]);
  });

// The channel error an operation's promise is rejected with: RabbitMQ's code and text.
async function channelError(promise, code, text) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, err.message);
    assert.ok(err.message.includes(`with message "${text}"`), err.message);
    return true;
  });
}

// The connection error that act(channel) provokes on a connection of its own.
async function connectionError(act, code, text) {
  const conn = await connect();
  const closed = new Promise((resolve) => conn.once('close', resolve));
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  act(ch).catch(() => {}); // no reply comes: the connection closes instead
  const err = await closed;
  assert.ok(err, 'the broker closed the connection');
  assert.equal(err.code, code, err.message);
  assert.ok(err.message.includes(`with message "${text}"`), err.message);
}

test('what streams refuse, with the codes and texts RabbitMQ gives', { timeout: 60000 }, async () => {
  const conn = await connect();
  const pub = await conn.createConfirmChannel();
  const q = await declareStream(pub);
  await publish(pub, q, ['m0']);
  const where = `queue '${q}' in vhost '/'`;

  const ch = await conn.createChannel();
  ch.on('error', () => {});
  await channelError(ch.assertQueue(`${q}-x`, { durable: false, arguments: { 'x-queue-type': 'stream' } }), 406,
    `PRECONDITION_FAILED - invalid property 'non-durable' for queue '${q}-x' in vhost '/'`);
  const unbounded = await conn.createChannel();
  unbounded.on('error', () => {});
  await channelError(unbounded.consume(q, () => {}, { noAck: false }), 406,
    `PRECONDITION_FAILED - consumer prefetch count is not set for '${where}'`);

  await connectionError((c) => c.get(q, { noAck: false }), 540,
    `NOT_IMPLEMENTED - basic.get not supported by stream queues ${where}`);
  await connectionError(async (c) => {
    await c.prefetch(10);
    await c.consume(q, () => {}, { noAck: true });
  }, 540, `NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues ${where}`);
  await connectionError(async (c) => {
    await c.prefetch(10);
    await c.consume(q, (msg) => c.nack(msg, false, true), { noAck: false, arguments: { 'x-stream-offset': 'first' } });
  }, 540, `NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues ${where}`);
});

test('a named consumer resumes after what it acked, across a reconnect and a broker restart',
  { timeout: 90000, skip: rabbitmq && 'x-stream-consumer-name: offsets tracked by the broker are Warren\'s' },
  async () => {
    let conn = await connect();
    const pub = await conn.createConfirmChannel();
    const q = await declareStream(pub);
    const bodies = Array.from({ length: 8 }, (_, i) => `m${i}`);
    await publish(pub, q, bodies);
    const named = { 'x-stream-consumer-name': 'billing', 'x-stream-offset': 'first' };
    assert.deepEqual(await read(conn, q, 3, named, 1), [[0, 'm0'], [1, 'm1'], [2, 'm2']]);
    await conn.close(); // after the acks: connection.close-ok follows them
    conn = await connect();
    // Everything from offset 3 comes (prefetch 100); two are acked.
    assert.deepEqual(await read(conn, q, 2, named), [[3, 'm3'], [4, 'm4']]);
    await conn.close();
    await restartBroker();
    conn = await connect();
    assert.deepEqual(await read(conn, q, 3, named), [[5, 'm5'], [6, 'm6'], [7, 'm7']]);
    // Another name starts where x-stream-offset says: the whole stream came back.
    assert.deepEqual(await read(conn, q, 8, { 'x-stream-consumer-name': 'audit', 'x-stream-offset': 'first' }),
      bodies.map((b, i) => [i, b]));
  });
