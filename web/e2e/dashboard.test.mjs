// Browser test of the ops dashboard on a running `anyops dev` (ANYOPS_API_URL, started by
// scripts/browser-test.sh with the demo fleet): headless Debian Chromium, driven by
// playwright-core, opens /dashboard, is refused with the API's own message for a wrong token,
// signs in with the admin token, sees the demo fleet's 7 servers, starts a fleet-audit from
// the page and sees that run reach "completed", and flips the consoles kill switch off ("not
// accepting", and the public status agrees) and back on. Then a hardware failure injected into
// cloudsim (ANYOPS_CLOUDSIM_URL) shows as an impaired, highlighted server once a fleet-sync
// started from the page has read the cloud; and a fleet-sync held up by API throttling is
// cancelled with its Cancel button. The link `anyops dev` prints signs in with one click, the
// token in its fragment, which the page drops from the address bar; while the stack starts the
// page lists what /readyz says is still coming. A viewer sees the fleet, and the API's refusals of what
// a viewer may not do stay on the page past the next refresh. Where the API names a Temporal Web UI, the page links to
// it and each operation to its workflow there. Each cluster is drawn with its file server,
// backup, DRBD links and clients as the API lists them; a drill's report shows its figures and
// a timeline chart; an incident raised as Alertmanager raises one shows its replace workflow's
// live status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const apiURL = process.env.ANYOPS_API_URL;
const adminToken = process.env.ANYOPS_ADMIN_TOKEN;
const viewerToken = process.env.ANYOPS_VIEWER_TOKEN;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const cloudsimURL = process.env.ANYOPS_CLOUDSIM_URL;
const screenshotDir = process.env.ANYOPS_SCREENSHOT_DIR;
// The dashboard link `anyops dev` printed once ready, with the admin token in its fragment.
const signInURL = process.env.ANYOPS_SIGNIN_URL;
// The demo fleet of `anyops dev` (inventory/demo.go): 7 servers.
const demoServers = 7;
let browser;
let profile;

