// The web console in headless Chromium (Debian's `chromium`, driven by playwright-core pinned in
// package-lock.json): log in, read the overview, find one queue among 10,000 by filter, publish,
// get and purge and watch its count change, redrive a dead letter from the workbench of a
// dead-letter queue and watch its count change, close a connection, export and re-import the
// definitions, visit the other pages, and see a 405 from a change the broker does not support
// reported in its form. Run by
// tests/interop/python/test_console.py, which starts the broker and passes:
//   CONSOLE_URL (http://127.0.0.1:PORT/), CONSOLE_OUT (screenshots and the export go there),
//   CONSOLE_QUEUE (the queue to find), CONSOLE_QUEUES (how many queues there are), CHROMIUM,
//   CONSOLE_DLQ (a queue holding three messages dead-lettered, rejected, from another queue, one
//   of them taken with basic.get and not acknowledged).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const base = process.env.CONSOLE_URL;
const out = process.env.CONSOLE_OUT;
const needle = process.env.CONSOLE_QUEUE;
const total = Number(process.env.CONSOLE_QUEUES);
const step = (s) => console.log(`- ${s}`);

async function main() {
  fs.mkdirSync(out, { recursive: true });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'] });  // root in CI: Chromium's sandbox needs an unprivileged user
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    context.setDefaultTimeout(20000);
    const page = await context.newPage();
    const problems = [];  // script errors, CSP violations, failed requests other than 4xx answers
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`); });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure().errorText}`));
    page.on('dialog', (d) => d.accept());  // "Purge …?", "Close …?"

    step('a wrong password is refused on the login page');
    await page.goto(base);
    await page.fill('#login-user', 'guest');
    await page.fill('#login-password', 'wrong');
    await page.click('form[aria-label="Log in"] button');
    await page.getByText('Login failed').waitFor();

    step('log in; the overview shows totals, no alarm and two charts');
    await page.fill('#login-password', 'guest');
    await page.click('form[aria-label="Log in"] button');
    await page.locator('#current-user', { hasText: 'guest' }).waitFor();
    await page.locator('[data-total=queues] .value', { hasText: total.toLocaleString('en-US') }).waitFor();
    await page.locator('.no-alarm').waitFor();
    assert.equal(await page.locator('.chart .uplot').count(), 2);
    assert.equal(await page.evaluate(() => !!sessionStorage.getItem('warren.auth')), true);
    await page.screenshot({ path: path.join(out, 'overview.png'), fullPage: true });

    step(`find ${needle} among ${total} queues by filter (one page from the server)`);
    await page.click('nav a[data-tab="/queues"]');
    await page.locator('#queues-list .page-no', { hasText: `of ${Math.ceil(total / 50)}` }).waitFor();
    assert.equal(await page.locator('#queues-list tbody tr').count(), 50);
    await page.fill('#queues-list input[type=search]', needle);
    await page.locator('#queues-list .count', { hasText: `1 of ${total.toLocaleString('en-US')} shown` }).waitFor();
    assert.equal(await page.locator('#queues-list tbody tr').count(), 1);
    await page.screenshot({ path: path.join(out, 'queues.png'), fullPage: true });
    await page.click(`#queues-list tbody a:text-is("${needle}")`);

    step('publish two messages on the queue page: the count goes to 2');
    await page.locator('h1 .name', { hasText: needle }).waitFor();
    await page.click('summary:text("Publish a message")');
    const publish = page.locator('form[aria-label="Publish a message"]');
    await publish.locator('textarea[name=payload]').fill('hello from the console');
    await publish.locator('button').click();
    await publish.locator('.form-status.ok').waitFor();
    await publish.locator('button').click();
    await page.locator('#queue-messages', { hasText: /^2$/ }).waitFor();

    step('get one message back (requeued): its payload shows and the count stays 2');
    const getForm = page.locator('form[aria-label="Get messages"]');
    await getForm.locator('button').click();
    await page.locator('pre.payload', { hasText: 'hello from the console' }).waitFor();
    await page.locator('#queue-messages', { hasText: /^2$/ }).waitFor();
    await page.screenshot({ path: path.join(out, 'queue.png'), fullPage: true });

    step('purge: the count goes to 0');
    await page.click('button:text("Purge messages")');
    await page.locator('#queue-messages', { hasText: /^0$/ }).waitFor();

    step('the dead-letter workbench: browse a dead-letter queue, dry run, redrive one message to its origin');
    const dlq = process.env.CONSOLE_DLQ;
    await page.evaluate((hash) => { location.hash = hash; }, `#/queues/%2F/${encodeURIComponent(dlq)}`);
    await page.locator('h1 .name', { hasText: dlq }).waitFor();
    await page.locator('#queue-messages', { hasText: /^3$/ }).waitFor();  // 2 ready, 1 unacked
    await page.locator('#wb-messages tbody tr').nth(1).waitFor();
    assert.equal(await page.locator('#wb-messages tbody tr').count(), 2);
    await page.locator('#wb-by-reason', { hasText: 'rejected: 2' }).waitFor();
    await page.click('summary:text("Unacknowledged, with the consumers holding them")');
    await page.locator('#wb-unacked tbody td', { hasText: '(basic.get)' }).waitFor();
    assert.equal(await page.locator('#wb-unacked tbody tr').count(), 1);
    await page.click('button:text("Dry run")');
    await page.locator('#wb-status', { hasText: '2 would be redriven' }).waitFor();
    await page.locator('#queue-messages', { hasText: /^3$/ }).waitFor();
    await page.locator('#wb-messages tbody input[type=checkbox]').first().check();
    await page.click('button:text("Redrive selected")');
    await page.locator('#wb-status', { hasText: '1 redriven' }).waitFor();
    await page.locator('#queue-messages', { hasText: /^2$/ }).waitFor();
    assert.equal(await page.locator('#wb-messages tbody tr').count(), 1);
    await page.screenshot({ path: path.join(out, 'workbench.png'), fullPage: true });
    await page.locator('section', { has: page.locator('h2', { hasText: 'Dead-letter workbench' }) })
      .screenshot({ path: path.join(out, 'workbench-panel.png') });  // the README's picture

    step('close the one AMQP connection from its page');
    await page.click('nav a[data-tab="/connections"]');
    const conn = page.locator('#connections-list tbody a').first();
    await conn.waitFor();
    assert.equal(await page.locator('#connections-list tbody a').count(), 1);
    await conn.click();
    await page.locator('h1', { hasText: 'Connection' }).waitFor();
    await page.fill('#close-reason', 'closed by the console test');
    await page.click('button:text("Force close")');
    await page.locator('#connections-list td.empty', { hasText: 'None' }).waitFor();

    step('export the definitions: a JSON file with every queue');
    await page.click('nav a[data-tab="/definitions"]');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('button:text("Download definitions")')]);
    const file = path.join(out, 'definitions.json');
    await download.saveAs(file);
    const defs = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(defs.queues.length, total);
    assert.ok(defs.queues.some((q) => q.name === needle));

    step('import the exported file back (the same definitions: nothing changes)');
    const importForm = page.locator('form[aria-label="Import definitions"]');
    await importForm.locator('input[type=file]').setInputFiles(file);
    await importForm.locator('button').click();
    await importForm.locator('.form-status.ok', { hasText: 'Definitions imported' }).waitFor();

    step('the other pages load: exchanges (and one exchange), channels, vhosts, policies');
    await page.click('nav a[data-tab="/exchanges"]');
    await page.click('#exchanges-list tbody a:text-is("amq.topic")');
    await page.locator('h1 .name', { hasText: 'amq.topic' }).waitFor();
    await page.locator('h2', { hasText: 'Bindings to this exchange' }).waitFor();
    await page.click('nav a[data-tab="/channels"]');
    await page.locator('#channels-list td.empty').waitFor();
    await page.click('nav a[data-tab="/vhosts"]');
    await page.locator('main td', { hasText: /^\/$/ }).waitFor();
    await page.click('nav a[data-tab="/policies"]');
    await page.locator('main p.empty', { hasText: 'No policies' }).waitFor();

    step('a user change the broker does not support is reported in its form (405), or saved where it is');
    await page.click('nav a[data-tab="/users"]');
    await page.click('summary:text("Add or update a user")');
    const userForm = page.locator('form[aria-label="Add or update a user"]');
    await userForm.locator('input[name=name]').fill('console-user');
    await userForm.locator('input[name=password]').fill('secret');
    await userForm.locator('button').click();
    await userForm.locator('.form-status.unsupported, .form-status.ok').waitFor();
    const said = await userForm.locator('.form-status').textContent();
    assert.match(said, /Not supported by this broker \(405|User console-user saved/);

    step('log out: back to the login page, credentials gone');
    await page.click('button:text("Log out")');
    await page.locator('#login-user').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('warren.auth')), null);

    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
}

main().then(() => console.log('console test passed'), (e) => {
  console.error(e);
  process.exit(1);
});
