// amqplib publisher confirms: every publish on a ConfirmChannel is acked exactly once, and a
// queue that rejects publishes when full nacks exactly the overflow.
'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { unique, connect, closeAll } = require('./helpers');

after(closeAll);

// Publishes count messages; resolves with each message's confirm results once every message
// has had its callback (an ack gives null, a nack an Error).
function publishAll(ch, queue, count) {
  const results = new Array(count).fill(null).map(() => []);
  let pending = count;
  return new Promise((resolve) => {
    for (let i = 0; i < count; i++) {
      ch.sendToQueue(queue, Buffer.from(`m-${i}`), {}, (err) => {
        results[i].push(err);
        if (results[i].length === 1 && --pending === 0) resolve(results);
      });
    }
  });
}

test('1000 confirmed publishes are each confirmed once', { timeout: 60000 }, async () => {
  const COUNT = 1000;
  const conn = await connect();
  const ch = await conn.createConfirmChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  const results = await publishAll(ch, queue, COUNT);
  await ch.waitForConfirms();
  assert.equal((await ch.checkQueue(queue)).messageCount, COUNT); // and no late duplicates:
  results.forEach((r, i) => {
    assert.equal(r.length, 1, `message ${i} confirmed ${r.length} times`);
    assert.equal(r[0], null, `message ${i} was nacked`);
  });
});

test('reject-publish overflow nacks exactly the messages that did not fit', { timeout: 60000 }, async () => {
  const conn = await connect();
  const ch = await conn.createConfirmChannel();
  const queue = unique('node-full');
  await ch.assertQueue(queue, { exclusive: true, arguments: { 'x-max-length': 10, 'x-overflow': 'reject-publish' } });
  const results = await publishAll(ch, queue, 25);
  assert.equal((await ch.checkQueue(queue)).messageCount, 10);
  results.forEach((r, i) => {
    assert.equal(r.length, 1, `message ${i} confirmed ${r.length} times`);
    if (i < 10) assert.equal(r[0], null, `message ${i} should fit`);
    else assert.ok(r[0] instanceof Error, `message ${i} should be nacked`);
  });
});