before(async () => {
  assert.ok(apiURL, 'ANYOPS_API_URL must name the running API (scripts/browser-test.sh sets it)');
  assert.ok(adminToken, 'ANYOPS_ADMIN_TOKEN must be the admin token of the running API');
  assert.ok(existsSync(executablePath), `no Chromium at ${executablePath}`);
  profile = mkdtempSync(join(tmpdir(), 'anyops-e2e-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function publicStatus() {
  const resp = await fetch(`${apiURL}/v1/status`, { cache: 'no-store' });
  assert.equal(resp.status, 200);
  return resp.json();
}

async function apiGet(path) {
  const resp = await fetch(`${apiURL}${path}`, { headers: { Authorization: `Bearer ${adminToken}` } });
  assert.equal(resp.status, 200, `GET ${path}`);
  return resp.json();
}

async function signIn(page, token) {
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('the dashboard shows the fleet, runs a fleet-audit and flips the kill switch', async (t) => {
  const page = await browser.newPage();
  // Stopping consoles asks for confirmation; the operator says yes.
  page.on('dialog', (d) => d.accept());
  await page.goto(`${apiURL}/`);
  assert.equal(new URL(page.url()).pathname, '/dashboard', '/ leads to the dashboard');

  // A wrong token: the API's JSON error message is shown and the sign-in form stays.
  await signIn(page, 'not-a-token');
  await page.getByRole('alert').filter({ hasText: 'invalid bearer token' }).waitFor({ timeout: 10_000 });
  assert.ok(await page.getByLabel('Bearer token').isVisible(), 'the sign-in form is shown again');

  await signIn(page, adminToken);
  const servers = page.locator('#servers tbody tr[data-server]');
  await page.waitForFunction((n) => document.querySelectorAll('#servers tbody tr[data-server]').length === n,
    demoServers, { timeout: 30_000 });
  assert.equal(await servers.count(), demoServers, 'the demo fleet has 7 servers');
  for (const id of ['zones', 'clusters', 'volumes', 'replicas']) {
    assert.ok(await page.locator(`#${id} tbody tr:not(.empty)`).count() > 0, `the ${id} table is filled`);
  }
  assert.match(await page.locator('#fleet-summary').innerText(), /7 servers/);
  // The error banner went away once the admin token worked.
  assert.equal(await page.getByRole('alert').isVisible(), false);

  // Start a fleet-audit from the page; follow the run it started to "completed".
  const runID = await startAndFinish(page, 'fleet-audit');
  const row = page.locator(`#operations tr[data-run-id="${runID}"]`);
  assert.match(await row.innerText(), /100%/, 'the finished run shows its whole progress');

  // Links to the Temporal Web UI, where dev tells the API its address.
  const info = await apiGet('/v1/dashboard');
  assert.equal(info.temporal_ui_url, process.env.ANYOPS_TEMPORAL_UI_URL, 'the API names the --temporal-ui-addr of dev');
  assert.equal(await page.getByRole('link', { name: 'Temporal UI' }).getAttribute('href'),
    `${info.temporal_ui_url}/namespaces/default/workflows`);
  assert.equal(await row.getByRole('link', { name: 'fleet-audit' }).getAttribute('href'),
    `${info.temporal_ui_url}/namespaces/default/workflows/fleet-audit/${runID}/history`);
  assert.equal(await page.getByRole('link', { name: 'Open a console' }).getAttribute('href'), '/console');

  if (screenshotDir) await page.screenshot({ path: join(screenshotDir, 'dashboard.png'), fullPage: true });

  // The kill switch: off, the page and the public status say so; then on again.
  const accepting = page.locator('#accepting');
  await accepting.filter({ hasText: /^accepting consoles$/ }).waitFor({ timeout: 10_000 });
  try {
    await page.getByRole('button', { name: 'Stop accepting consoles' }).click();
    await accepting.filter({ hasText: /^not accepting$/ }).waitFor({ timeout: 10_000 });
    assert.equal((await publicStatus()).accepting_consoles, false, 'the public status is off too');
    if (screenshotDir) await page.screenshot({ path: join(screenshotDir, 'dashboard-off.png') });
    await page.getByRole('button', { name: 'Accept consoles' }).click();
    await accepting.filter({ hasText: /^accepting consoles$/ }).waitFor({ timeout: 10_000 });
    assert.equal((await publicStatus()).accepting_consoles, true, 'the public status is on again');
  } catch (e) {
    // Consoles are left on for the tests that follow, however the checks above failed.
    await fetch(`${apiURL}/v1/admin/consoles/accepting`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ accepting: true }),
    });
    throw e;
  }
  await page.close();
});

test('the sign-in link dev prints signs in with one click, and the token leaves the address bar', async () => {
  assert.ok(signInURL, 'ANYOPS_SIGNIN_URL must be the dashboard link anyops dev printed (scripts/browser-test.sh sets it)');
  const link = new URL(signInURL);
  assert.equal(link.search, '', 'the token is never in a query string');
  assert.equal(new URLSearchParams(link.hash.slice(1)).get('token'), adminToken, 'the fragment carries the admin token');

  const page = await browser.newPage();
  const requested = [];
  page.on('request', (r) => requested.push(r.url()));
  await page.goto(signInURL);
  await page.waitForFunction((n) => document.querySelectorAll('#servers tbody tr[data-server]').length === n,
    demoServers, { timeout: 30_000 });
  assert.equal(await page.getByLabel('Bearer token').isVisible(), false, 'no sign-in form');
  assert.equal(await page.locator('#starting').isVisible(), false, 'dev is ready: nothing is still coming');
  assert.equal(new URL(page.url()).hash, '', 'the fragment is gone from the address bar');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('anyops.dashboard.token')), adminToken,
    'the token is kept as the sign-in form keeps it');
  for (const url of requested) assert.ok(!url.includes(adminToken), `a request carried the token: ${url}`);

  // A reload stays signed in, from the session, with no token in the address.
  await page.reload();
  await page.locator('#servers tbody tr[data-server]').first().waitFor({ timeout: 30_000 });
  assert.equal(new URL(page.url()).hash, '');
  await page.close();
});

