// Drives the web console (/ui) of a running `tagwarden serve --http` in the system Chromium.
//
//   node console.mjs PLAN.json
//
// PLAN: {mode: "main" | "xss", base, approver, viewer, ids: [pending ids to approve],
//        forged_id, artifacts, chromium, evil_id}
// Prints one JSON line with what it saw; the Rust test (tests/it/console.rs) judges it.
// Every request that leaves the server is blocked and listed in `blocked`.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = { errors: [], blocked: [], dialogs: [] };
const browser = await chromium.launch({
  executablePath: plan.chromium || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
});

async function context(options = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  await ctx.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(plan.base) || u.startsWith('data:')) return route.continue();
    out.blocked.push(u);
    return route.abort();
  });
  return ctx;
}

function watch(page, label) {
  page.on('console', (m) => { if (m.type() === 'error') out.errors.push(`${label} console: ${m.text()}`); });
  page.on('pageerror', (e) => out.errors.push(`${label} page: ${e.message}`));
  page.on('dialog', async (d) => { out.dialogs.push(`${label}: ${d.message()}`); await d.dismiss(); });
}

async function login(ctx, token, label) {
  const page = await ctx.newPage();
  watch(page, label);
  await page.goto(`${plan.base}/ui`);
  out[`${label}_login_url`] = new URL(page.url()).pathname;
  await page.fill('#token', token);
  await Promise.all([page.waitForNavigation(), page.click('#login')]);
  out[`${label}_after_login`] = new URL(page.url()).pathname;
  return page;
}

async function text(page, selector) {
  const l = page.locator(selector);
  return (await l.count()) ? (await l.first().innerText()).trim() : null;
}

async function attr(page, selector, name) {
  const l = page.locator(selector);
  return (await l.count()) ? await l.first().getAttribute(name) : null;
}

async function csrfOf(page) {
  return attr(page, 'input[name=csrf]', 'value');
}

async function post(ctx, path, form, headers = {}) {
  const r = await ctx.request.post(`${plan.base}${path}`, { form, headers, maxRedirects: 0 });
  return r.status();
}

