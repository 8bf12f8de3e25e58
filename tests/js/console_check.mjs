// The node's web console in headless Chromium (playwright-core driving Debian's chromium), run
// by tests/tests/console.rs against a node it started and filled:
//
//   node console_check.mjs CONFIG_JSON
//
// CONFIG_JSON: {"origin": "http://127.0.0.1:PORT", "token": "...", "broker": "NAME",
//   "queue": "Q", "depth": N, "dlq": "DLQ", "original": "orders", "ws": "ws://...",
//   "screenshot": "/path.png", "chromium": "/usr/bin/chromium"}
//
// It checks, as a person would see it: the login form without a token; the page with
// #token=...: the broker's name, the queue and its depth; Send then Browse shows the message;
// moving a dead letter back to its original destination; Purge empties the queue; a full-page
// screenshot. Then stompjs inside the browser, over the node's ws:// transport. Every request
// the browser makes is recorded, and any to another origin than the node's fails the run;
// Chromium also runs with every host name but 127.0.0.1 unresolvable.
// Prints one JSON line and exits 0, or prints why on stderr and exits 1.

import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, runCheck } from './browser.mjs';

const cfg = JSON.parse(process.argv[2]);
const WAIT = 15000;
const here = dirname(fileURLToPath(import.meta.url));
const stompBundle = join(here, 'node_modules', '@stomp', 'stompjs', 'bundles', 'stomp.umd.min.js');

const browser = await launch(cfg.chromium);
const requests = [];
const steps = [];
const step = (s) => steps.push(s);

async function main() {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    context.on('request', (r) => requests.push(r.url()));
    const page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('dialog', (d) => d.accept());

    // Without a token: the page loads, the API refuses, the login form shows.
    await page.goto(`${cfg.origin}/console`);
    if (!page.url().endsWith('/console/')) throw new Error(`/console went to ${page.url()}`);
    await page.locator('#login').waitFor({ state: 'visible', timeout: WAIT });
    step('login form without a token');
    // A wrong token is refused, the right one gets in.
    await page.fill('#token', 'not-the-token');
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('login-error').textContent.includes('refused'), null, { timeout: WAIT });
    await page.fill('#token', cfg.token);
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction((name) => document.getElementById('broker-title').textContent === name, cfg.broker, { timeout: WAIT });
    step('token entered in the form');

    // #token=... in the URL, in a fresh tab (no sessionStorage).
    const tab = await context.newPage();
    tab.on('dialog', (d) => d.accept());
    tab.on('pageerror', (e) => consoleErrors.push(String(e)));
    await tab.goto(`${cfg.origin}/console/#token=${encodeURIComponent(cfg.token)}`);
    await tab.waitForFunction((name) => document.getElementById('broker-title').textContent === name, cfg.broker, { timeout: WAIT });
    if (tab.url().includes('token')) throw new Error(`the token stayed in the URL: ${tab.url()}`);
    step('token from #token=');

    const row = (q) => `#queues tbody tr[data-key="${q}"]`;
    const depthIs = (q, n) => tab.waitForFunction(([sel, want]) => {
        const tr = document.querySelector(sel);
        return tr && tr.children[1].textContent === want;
    }, [row(q), new Intl.NumberFormat('en').format(n)], { timeout: WAIT });
    await depthIs(cfg.queue, cfg.depth);
    step(`queue ${cfg.queue} at depth ${cfg.depth}`);

    // Send, then Browse shows it.
    await tab.fill('#send-queue', cfg.queue);
    await tab.fill('#send-body', 'sent from the browser');
    await tab.fill('#send-headers', 'x-origin=console');
    await tab.click('#send-button');
    await tab.waitForFunction(() => document.getElementById('notice').textContent.startsWith('sent '), null, { timeout: WAIT });
    await depthIs(cfg.queue, cfg.depth + 1);
    await tab.click(`${row(cfg.queue)} button[data-action=browse]`);
    await tab.waitForFunction(() => document.getElementById('browse').textContent.includes('sent from the browser'), null, { timeout: WAIT });
    const browsed = await tab.locator('#browse tbody tr').count();
    if (browsed !== cfg.depth + 1) throw new Error(`browse shows ${browsed} messages, want ${cfg.depth + 1}`);
    step('send then browse');

    // A dead letter goes back to its original destination.
    await depthIs(cfg.dlq, 1);
    await tab.click(`${row(cfg.dlq)} button[data-action=browse]`);
    const move = tab.locator('#browse button[data-action=move]');
    await move.waitFor({ state: 'visible', timeout: WAIT });
    const label = await move.textContent();
    if (!label.includes(`/queue/${cfg.original}`)) throw new Error(`move button says '${label}'`);
    await move.click();
    await tab.waitForFunction(() => document.getElementById('notice').textContent.startsWith('moved '), null, { timeout: WAIT });
    await depthIs(cfg.dlq, 0);
    await depthIs(cfg.original, 1);
    step('dead letter moved back');

    // The larger chart of the queue, then the screenshot of the whole page.
    await tab.click(`${row(cfg.queue)} td.name`);
    await tab.locator('#queue-chart svg').first().waitFor({ state: 'visible', timeout: WAIT });
    await tab.screenshot({ path: cfg.screenshot, fullPage: true });
    const shot = statSync(cfg.screenshot).size;
    step('screenshot');

    // Purge empties it.
    await tab.click(`${row(cfg.queue)} button[data-action=purge]`);
    await depthIs(cfg.queue, 0);
    await tab.click(`${row(cfg.queue)} button[data-action=browse]`);
    await tab.waitForFunction((q) => document.getElementById('browse').textContent.includes(`${q} is empty`), cfg.queue, { timeout: WAIT });
    step('purge');

    // stompjs in the browser, over ws://.
    const blank = await context.newPage();
    await blank.setContent('<!doctype html><title>stompjs</title>');
    await blank.addScriptTag({ path: stompBundle });
    const viaBrowser = await blank.evaluate(async (url) => {
        const client = new StompJs.Client({ brokerURL: url, reconnectDelay: 0 });
        const got = await new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('no message within 10 s')), 10000);
            client.onConnect = () => {
                client.subscribe('/queue/browser.ws', (m) => { clearTimeout(timer); m.ack(); resolve(m.body); }, { ack: 'client' });
                client.publish({ destination: '/queue/browser.ws', body: 'hello from Chromium' });
            };
            client.onStompError = (f) => reject(new Error(f.headers.message));
            client.onWebSocketError = () => reject(new Error(`cannot open ${url}`));
            client.activate();
        });
        await client.deactivate();
        return got;
    }, cfg.ws);
    if (viaBrowser !== 'hello from Chromium') throw new Error(`browser stompjs got ${viaBrowser}`);
    step('stompjs in the browser');

    const allowed = [cfg.origin, 'about:blank', 'data:'];
    const outside = requests.filter((u) => !allowed.some((a) => u.startsWith(a)) && !u.startsWith(cfg.ws));
    if (outside.length) throw new Error(`requests outside the node: ${outside.join(', ')}`);
    // The browser logs refused calls (401 before the token, 404 from the durable
    // subscriptions probe) as errors; anything else is a fault of the page.
    const faults = consoleErrors.filter((e) => !/status of (401|404)/.test(e));
    if (faults.length) throw new Error(`page errors: ${faults.join(' | ')}`);
    await context.close();
    return { ok: true, steps, requests: requests.length, screenshot_bytes: shot };
}

await runCheck('console_check', browser, main, 120, () => ` (after: ${steps.join(', ') || 'nothing'})`);