test('while the stack starts, the dashboard lists what /readyz says is still coming', async () => {
  // dev is ready before the browser tests run, so the page is shown a /readyz answer of a
  // stack still starting, in the format the API gives (api/readyz_test.go proves that format);
  // everything else it reads is the running API's.
  const starting = {
    error: { code: 'unavailable', message: 'not ready: waiting for demo-fleet: building' },
    checks: { database: 'ok', temporal: 'ok', startup: 'waiting' },
    waiting: ['demo-fleet: building (DemoFleet 2/8 steps done; launch-instances: launching 7 instances)', 'console-host: after demo-fleet'],
  };
  const page = await browser.newPage();
  let ready = false;
  await page.route('**/readyz', (route) => (ready ? route.continue()
    : route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify(starting) })));
  await page.goto(`${apiURL}/dashboard`);
  await signIn(page, adminToken);
  const card = page.locator('#starting');
  await card.waitFor({ state: 'visible', timeout: 10_000 });
  assert.deepEqual(await card.locator('li').allInnerTexts(), starting.waiting);
  ready = true; // the real /readyz from here on: 200, and the card goes
  await card.waitFor({ state: 'hidden', timeout: 10_000 });
  await page.close();
});

// startAndFinish starts an operation of kind from the page and waits until the run it started
// (or joined) shows completed; it returns that run's id.
async function startAndFinish(page, kind) {
  const started = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith(`/v1/operations/${kind}`));
  await page.getByRole('button', { name: `Start ${kind}` }).click();
  const { run_id: runID } = await (await started).json();
  await page.locator(`#operations tr[data-run-id="${runID}"][data-state="completed"]`).waitFor({ timeout: 60_000 }).catch(async (e) => {
    throw new Error(`the ${kind} run ${runID} did not show completed; operations: ${await page.locator('#operations').innerText()}: ${e.message}`);
  });
  return runID;
}

test('a server the cloud reports impaired is highlighted after a fleet-sync', async () => {
  assert.ok(cloudsimURL, 'ANYOPS_CLOUDSIM_URL must name the cloudsim of the running stack');
  const web = (await apiGet('/v1/servers?role=web')).items;
  assert.ok(web.length > 0, 'the demo fleet has web servers');
  const victim = web[web.length - 1]; // a web server: consoles and storage are left alone
  const fault = await fetch(`${cloudsimURL}/_sim/faults`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'hardware-failure', instance_id: victim.instance_id }),
  });
  assert.equal(fault.status, 201, `cloudsim took the fault: ${await fault.text()}`);

  const page = await browser.newPage();
  await page.goto(`${apiURL}/dashboard`);
  await signIn(page, adminToken);
  const row = page.locator(`#servers tr[data-server="${victim.name}"]`);
  await row.waitFor({ timeout: 30_000 });
  // A fleet-sync already running when the fault went in may have read the cloud before it:
  // the page joins that run, so a second one may be needed.
  for (let attempt = 1; !(await row.getAttribute('class'))?.includes('impaired'); attempt++) {
    assert.ok(attempt <= 3, `${victim.name} is not shown impaired after ${attempt - 1} fleet-syncs: ${await row.innerText()}`);
    await startAndFinish(page, 'fleet-sync');
    await page.waitForTimeout(3500); // one refresh after the run completed
  }
  assert.match(await row.innerText(), /impaired/);
  assert.match(await page.locator('#fleet-summary').innerText(), /1 impaired/);
  if (screenshotDir) await page.screenshot({ path: join(screenshotDir, 'dashboard-impaired.png'), fullPage: true });
  await page.close();
});