try {
  if (plan.mode === 'main') {
    // An approver: overview, queue, approve two tags, overview again.
    const a = await context();
    const page = await login(a, plan.approver, 'approver');
    const shot = await page.goto(`${plan.base}/ui`);
    out.csp = shot.headers()['content-security-policy'] || null;
    out.nosniff = shot.headers()['x-content-type-options'] || null;
    out.score_before = await attr(page, '#score', 'data-score');
    out.score_before_text = await text(page, '#score');
    out.native_before = await attr(page, '#native-score', 'data-score');
    out.gap_before_text = await text(page, '#gap-before');
    out.gap_after_text = await text(page, '#gap-after');
    out.key_rows = await page.locator('tr.key-row').count();
    out.team_rows = await page.locator('tr.team-row').count();
    out.offender_rows = await page.locator('tr.offender').count();
    await page.screenshot({ path: join(plan.artifacts, 'console-overview.png'), fullPage: true });

    await page.goto(`${plan.base}/ui/queue`);
    out.queue_total_before = await attr(page, '#pending-total', 'data-total');
    out.queue_ids = await page.locator('tr.pending').evaluateAll((rows) => rows.map((r) => Number(r.dataset.id)));
    out.approver_buttons = await page.locator('button.approve').count();
    await page.screenshot({ path: join(plan.artifacts, 'console-queue.png'), fullPage: true });
    // The select-all convenience (JS) ticks every box; then keep only the two asked for.
    await page.check('#select-all');
    out.select_all_ticked = await page.locator('input.pick:checked').count();
    await page.uncheck('#select-all');
    for (const id of plan.ids) await page.check(`input.pick[value="${id}"]`);
    await page.fill('#reason', 'confirmed in the console test');
    await Promise.all([page.waitForNavigation(), page.click('#approve-selected')]);
    out.decided_text = await text(page, '#decided');
    out.queue_total_after = await attr(page, '#pending-total', 'data-total');
    await page.goto(`${plan.base}/ui`);
    out.score_after = await attr(page, '#score', 'data-score');
    await page.screenshot({ path: join(plan.artifacts, 'console-overview-after.png'), fullPage: true });

    // Forged writes with the approver's own cookie: no CSRF token; a foreign Origin.
    const csrf = await csrfOf(page);
    out.approver_no_csrf = await post(a, '/ui/queue', { action: 'approve', id: String(plan.forged_id), reason: 'forged request' });
    out.approver_foreign_origin = await post(a, '/ui/queue',
      { action: 'approve', id: String(plan.forged_id), reason: 'forged request', csrf },
      { Origin: 'http://evil.example' });
    out.approver_wrong_csrf = await post(a, '/ui/queue', { action: 'approve', id: String(plan.forged_id), reason: 'forged request', csrf: 'x'.repeat(64) });

    // A viewer: no approve button; a POST with the viewer's own valid CSRF token is refused.
    const v = await context();
    const vp = await login(v, plan.viewer, 'viewer');
    await vp.goto(`${plan.base}/ui/queue`);
    out.viewer_role = await attr(vp, '#who', 'data-role');
    out.viewer_buttons = await vp.locator('button.approve, button.deny, input.pick').count();
    out.viewer_read_only = await text(vp, '#read-only');
    out.viewer_rows = await vp.locator('tr.pending').count();
    const vcsrf = await csrfOf(vp);
    out.viewer_has_csrf = Boolean(vcsrf);
    out.viewer_post = await post(v, '/ui/queue', { action: 'approve', id: String(plan.forged_id), reason: 'forged by a viewer', csrf: vcsrf });
    out.viewer_post_one = await post(v, '/ui/queue', { one: `approve:${plan.forged_id}`, reason: 'forged by a viewer', csrf: vcsrf });
    out.viewer_no_csrf = await post(v, '/ui/queue', { action: 'approve', id: String(plan.forged_id), reason: 'forged by a viewer' });
    // Logging out ends the session: the next page asks to log in again.
    await Promise.all([vp.waitForNavigation(), vp.click('header form button')]);
    await vp.goto(`${plan.base}/ui/queue`);
    out.viewer_after_logout = new URL(vp.url()).pathname;

    // JavaScript disabled: logging in and every page read work with forms and links alone.
    const n = await context({ javaScriptEnabled: false });
    const np = await login(n, plan.viewer, 'nojs');
    out.nojs_score = await attr(np, '#score', 'data-score');
    const pages = {};
    for (const path of ['/ui', '/ui/resources', '/ui/resources?key=CostCenter', '/ui/queue', '/ui/rules', '/ui/history', '/ui/costs', '/ui/costs?group=account']) {
      const r = await np.goto(`${plan.base}${path}`);
      pages[path] = { status: r.status(), h1: await text(np, 'h1'), errors: await np.locator('section.error').count() };
    }
    out.nojs_pages = pages;
    await np.goto(`${plan.base}/ui/resources`);
    out.nojs_violation_rows = await np.locator('tr.violation').count();
    const first = np.locator('tr.violation a').first();
    if (await first.count()) {
      await Promise.all([np.waitForNavigation(), first.click()]);
      out.nojs_resource = { path: new URL(np.url()).pathname, native: await np.locator('#native-tags tr').count(), effective: await np.locator('#effective-tags tr').count() };
    }
    await np.goto(`${plan.base}/ui/queue`);
    out.nojs_queue_rows = await np.locator('tr.pending').count();
  } else if (plan.mode === 'xss') {
    const a = await context();
    const page = await login(a, plan.approver, 'xss');
    const seen = {};
    for (const path of ['/ui', '/ui/resources', `/ui/resource?id=${encodeURIComponent(plan.evil_id)}`, '/ui/queue']) {
      const r = await page.goto(`${plan.base}${path}`);
      const body = await page.locator('body').innerText();
      seen[path] = {
        status: r.status(),
        literal: body.includes('<img src=x onerror=alert(1)>'),
        script_literal: body.includes('<script>window.__pwned=1</script>'),
        injected_imgs: await page.locator('img').count(),
        injected_scripts: await page.locator('script:not([nonce])').count(),
        pwned: await page.evaluate(() => window.__pwned === 1),
      };
      if (path.startsWith('/ui/resource?')) {
        await page.screenshot({ path: join(plan.artifacts, 'console-xss.png'), fullPage: true });
      }
    }
    out.seen = seen;
  }
} catch (e) {
  out.errors.push(`driver: ${e.stack || e}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
