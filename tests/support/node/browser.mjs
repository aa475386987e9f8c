// Drives Debian's chromium (/usr/bin/chromium) with playwright-core for authgate's
// integration tests. No browser is downloaded; only loopback hosts are reachable.
//
// Input: JSON in env BROWSER_SCRIPT.
//
// Login mode (default):
//   {"start_url": "http://app.localhost:PORT/", "login": "alice", "kind": "oidc"|"github",
//    "expect_text": "alice@example.test", "screenshot_dir": "/tmp/shots", "name": "mcd-oidc",
//    "password": "any" (optional), "steps": [...] (optional)}
//   Opens start_url, runs the optional steps, waits for the IdP login form, fills `login`
//   (and `password` for oidc-provider's form), submits, clicks through oidc-provider's
//   consent page if it appears, waits to land on a URL whose host (host:port) equals
//   start_url's, then waits for the page body to contain expect_text.
//   Screenshots: <name>-1-idp-login.png, <name>-2-app.png (and <name>-fail.png on failure).
//   With "login": null the login form is not expected (an IdP session already exists).
//   "excerpt_len" (optional, default 500): how much of the final page's text to return.
//   Prints: RESULT {"final_url":"...","final_status":<status of the last page load>,
//   "body_excerpt":"...","cookies":[{"name":"...","domain":"...","path":"...","size":<bytes of
//   name and value>,"digest":"<16 hex digits of the value's SHA-256>"}],"recorded":{...}} and
//   exits 0. `cookies` is the browser's cookie jar (values left out: the digest tells whether
//   a value changed). "after_steps" (optional) run once the app's page is reached, before the
//   result is taken; `recorded` holds the jars their `record_cookies` steps saw.
//
// Steps (run after opening start_url, before the login form; each waits ≤ 20 s):
//   {"click": "<selector>"}            click an element (e.g. a "Sign in with ..." button)
//   {"fill": ["<selector>", "value"]}  type into a field
//   {"goto": "<url>"}                  navigate
//   {"wait_for_url": "<substring>"}    wait until the URL contains the substring
//   {"wait_for_text": "<text>"}        wait until the body contains the text
//   {"screenshot": "<suffix>"}         save <name>-<suffix>.png
//   {"record_cookies": "<label>"}      save the cookie jar as recorded.<label>
//
// Screenshot mode:
//   {"mode": "screenshot", "url": "...", "name": "signin-page", "screenshot_dir": "..."}
//   Opens url, saves <name>.png, prints RESULT {"status":<http status>,"title":"...",
//   "final_url":"...","body_excerpt":"..."} and exits 0.
//
// On any failure prints `FAIL <reason>` (stdout) plus a RESULT-like `ERROR {...}` line,
// saves <name>-fail.png when a page exists, and exits 1.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT = 20000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Loopback or *.localhost only. */
function allowedHost(hostname) {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function allowedUrl(u) {
  try {
    const url = new URL(u);
    if (['data:', 'blob:', 'about:'].includes(url.protocol)) return true;
    return (url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'ws:' || url.protocol === 'wss:')
      && allowedHost(url.hostname);
  } catch {
    return false;
  }
}

let script;
try {
  script = JSON.parse(process.env.BROWSER_SCRIPT || '');
} catch (err) {
  console.log(`FAIL BROWSER_SCRIPT is not valid JSON: ${err.message}`);
  process.exit(1);
}

const name = script.name || 'browser';
const dir = script.screenshot_dir || process.cwd();
fs.mkdirSync(dir, { recursive: true });
const shot = (suffix) => path.join(dir, suffix ? `${name}-${suffix}.png` : `${name}.png`);

let browser;
let context;
let page;
// Status of the last main-frame navigation (a page the user sees).
let lastStatus = null;
const recorded = {};

/** The browser's cookie jar, values left out (a digest tells whether one changed). */
async function jar() {
  return (await context.cookies()).map((c) => ({
    name: c.name,
    domain: c.domain,
    path: c.path,
    size: Buffer.byteLength(c.name) + Buffer.byteLength(c.value),
    digest: crypto.createHash('sha256').update(c.value).digest('hex').slice(0, 16),
  }));
}

async function bodyText() {
  try {
    return await page.locator('body').innerText({ timeout: 2000 });
  } catch {
    return '';
  }
}

async function fail(reason) {
  let finalUrl;
  let screenshot;
  if (page) {
    finalUrl = page.url();
    try {
      screenshot = shot('fail');
      await page.screenshot({ path: screenshot, fullPage: true, timeout: 5000 });
    } catch {
      screenshot = undefined;
    }
  }
  const excerpt = page ? (await bodyText()).slice(0, 500) : '';
  console.log(`FAIL ${reason}`);
  console.log(`ERROR ${JSON.stringify({ reason, final_url: finalUrl, body_excerpt: excerpt, screenshot })}`);
  console.error(`browser.mjs: ${reason}`);
  await browser?.close().catch(() => {});
  process.exit(1);
}

async function launch() {
  if (!fs.existsSync(CHROMIUM)) await fail(`chromium not found at ${CHROMIUM}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: TIMEOUT,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE *.localhost',
    ],
  });
  context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  // Second fence besides the resolver rules: abort anything not on loopback.
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (allowedUrl(u)) return route.continue();
    console.error(`browser.mjs: blocked ${u}`);
    return route.abort('blockedbyclient');
  });
  page = await context.newPage();
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) lastStatus = r.status();
  });
  page.setDefaultTimeout(TIMEOUT);
  page.setDefaultNavigationTimeout(TIMEOUT);
}

async function runSteps(steps = []) {
  for (const step of steps) {
    if (step.click) await page.locator(step.click).first().click();
    else if (step.fill) await page.locator(step.fill[0]).first().fill(String(step.fill[1]));
    else if (step.goto) await page.goto(step.goto);
    else if (step.wait_for_url) await page.waitForURL((u) => u.href.includes(step.wait_for_url));
    else if (step.wait_for_text) await page.locator('body').getByText(step.wait_for_text, { exact: false }).first().waitFor();
    else if (step.screenshot) await page.screenshot({ path: shot(step.screenshot), fullPage: true });
    else if (step.record_cookies) recorded[step.record_cookies] = await jar();
    else throw new Error(`unknown step ${JSON.stringify(step)}`);
  }
}

async function screenshotMode() {
  const response = await page.goto(script.url, { waitUntil: 'load' });
  await page.screenshot({ path: shot(), fullPage: true });
  const result = {
    status: response ? response.status() : null,
    title: await page.title(),
    final_url: page.url(),
    body_excerpt: (await bodyText()).slice(0, 500),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

async function loginMode() {
  const start = new URL(script.start_url);
  const kind = script.kind || 'oidc';
  const onStartHost = (u) => u.host === start.host;
  await page.goto(script.start_url, { waitUntil: 'load' });
  await runSteps(script.steps);

  if (script.login !== null && script.login !== undefined) {
    const loginField = kind === 'github' ? page.locator('#login') : page.locator('input[name="login"]');
    try {
      await loginField.waitFor({ state: 'visible' });
    } catch {
      throw new Error(`IdP login form did not appear (at ${page.url()})`);
    }
    await page.screenshot({ path: shot('1-idp-login'), fullPage: true });
    await loginField.fill(String(script.login));
    if (kind === 'github') {
      await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login/oauth/authorize')), page.locator('#authorize').click()]);
    } else {
      const password = page.locator('input[name="password"]');
      if (await password.count()) await password.fill(script.password || 'any-password');
      await page.locator('form button[type="submit"]').first().click();
      // oidc-provider may show its consent page before going back to the client.
      const consent = page.locator('input[name="prompt"][value="consent"]');
      const outcome = await Promise.race([
        page.waitForURL(onStartHost).then(() => 'app'),
        consent.waitFor({ state: 'attached' }).then(() => 'consent'),
      ]);
      if (outcome === 'consent') await page.locator('form button[type="submit"]').first().click();
    }
  }

  try {
    await page.waitForURL(onStartHost);
  } catch {
    throw new Error(`did not come back to ${start.host} (at ${page.url()})`);
  }
  if (script.expect_text) {
    try {
      await page.waitForFunction(
        (t) => document.readyState !== 'loading' && document.body && document.body.innerText.includes(t),
        script.expect_text,
        { timeout: TIMEOUT },
      );
    } catch {
      throw new Error(`page body does not contain ${JSON.stringify(script.expect_text)} (at ${page.url()})`);
    }
  } else {
    await page.waitForLoadState('load');
  }
  if (!onStartHost(new URL(page.url()))) throw new Error(`left ${start.host} again (at ${page.url()})`);
  await page.screenshot({ path: shot('2-app'), fullPage: true });
  await runSteps(script.after_steps);
  const cookies = await jar();
  const result = {
    final_url: page.url(),
    final_status: lastStatus,
    body_excerpt: (await bodyText()).slice(0, script.excerpt_len || 500),
    cookies,
    recorded,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

const watchdog = setTimeout(() => fail('overall time limit (90 s) exceeded'), 90000);
try {
  await launch();
  if (script.mode === 'screenshot') await screenshotMode();
  else await loginMode();
} catch (err) {
  await fail(err.message.split('\n')[0]);
}
clearTimeout(watchdog);
await browser.close();
process.exit(0);
