// Plays an MCP Apps host (io.modelcontextprotocol/ui, 2026-01-26) for Tagwarden's views, in the
// system Chromium, against the real binary:
//
//   node app_host.mjs TAGWARDEN_BINARY DATA_DIR SHOT_DIR [CHROMIUM]
//
// It starts `tagwarden serve --stdio --demo` (data in DATA_DIR), reads each tool's
// _meta.ui.resourceUri from tools/list and the view's HTML from resources/read, loads it in a
// sandboxed iframe (srcdoc) of a host page, answers ui/initialize, sends the tool's real result
// (ui/notifications/tool-result) and forwards the view's tools/call to the server. Every
// network request is blocked and listed. Screenshots go to SHOT_DIR/mcp-app-*.png. Prints one
// JSON line with what the views showed and what the host saw; the Rust test (tests/it/mcp_app.rs)
// asserts on it.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const [binary, dataDir, shotDir, executable = '/usr/bin/chromium'] = process.argv.slice(2);
if (!binary || !dataDir || !shotDir) {
  console.error('usage: node app_host.mjs TAGWARDEN_BINARY DATA_DIR SHOT_DIR [CHROMIUM]');
  process.exit(2);
}
const repo = fileURLToPath(new URL('../..', import.meta.url));

// ---- a minimal MCP client over stdio --------------------------------------------------------
// No Redis of the developer's environment: the views read this server's own scan.
const env = { ...process.env, TAGWARDEN_DATA_DIR: dataDir };
delete env.REDIS_URL;
delete env.TAGWARDEN_CACHE_PREFIX;
const server = spawn(binary, ['serve', '--stdio', '--demo'], {
  cwd: repo,
  env,
  stdio: ['pipe', 'pipe', 'ignore'],
});
const answers = new Map();
let nextId = 1;
createInterface({ input: server.stdout }).on('line', (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  const w = answers.get(m.id);
  if (w && m.method === undefined) { answers.delete(m.id); w(m); }
});
function rpc(method, params) {
  const id = nextId++;
  server.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), 60_000);
    answers.set(id, (m) => {
      clearTimeout(timer);
      if (m.error) reject(new Error(`${method}: ${JSON.stringify(m.error)}`)); else resolve(m.result);
    });
  });
}
const callTool = (name, args) => rpc('tools/call', { name, arguments: args });

// ---- the host page: a sandboxed iframe and the host side of the View protocol --------------
const HOST = `<!DOCTYPE html><html><head><title>test host</title></head>
<body style="margin:0;padding:12px;background:#eceff3">
<iframe id="view" sandbox="allow-scripts" title="Tagwarden view"
  style="width:820px;height:300px;border:1px solid #c5cbd3;border-radius:8px;background:#fff"></iframe>
<script>
window.hostLog = { received: [], sizes: [], initialized: 0, initializeParams: null };
const frame = document.getElementById('view');
const toView = (m) => frame.contentWindow.postMessage(m, '*');
window.addEventListener('message', async (event) => {
  if (event.source !== frame.contentWindow) return;
  const m = event.data;
  hostLog.received.push(m && m.method);
  if (!m || m.jsonrpc !== '2.0') return;
  if (m.method === 'ui/initialize') {
    hostLog.initializeParams = m.params;
    toView({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2026-01-26',
      hostInfo: { name: 'tagwarden-test-host', version: '1' }, hostCapabilities: { serverTools: {} },
      hostContext: { theme: 'light', displayMode: 'inline' } } });
  } else if (m.method === 'ui/notifications/initialized') {
    hostLog.initialized += 1;
  } else if (m.method === 'ui/notifications/size-changed') {
    hostLog.sizes.push(m.params);
    frame.style.height = Math.min(4000, Math.max(120, (m.params && m.params.height) || 0) + 4) + 'px';
  } else if (m.method === 'tools/call') {
    const result = await window.hostToolCall(m.params);
    toView({ jsonrpc: '2.0', id: m.id, result });
  } else if (m.id !== undefined) {
    toView({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'not offered by this host' } });
  }
});
window.loadView = (html) => new Promise((resolve) => {
  hostLog.initialized = 0;
  frame.onload = () => resolve();
  frame.srcdoc = html;
});
window.sendToView = toView;
</script></body></html>`;

