// The page of `mqctl console NAME` in headless Chromium, run by tests/tests/cli_console.rs:
//
//   node cluster_console_check.mjs CONFIG_JSON
//
// CONFIG_JSON: {"url": "http://127.0.0.1:PORT/", "cluster": "NAME", "nodes": ["node1", ...],
//   "links": N, "queue": "Q", "depths": {"node1": 5, ...}, "total": T,
//   "screenshot": "/path.png", "chromium": "/usr/bin/chromium"}
//
// Checks that the page shows every node with its role, draws every broker and every link (all
// up), and shows the queue on each node with its total; that the browser asked nothing of
// any other origin (and every host name but 127.0.0.1 is unresolvable); takes a screenshot.
// Prints one JSON line and exits 0, or prints why on stderr and exits 1.

import { statSync } from 'node:fs';
import { launch, runCheck } from './browser.mjs';

const cfg = JSON.parse(process.argv[2]);
const WAIT = 20000;
const origin = new URL(cfg.url).origin;
const browser = await launch(cfg.chromium);
const requests = [];
const errors = [];

async function main() {
    const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
    context.on('request', (r) => requests.push(r.url()));
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(cfg.url);
    await page.waitForFunction((name) => document.getElementById('cluster').textContent === name, cfg.cluster, { timeout: WAIT });
    for (const n of cfg.nodes) {
        await page.locator(`#nodes tr[data-node="${n}"] .badge.alive`).waitFor({ timeout: WAIT });
    }
    const roles = await page.$$eval('#nodes tbody tr', (rows) => rows.map((r) => r.children[2].textContent));
    if (roles.length !== cfg.nodes.length || roles.some((r) => !['master', 'standalone'].includes(r)))
        throw new Error(`roles ${roles.join(',')}`);
    // Every broker drawn, every link drawn and up.
    await page.waitForFunction((n) => document.querySelectorAll('#graph g.broker[data-state=up]').length === n, cfg.nodes.length, { timeout: WAIT });
    await page.waitForFunction((n) => document.querySelectorAll('#graph line.link[data-state=up]').length === n, cfg.links, { timeout: WAIT });
    // The queue on each node, and its total.
    await page.waitForFunction(([q, total]) => {
        const tr = document.querySelector(`#queues tbody tr[data-queue="${q}"]`);
        return tr && tr.querySelector('td.total').textContent === String(total);
    }, [cfg.queue, cfg.total], { timeout: WAIT });
    const depths = await page.$$eval(`#queues tbody tr[data-queue="${cfg.queue}"] td[data-node]`,
        (tds) => Object.fromEntries(tds.map((td) => [td.dataset.node, td.textContent])));
    for (const [n, d] of Object.entries(cfg.depths)) {
        if (depths[n] !== String(d)) throw new Error(`depth on ${n}: ${depths[n]}, want ${d}`);
    }
    await page.screenshot({ path: cfg.screenshot, fullPage: true });
    const outside = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'));
    if (outside.length) throw new Error(`requests outside mqctl: ${outside.join(', ')}`);
    if (errors.length) throw new Error(`page errors: ${errors.join(' | ')}`);
    await context.close();
    return { ok: true, requests: requests.length, depths, screenshot_bytes: statSync(cfg.screenshot).size };
}

await runCheck('cluster_console_check', browser, main, 90);