test('a running operation is cancelled from the page', async () => {
  assert.ok(cloudsimURL, 'ANYOPS_CLOUDSIM_URL must name the cloudsim of the running stack');
  // Throttling every DescribeInstances keeps a fleet-sync retrying its first step: running
  // long enough to be cancelled.
  const resp = await fetch(`${cloudsimURL}/_sim/faults`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ type: 'throttle', action: 'DescribeInstances', count: 1_000_000 }),
  });
  const body = await resp.text();
  assert.equal(resp.status, 201, `cloudsim took the fault: ${body}`);
  const fault = JSON.parse(body);
  const page = await browser.newPage();
  page.on('dialog', (d) => d.accept()); // "Cancel operation …?"
  try {
    await page.goto(`${apiURL}/dashboard`);
    await signIn(page, adminToken);
    const started = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/v1/operations/fleet-sync'));
    await page.getByRole('button', { name: 'Start fleet-sync' }).click();
    const { run_id: runID } = await (await started).json();
    const row = page.locator(`#operations tr[data-run-id="${runID}"]`);
    await row.and(page.locator('[data-state="running"]')).waitFor({ timeout: 30_000 });
    await row.getByRole('button', { name: 'Cancel' }).click();
    await row.and(page.locator('[data-state="canceled"]')).waitFor({ timeout: 30_000 }).catch(async (e) => {
      throw new Error(`the fleet-sync run ${runID} did not show canceled: ${await row.innerText()}: ${e.message}`);
    });
    assert.equal(await row.getByRole('button', { name: 'Cancel' }).count(), 0, 'a closed operation has no cancel button');
  } finally {
    await fetch(`${cloudsimURL}/_sim/faults/${fault.id}`, { method: 'DELETE' });
    await page.close();
  }
});

test('a viewer sees the fleet and the API refusing what a viewer may not do', async () => {
  assert.ok(viewerToken, 'ANYOPS_VIEWER_TOKEN must be a viewer token of the running API');
  const page = await browser.newPage();
  page.on('dialog', (d) => d.accept());
  await page.goto(`${apiURL}/dashboard`);
  await signIn(page, viewerToken);
  await page.waitForFunction((n) => document.querySelectorAll('#servers tbody tr[data-server]').length === n,
    demoServers, { timeout: 30_000 });

  const alert = page.getByRole('alert');
  await page.getByRole('button', { name: 'Start fleet-audit' }).click();
  await alert.filter({ hasText: 'this needs the operator role; the token has viewer' }).waitFor({ timeout: 10_000 });
  // The refusal outlives the refresh that follows every action and the periodic one after it.
  await page.waitForTimeout(3500);
  assert.match(await alert.innerText(), /needs the operator role/);

  await page.getByRole('button', { name: 'Stop accepting consoles' }).click();
  await alert.filter({ hasText: 'this needs the admin role; the token has viewer' }).waitFor({ timeout: 10_000 });
  assert.equal((await publicStatus()).accepting_consoles, true, 'the refused kill switch changed nothing');

  await page.getByRole('button', { name: 'Sign out' }).click();
  assert.ok(await page.getByLabel('Bearer token').isVisible(), 'signed out: the token is asked for again');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the token is gone from the tab');
  await page.close();
});

