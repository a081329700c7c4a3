// A browser-test stand-in for TestReportCountsBrowserTests: one of each outcome that
// web/e2e/gotest-reporter.mjs reports.
import { test } from 'node:test';

test('passes', () => {});
test('is skipped', { skip: 'no Chromium here' }, () => {});
test('has subtests', async (t) => {
  await t.test('one passes', () => {});
  await t.test('one fails', () => {
    throw new Error('the page showed nothing');
  });
});
