// Renders an HTML report offline in the system Chromium and screenshots it.
//
//   node render_report.mjs REPORT.html SHOT.png [CHROMIUM]
//
// Every request other than the file itself (and data: URIs) is blocked and listed in
// `blocked`: the report must be self-contained. Prints one JSON line:
// {errors, blocked, score_text, score_data, title, sections}.
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const [file, shot, executable = '/usr/bin/chromium'] = process.argv.slice(2);
if (!file || !shot) {
  console.error('usage: node render_report.mjs REPORT.html SHOT.png [CHROMIUM]');
  process.exit(2);
}
const url = pathToFileURL(resolve(file)).href;
const browser = await chromium.launch({
  executablePath: executable,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
});
const errors = [];
const blocked = [];
try {
  const context = await browser.newContext({ offline: true, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  page.on('requestfailed', (r) => { if (r.url() !== url) errors.push(`request failed: ${r.url()}`); });
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u === url || u.startsWith('data:')) return route.continue();
    blocked.push(u);
    return route.abort();
  });
  const response = await page.goto(url, { waitUntil: 'load' });
  if (!response || !response.ok()) errors.push(`load: ${response ? response.status() : 'no response'}`);
  const score = page.locator('#score');
  const score_text = (await score.count()) ? (await score.innerText()).trim() : null;
  const score_data = (await score.count()) ? await score.getAttribute('data-score') : null;
  const sections = await page.locator('section h2').allInnerTexts();
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ errors, blocked, score_text, score_data, title: await page.title(), sections }));
} finally {
  await browser.close();
}