test('each cluster is drawn: file server, backup, every DRBD link with its state and sync, the clients and their mounts', async () => {
  const [servers, replicas] = await Promise.all([apiGet('/v1/servers?cluster=live'), apiGet('/v1/replicas?cluster=live')]);
  const page = await browser.newPage();
  await page.goto(`${apiURL}/dashboard`);
  await signIn(page, adminToken);
  const picture = page.locator('figure.cluster-picture[data-cluster="live"]');
  await picture.waitFor({ timeout: 30_000 });
  const file = servers.items.find((s) => s.role === 'file');
  const backup = servers.items.find((s) => s.role === 'backup');
  assert.equal(await picture.locator(`[data-role="file"][data-host="${file.name}"]`).count(), 1, 'the file server is drawn');
  assert.equal(await picture.locator(`[data-role="backup"][data-host="${backup.name}"]`).count(), 1, 'its backup is drawn');
  assert.ok(replicas.items.length > 0, 'the demo fleet has DRBD resources');
  for (const r of replicas.items) {
    const link = picture.locator(`.drbd-link[data-resource="${r.name}"]`);
    assert.equal(await link.count(), 1, `the link of ${r.name} is drawn`);
    assert.equal(await link.getAttribute('data-connection'), r.connection_state);
    assert.match(await link.innerText(), new RegExp(`${r.primary_disk_state}/${r.secondary_disk_state}`));
    assert.match(await link.innerText(), new RegExp(`${r.sync_percent.toFixed(1)}%`));
  }
  // Every client of the cluster, each mounting the file service by its name.
  const clients = servers.items.filter((s) => ['web', 'console', 'task'].includes(s.role) && s.state !== 'terminated');
  assert.ok(clients.length > 0);
  for (const c of clients) {
    const box = picture.locator(`.client[data-host="${c.name}"]`);
    assert.equal(await box.count(), 1, `the client ${c.name} is drawn`);
    assert.match(await box.innerText(), new RegExp(`files\\.live\\.internal:/srv/home → ${file.name}`));
  }
  if (screenshotDir) await picture.screenshot({ path: join(screenshotDir, 'dashboard-cluster.png') });
  await page.close();
});

test('a drill shows its report: the figures against their goals and a timeline chart with the fault, the detection and the recovery', async () => {
  // A drill takes minutes on this stack (docs/drills.md), which the drill's own end-to-end test
  // (cmd/anyops TestDrillsEndToEnd) runs through the API; here the page is shown a drill's
  // GET /v1/drills answers — a report a real hot-backup drill printed — and everything else it
  // reads is the running API's.
  const report = JSON.parse(readFileSync(new URL('./testdata/hot-backup-report.json', import.meta.url), 'utf8'));
  const view = {
    id: 1, scenario: report.scenario, cluster: report.cluster, workflow_id: report.drill, run_id: 'r1',
    state: 'completed', speed: report.speed, created_at: report.origin, finished_at: report.origin, report,
  };
  const page = await browser.newPage();
  await page.route(/\/v1\/drills(\?.*)?$/, (route) => route.fulfill({ status: 200, contentType: 'application/json',
    body: JSON.stringify({ items: [{ ...view, report: undefined }], next_cursor: '' }) }));
  await page.route(/\/v1\/drills\/1$/, (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(view) }));
  await page.goto(`${apiURL}/dashboard`);
  await signIn(page, adminToken);
  const row = page.locator('#drills tr[data-drill="1"]');
  await row.waitFor({ timeout: 30_000 });
  assert.match(await row.innerText(), new RegExp(`${report.scenario}[\\s\\S]*completed[\\s\\S]*${Math.round(report.rto_seconds)} s[\\s\\S]*${report.winner}`));
  const card = page.locator('#drill-report');
  await card.waitFor({ state: 'visible', timeout: 10_000 });
  assert.equal(await card.locator('dd[data-key="rto_seconds"]').getAttribute('class'), report.goals.rto_seconds.met ? 'met' : 'missed');
  assert.match(await card.locator('dd[data-key="rto_seconds"]').innerText(), new RegExp(`${Math.round(report.rto_seconds)} s \\(goal ≤ 120`));
  assert.match(await card.locator('dd[data-key="lost_bytes"]').innerText(), /^0/);
  assert.equal(await card.locator('dd[data-key="winner"]').innerText(), report.winner);
  const chart = card.locator('svg.timeline-chart');
  assert.equal(await chart.getAttribute('data-events'), String(report.timeline.length));
  assert.equal(await chart.locator('circle.event').count(), report.timeline.length, 'every event is a dot');
  for (const mark of ['origin', 'detect', 'rto']) {
    assert.equal(await chart.locator(`line[data-mark="${mark}"]`).count(), 1, `the ${mark} is marked`);
  }
  assert.equal(await card.locator('#drill-timeline tbody tr').count(), report.timeline.length, 'the timeline table lists every event');
  if (screenshotDir) await card.screenshot({ path: join(screenshotDir, 'dashboard-drill.png') });
  await page.close();
});