const errors = [];
const blocked = [];
const toolCalls = [];
const out = { errors, blocked, tool_calls: toolCalls };

async function main() {
  await rpc('initialize', {
    protocolVersion: '2025-11-25',
    capabilities: { extensions: { 'io.modelcontextprotocol/ui': { mimeTypes: ['text/html;profile=mcp-app'] } } },
    clientInfo: { name: 'tagwarden-app-host-test', version: '1' },
  });
  server.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) + '\n');
  const tools = (await rpc('tools/list', {})).tools;
  const uriOf = (name) => tools.find((t) => t.name === name)?._meta?.ui?.resourceUri;
  const htmlOf = async (name) => {
    const read = await rpc('resources/read', { uri: uriOf(name) });
    const c = read.contents[0];
    if (c.mimeType !== 'text/html;profile=mcp-app') errors.push(`mimeType of ${c.uri}: ${c.mimeType}`);
    return c.text;
  };

  const browser = await chromium.launch({
    executablePath: executable,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  try {
    const context = await browser.newContext({ offline: true, viewport: { width: 860, height: 700 } });
    await context.route('**/*', (route) => {
      blocked.push(route.request().url());
      return route.abort();
    });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
    await page.exposeFunction('hostToolCall', async (params) => {
      toolCalls.push(params);
      return callTool(params.name, params.arguments);
    });
    await page.setContent(HOST);
    const viewFrame = () => page.frames().find((f) => f !== page.mainFrame());
    const frame = page.frameLocator('#view');

    // Loads a tool's view, plays the handshake and sends the tool's input and result.
    async function present(tool, args, result) {
      await page.evaluate((html) => window.loadView(html), await htmlOf(tool));
      await page.waitForFunction(() => window.hostLog.initialized > 0);
      await page.evaluate(([a, r]) => {
        window.sendToView({ jsonrpc: '2.0', method: 'ui/notifications/tool-input', params: { arguments: a } });
        window.sendToView({ jsonrpc: '2.0', method: 'ui/notifications/tool-result', params: r });
      }, [args, result]);
    }
    // The view lives in another process (a sandboxed frame): only what is inside the
    // viewport is painted, so the viewport is made as tall as the frame first.
    const shot = async (name) => {
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      await page.setViewportSize({ width: 860, height: Math.min(4000, height) });
      await page.waitForTimeout(100);
      await page.screenshot({ path: join(shotDir, name), fullPage: true });
    };

    // Compliance: the score the view shows is the result's.
    const checkArgs = { limit: 20 };
    const check = await callTool('check_tag_compliance', checkArgs);
    await present('check_tag_compliance', checkArgs, check);
    await frame.locator('#score').waitFor();
    const initParams = await page.evaluate(() => window.hostLog.initializeParams);
    out.compliance = {
      protocol_version: initParams && initParams.protocolVersion,
      result_score: check.structuredContent.score_pct,
      result_native_score: check.structuredContent.native_score_pct,
      score_text: (await frame.locator('#score').innerText()).trim(),
      score_data: await frame.locator('#score').getAttribute('data-score'),
      native_text: (await frame.locator('#native-score').innerText()).trim(),
      offenders: await frame.locator('tr.offender').count(),
      key_bars: await frame.locator('.bars').first().locator('.name').allInnerTexts(),
    };
    await shot('mcp-app-compliance.png');

    // Hostile strings in a result render as text: no element, no request.
    const hostile = JSON.parse(JSON.stringify(check));
    const payload = '<img src=x onerror="document.title=\'pwned\'">';
    for (const v of hostile.structuredContent.violations) v.resource_name = payload;
    hostile.structuredContent.by_key = { ['<b id="bold">Owner</b>']: 5 };
    await present('check_tag_compliance', checkArgs, hostile);
    await frame.locator('#score').waitFor();
    out.hostile = await viewFrame().evaluate((p) => ({
      shown_as_text: document.body.textContent.includes(p),
      key_as_text: document.body.textContent.includes('<b id="bold">Owner</b>'),
      images: document.querySelectorAll('img').length,
      bold: document.querySelectorAll('#bold').length,
      title: document.title,
    }), payload);

    // Cost gap and history: their headline figures.
    const gap = await callTool('get_cost_attribution_gap', {});
    await present('get_cost_attribution_gap', {}, gap);
    await frame.locator('#gap').waitFor();
    out.gap = {
      result_unattributable: gap.structuredContent.unattributable,
      gap_data: await frame.locator('#gap').getAttribute('data-gap'),
      gap_text: (await frame.locator('#gap').innerText()).trim(),
      result_gap_pct: gap.structuredContent.gap_pct,
    };
    await shot('mcp-app-cost-gap.png');
    await callTool('check_tag_compliance', { limit: 0, store_snapshot: true });
    const histArgs = { days_back: 60, group_by: 'week' };
    const hist = await callTool('get_violation_history', histArgs);
    await present('get_violation_history', histArgs, hist);
    await frame.locator('#score').waitFor();
    const points = hist.structuredContent.points;
    out.history = {
      points: points.length,
      result_last_score: points.length ? points[points.length - 1].score_pct : null,
      score_data: await frame.locator('#score').getAttribute('data-score'),
      polylines: await frame.locator('svg polyline').count(),
      direction: hist.structuredContent.trend.direction,
      shown_direction: (await frame.locator('#direction').innerText()).trim(),
    };
    await shot('mcp-app-history.png');

    // Review: propose tags, show the queue, approve one and deny another through the view.
    const proposed = await callTool('suggest_tags', {
      filter: { resource_types: ['ec2:instance'], regions: ['eu-west-1'], tags_missing: ['Owner'] },
      keys: ['Owner'], propose: true,
    });
    if (proposed.isError) errors.push(`suggest_tags: ${JSON.stringify(proposed.content)}`);
    const listArgs = { limit: 8 };
    const listed = await callTool('review_virtual_tags', listArgs);
    await present('review_virtual_tags', listArgs, listed);
    await frame.locator('tr.tag').first().waitFor();
    const review = {
      result_total: listed.structuredContent.total,
      shown_total: Number(await frame.locator('#total').getAttribute('data-total')),
      rows: await frame.locator('tr.tag').count(),
    };
    const approveButton = frame.locator('button.approve[data-id]').first();
    review.approved_id = Number(await approveButton.getAttribute('data-id'));
    const callsBefore = toolCalls.length;
    await approveButton.click();
    await frame.locator('#status', { hasText: 'Approved 1 tag' }).waitFor();
    review.total_after_approve = Number(await frame.locator('#total').getAttribute('data-total'));
    review.status_after_approve = (await frame.locator('#status').innerText()).trim();
    review.shows_approved_again = await frame.locator(`tr.tag[data-id="${review.approved_id}"]`).count();
    await shot('mcp-app-review.png');
    const denyButton = frame.locator('button.deny[data-id]').first();
    review.denied_id = Number(await denyButton.getAttribute('data-id'));
    await denyButton.click();
    await frame.locator('#status', { hasText: 'Denied 1 tag' }).waitFor();
    review.total_after_deny = Number(await frame.locator('#total').getAttribute('data-total'));
    review.view_calls = toolCalls.slice(callsBefore);
    out.review = review;

    const log = await page.evaluate(() => window.hostLog);
    out.size_changes = log.sizes.length;
    out.last_size = log.sizes[log.sizes.length - 1] || null;
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  errors.push(`host: ${e.stack || e}`);
} finally {
  server.stdin.end();
  server.kill();
}
console.log(JSON.stringify(out));
