// GraphiQL in a real browser (contract section 2: "GraphiQL is served entirely by the binary").
// Headless Chromium loads <baseUrl>/graphql with every request to another host refused, waits for
// the editor, replaces the query, runs it and waits for the coupons in the result pane.
// Screenshot: /tmp/graphiql.png. Needs /usr/bin/chromium (Debian: `apt-get install -y chromium`);
// without it this FAILS.
//
//   node tests/js/graphiql.mjs http://127.0.0.1:8000
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { baseUrlFromArgs, oneLine, reporter } from './lib.mjs';

const base = baseUrlFromArgs('graphiql.mjs');
const pageUrl = `${base}/graphql`;
const serverHost = new URL(base).host; // host:port
const r = reporter('graphiql.mjs');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SCREENSHOT = '/tmp/graphiql.png';
const QUERY = '{ coupons(first: 2) { nodes { id name } } }';
const DEMO_COUPON = '신규 가입 쿠폰';
const TIMEOUT = 30_000;

console.log(`graphiql.mjs: GraphiQL at ${pageUrl} in ${CHROMIUM}, requests off ${serverHost} refused`);

if (!existsSync(CHROMIUM)) {
  r.fail('chromium is installed', `${CHROMIUM} not found: install it (Debian: apt-get install -y chromium) or set CHROMIUM_PATH`);
  r.finish();
}

const userDataDir = mkdtempSync(join(tmpdir(), 'couponql-graphiql-'));
let context;
let page;
const aborted = []; // requests to other hosts, refused
const failedAssets = []; // same-host requests answered >= 400 or failing
const pageErrors = [];
const consoleErrors = [];
const served = [];

