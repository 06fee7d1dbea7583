// amqplib work queue: a confirmed producer, two workers with prefetch 1 that ack after
// processing; every task is processed exactly once and both workers take part.
'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { unique, connect, closeAll } = require('./helpers');

after(closeAll);

test('two prefetch-1 workers process every task exactly once', { timeout: 60000 }, async () => {
  const TASKS = 200;
  const queue = unique('node-work');
  const producer = await connect();
  const pch = await producer.createConfirmChannel();
  await pch.assertQueue(queue, { durable: false, autoDelete: false });

  const processed = new Map(); // task -> times processed
  const perWorker = [0, 0];
  let finish;
  const allDone = new Promise((resolve) => { finish = resolve; });

  for (const w of [0, 1]) {
    const ch = await (await connect()).createChannel();
    await ch.prefetch(1);
    await ch.consume(queue, (msg) => {
      const task = msg.content.toString();
      setImmediate(() => { // "work", then ack
        processed.set(task, (processed.get(task) || 0) + 1);
        perWorker[w] += 1;
        ch.ack(msg);
        if (perWorker[0] + perWorker[1] === TASKS) finish();
      });
    }, { noAck: false });
  }

  for (let i = 0; i < TASKS; i++) {
    pch.sendToQueue(queue, Buffer.from(`task-${i}`), { persistent: true });
  }
  await pch.waitForConfirms();
  await allDone;

  assert.equal(processed.size, TASKS);
  for (const [task, times] of processed) assert.equal(times, 1, `${task} processed ${times} times`);
  assert.ok(perWorker[0] > 0 && perWorker[1] > 0, `work split ${perWorker}`);
  const check = await producer.createChannel();
  const { messageCount, consumerCount } = await check.checkQueue(queue);
  assert.equal(messageCount, 0);
  assert.equal(consumerCount, 2);
  await check.deleteQueue(queue);
});

test('a channel error reaches amqplib as a 404 and the connection survives', { timeout: 30000 }, async () => {
  const conn = await connect();
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  const missing = unique('missing');
  await assert.rejects(ch.checkQueue(missing), (err) => {
    assert.equal(err.code, 404);
    assert.match(err.message, new RegExp(`NOT_FOUND - no queue '${missing}' in vhost '/'`));
    return true;
  });
  const again = await conn.createChannel();
  const { queue } = await again.assertQueue('', { exclusive: true });
  assert.ok(queue.startsWith('amq.gen-'), queue);
});
