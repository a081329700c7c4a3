// Browser test of the console page: headless Debian Chromium, driven by playwright-core,
// opens /console?command=python3 on a running stack (ANYOPS_API_URL, started by
// scripts/browser-test.sh), types print(6*7) and sees 42 computed by python3 in a real
// sandbox; after a reload the page re-attaches to the same console and the earlier output is
// there again (sandboxd's scrollback), without a new console being created.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const apiURL = process.env.ANYOPS_API_URL;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
let browser;
let profile;

before(async () => {
  assert.ok(apiURL, 'ANYOPS_API_URL must name the running API (scripts/browser-test.sh sets it)');
  assert.ok(existsSync(executablePath), `no Chromium at ${executablePath}`);
  profile = mkdtempSync(join(tmpdir(), 'anyops-e2e-chromium-'));
  // A persistent context on a fresh profile dir is how playwright takes --user-data-dir.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

// terminalText is what the terminal shows: xterm.js renders rows as DOM text.
async function terminalText(page) {
  return page.locator('.xterm-rows').innerText();
}

async function waitForText(page, pattern, what) {
  await page.waitForFunction(
    (src) => new RegExp(src, 'm').test(document.querySelector('.xterm-rows')?.innerText ?? ''),
    pattern.source, { timeout: 60_000 },
  ).catch(async (e) => {
    throw new Error(`${what}: terminal shows ${JSON.stringify(await terminalText(page))}: ${e.message}`);
  });
}

test('python3 console computes 6*7 and keeps its output across a reload', async () => {
  const page = await browser.newPage();
  const created = [];
  page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/v1/consoles')) created.push(r.url()); });
  await page.goto(`${apiURL}/console?command=python3`);
  await waitForText(page, /^>>>\s*$/, 'the python3 prompt');
  const id = await page.evaluate(() => document.body.dataset.consoleId);
  assert.ok(id, 'the page names its console');

  await page.locator('.xterm-helper-textarea').focus();
  await page.keyboard.type('print(6*7)\n');
  // 42 on a line of its own is python's answer: the echoed input is "print(6*7)".
  await waitForText(page, /^42\s*$/, 'the answer 42');

  await page.reload();
  await waitForText(page, /^42\s*$/, 'the answer 42 after the reload (scrollback)');
  assert.equal(await page.evaluate(() => document.body.dataset.consoleId), id, 'the reload re-attached to the same console');
  assert.equal(created.length, 1, 'exactly one console was created');

  // The re-attached terminal still works.
  await page.locator('.xterm-helper-textarea').focus();
  await page.keyboard.type('print(7*6+1)\n');
  await waitForText(page, /^43\s*$/, 'the answer 43 after the reload');
  await page.close();
});

// setAccepting flips the operator's kill switch (the stack's admin token is ANYOPS_ADMIN_TOKEN).
async function setAccepting(accepting) {
  const resp = await fetch(`${apiURL}/v1/admin/consoles/accepting`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${process.env.ANYOPS_ADMIN_TOKEN}` },
    body: JSON.stringify({ accepting }),
  });
  assert.equal(resp.status, 200, `kill switch answered ${resp.status}`);
}

test('the embed shows the launch button only while consoles are accepted', async () => {
  assert.ok(process.env.ANYOPS_ADMIN_TOKEN, 'ANYOPS_ADMIN_TOKEN must be set');
  const page = await browser.newPage();
  const load = async () => {
    const status = page.waitForResponse((r) => r.url().endsWith('/v1/status'));
    await page.goto(`${apiURL}/embed/demo.html`);
    return (await status).json();
  };
  const button = page.getByRole('button', { name: 'Launch interactive shell' });

  await setAccepting(false);
  try {
    assert.equal((await load()).accepting_consoles, false);
    await page.waitForTimeout(200); // the snippet acts on the answer right after it arrives
    assert.equal(await button.count(), 0, 'no button while consoles are switched off');
  } finally {
    await setAccepting(true);
  }
  // Browsers may cache the status for its max-age (5s), as python.org's visitors would.
  await page.waitForTimeout(5500);
  assert.equal((await load()).accepting_consoles, true);
  await button.waitFor({ timeout: 30_000 });
  await button.click();
  const frame = page.frameLocator('iframe[title="Interactive shell"]');
  await frame.locator('.xterm-rows').filter({ hasText: '>>>' }).waitFor({ timeout: 60_000 });
  await page.close();
});