try {
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 900 },
      timeout: TIMEOUT,
    });
  } catch (err) {
    r.fail('chromium starts', oneLine(err?.message ?? err, 500));
    throw null;
  }
  r.pass('chromium starts', `${CHROMIUM} ${context.browser()?.version() ?? ''}`.trim());

  // Everything not on the server's host:port is refused (and counted): the page must need nothing else.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.host === serverHost) return route.continue();
    if (url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
    aborted.push(route.request().url());
    return route.abort();
  });
  // WebSockets are not seen by route(): refuse any to another host here too.
  if (typeof context.routeWebSocket === 'function') {
    await context.routeWebSocket(/.*/, (ws) => {
      const url = new URL(ws.url());
      if (url.host === serverHost) return ws.connectToServer();
      aborted.push(ws.url());
      return ws.close();
    });
  }

  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => pageErrors.push(oneLine(err?.message ?? err, 200)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(oneLine(msg.text(), 200));
  });
  page.on('response', (res) => {
    const url = new URL(res.url());
    if (url.host !== serverHost) return;
    served.push(`${res.status()} ${url.pathname}`);
    if (res.status() >= 400 && !(url.pathname === '/graphql' && res.request().method() === 'POST')) {
      failedAssets.push(`${res.status()} ${res.request().method()} ${url.pathname}`);
    }
  });
  page.on('requestfailed', (req) => {
    const url = new URL(req.url());
    if (url.host === serverHost) failedAssets.push(`failed ${req.method()} ${url.pathname}: ${req.failure()?.errorText}`);
  });

  // 1. The page.
  let response;
  try {
    response = await page.goto(pageUrl, { waitUntil: 'load', timeout: TIMEOUT });
  } catch (err) {
    r.fail('GET /graphql loads the page', oneLine(err?.message ?? err));
    throw null;
  }
  const ctype = response?.headers()['content-type'] ?? '';
  r.check(response?.status() === 200 && ctype.startsWith('text/html'), 'GET /graphql answers 200 text/html', `HTTP ${response?.status()} ${ctype}`);
  const title = await page.title();
  r.check(title === 'couponql', 'the page title is "couponql"', JSON.stringify(title));

  // 2. GraphiQL renders.
  const editorSel = '.graphiql-query-editor';
  try {
    await page.locator(editorSel).first().waitFor({ state: 'visible', timeout: TIMEOUT });
    await page.locator(`${editorSel} .CodeMirror, ${editorSel} .monaco-editor, ${editorSel} [contenteditable="true"], ${editorSel} textarea`).first().waitFor({ state: 'attached', timeout: TIMEOUT });
    r.pass('the GraphiQL query editor renders');
  } catch (err) {
    r.fail('the GraphiQL query editor renders', oneLine(err?.message ?? err, 200));
    throw null;
  }

  // 3. Replace the query: click into the editor, select all, type the new text (as a person would);
  // then read the editor back, and fall back to CodeMirror's own API if typing did not take.
  const readEditor = () =>
    page.evaluate((sel) => {
      const cm = document.querySelector(`${sel} .CodeMirror`)?.CodeMirror;
      if (cm) return cm.getValue();
      const monaco = window.monaco?.editor?.getModels?.()[0];
      if (monaco) return monaco.getValue();
      return document.querySelector(sel)?.innerText ?? '';
    }, editorSel);
  const norm = (s) => s.replace(/\s+/g, ' ').trim();
  let method = 'keyboard';
  try {
    await page.locator(`${editorSel} .CodeMirror-code, ${editorSel} .view-lines, ${editorSel}`).first().click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(QUERY);
    await page.waitForTimeout(200);
  } catch (err) {
    r.info(`typing into the editor failed: ${oneLine(err?.message ?? err, 200)}`);
  }
  if (norm(await readEditor()) !== norm(QUERY)) {
    method = 'CodeMirror setValue';
    await page.evaluate(
      ({ sel, q }) => document.querySelector(`${sel} .CodeMirror`)?.CodeMirror?.setValue(q),
      { sel: editorSel, q: QUERY },
    );
  }
  const editorText = await readEditor();
  r.check(norm(editorText) === norm(QUERY), 'the query editor holds the new query', `via ${method}: ${oneLine(editorText, 120)}`);

  // 4. Run it and wait for the result.
  const runButton = page.locator('button.graphiql-execute-button, button[aria-label^="Execute query"]').first();
  try {
    await runButton.click({ timeout: 10_000 });
    r.pass('the execute button is clicked');
  } catch (err) {
    r.fail('the execute button is clicked', oneLine(err?.message ?? err, 200));
  }
  const readResult = () =>
    page.evaluate(() => {
      const pane = document.querySelector('.graphiql-response, .result-window');
      const cm = pane?.querySelector('.CodeMirror')?.CodeMirror;
      return cm ? cm.getValue() : (pane?.innerText ?? '');
    });
  let resultText = '';
  try {
    await page.waitForFunction(
      (demo) => {
        const pane = document.querySelector('.graphiql-response, .result-window');
        const cm = pane?.querySelector('.CodeMirror')?.CodeMirror;
        const text = cm ? cm.getValue() : (pane?.innerText ?? '');
        return text.includes('"coupons"') && (text.includes(demo) || text.includes('"id"'));
      },
      DEMO_COUPON,
      { timeout: TIMEOUT, polling: 200 },
    );
    resultText = await readResult();
    r.pass('the result pane shows the coupons', `${resultText.includes(DEMO_COUPON) ? `has "${DEMO_COUPON}"` : 'has "id"'}: ${oneLine(resultText, 160)}`);
  } catch (err) {
    resultText = await readResult().catch(() => '');
    r.fail('the result pane shows the coupons', `result pane: ${oneLine(resultText, 300) || '(empty)'}; ${oneLine(err?.message ?? err, 120)}`);
  }

} catch (err) {
  if (err !== null) r.fail('the browser check runs', oneLine(err?.stack ?? err?.message ?? err, 400));
} finally {
  if (page) {
    // Also when a step failed: the picture tells what the page looked like.
    try {
      await page.screenshot({ path: SCREENSHOT, fullPage: false, timeout: 10_000 });
      r.info(`screenshot: ${SCREENSHOT}`);
    } catch (err) {
      r.info(`screenshot failed: ${oneLine(err?.message ?? err)}`);
    }
  }
  if (context) {
    // 5. Nothing off the server, nothing missing on it.
    r.info(`served by the server: ${served.length ? served.join(', ') : '(nothing)'}`);
    r.check(aborted.length === 0, 'the page requests nothing from another host', aborted.length ? `${aborted.length} refused: ${aborted.slice(0, 5).join(' ')}` : '0 refused');
    r.check(failedAssets.length === 0, 'every same-server request succeeds', failedAssets.length ? failedAssets.slice(0, 5).join('; ') : 'none failed');
    if (pageErrors.length) r.info(`page errors: ${pageErrors.slice(0, 5).join(' | ')}`);
    if (consoleErrors.length) r.info(`console errors: ${consoleErrors.slice(0, 5).join(' | ')}`);
    await context.close().catch(() => {});
  }
  rmSync(userDataDir, { recursive: true, force: true });
}

r.finish();