// Last of the file: the alert starts a real replacement of a demo web server.
test('an incident shows its recovery workflow with its live status', async () => {
  const alertmanagerToken = process.env.ANYOPS_ALERTMANAGER_TOKEN;
  assert.ok(alertmanagerToken, 'ANYOPS_ALERTMANAGER_TOKEN must be the running API\'s Alertmanager token (scripts/browser-test.sh sets it)');
  const web = (await apiGet('/v1/servers?role=web')).items;
  const victim = web[web.length - 1]; // the server the impaired test failed in cloudsim
  const now = new Date().toISOString();
  const resp = await fetch(`${apiURL}/v1/alarms/alertmanager`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${alertmanagerToken}` },
    body: JSON.stringify({
      version: '4', status: 'firing', receiver: 'anyops', groupKey: '{}:{alertname="NodeDown"}',
      alerts: [{ status: 'firing', labels: { alertname: 'NodeDown', server: victim.name },
        annotations: { summary: `${victim.name} does not answer` }, startsAt: now, fingerprint: 'e2e-node-down' }],
    }),
  });
  assert.equal(resp.status, 200, `the intake took the alert: ${await resp.text()}`);
  const incident = (await apiGet(`/v1/incidents?server=${victim.name}`)).items[0];
  assert.ok(incident, `an incident is open on ${victim.name}`);
  assert.equal(incident.workflow_id, `replace/${victim.name}`, 'the rules send a web server to replace');

  const page = await browser.newPage();
  await page.goto(`${apiURL}/dashboard`);
  await signIn(page, adminToken);
  const row = page.locator(`#incidents tr[data-incident="${incident.id}"]`);
  await row.waitFor({ timeout: 30_000 });
  // The row follows the workflow: its state as the API describes it, and the Status query's
  // progress once the query has answered (a busy worker may not answer the first ones).
  await page.waitForFunction((id) => {
    const row = document.querySelector(`#incidents tr[data-incident="${id}"]`);
    return row?.dataset.workflowState && /\d+%/.test(row.innerText);
  }, incident.id, { timeout: 60_000 }).catch(async (e) => {
    throw new Error(`the incident's row shows no progress of its workflow: ${await row.innerText()}: ${e.message}`);
  });
  const view = await apiGet(`/v1/incidents/${incident.id}`);
  assert.ok(view.workflow, `the API describes the incident's workflow: ${view.workflow_error || ''}`);
  const text = await row.innerText();
  assert.match(text, new RegExp(`replace/${victim.name}`));
  assert.ok(['running', 'completed', 'failed', 'canceled', 'terminated', 'timed-out'].includes(await row.getAttribute('data-workflow-state')));
  assert.match(text, /\d+%/, 'the recovery\'s progress is shown');
  assert.equal(await row.getByRole('link', { name: `replace/${victim.name}` }).getAttribute('href'),
    `${process.env.ANYOPS_TEMPORAL_UI_URL}/namespaces/default/workflows/${encodeURIComponent(`replace/${victim.name}`)}/${incident.run_id}/history`);
  if (screenshotDir) await page.locator('#incidents').screenshot({ path: join(screenshotDir, 'dashboard-incidents.png') });
  await page.close();
});
