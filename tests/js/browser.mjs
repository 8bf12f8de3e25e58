// What the browser checks (console_check.mjs, cluster_console_check.mjs) share: Debian's
// Chromium launched headless with no network beyond 127.0.0.1, and the run of a check: a
// deadline, one JSON line on stdout and exit 0, or the reason on stderr and exit 1.

import { chromium } from 'playwright-core';

// Chromium at `executablePath`, headless, every host name but 127.0.0.1 unresolvable.
// Playwright gives the browser a fresh, empty profile directory of its own.
export function launch(executablePath) {
    return chromium.launch({
        executablePath,
        headless: true,
        timeout: 60000,
        args: [
            '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
        ],
    });
}

// Runs `main` and closes `browser`: prints what `main` returns as one JSON line and exits 0, or
// prints `NAME: why` (followed by `progress()`) on stderr and exits 1, also when `main` is not
// done within `limitSeconds`.
export async function runCheck(name, browser, main, limitSeconds, progress = () => '') {
    const timer = setTimeout(() => {
        console.error(`${name}: not done within ${limitSeconds} s${progress()}`);
        process.exit(1);
    }, limitSeconds * 1000);
    let code = 0;
    try {
        console.log(JSON.stringify(await main()));
    } catch (e) {
        console.error(`${name}: ${e.message}${progress()}`);
        code = 1;
    } finally {
        clearTimeout(timer);
        await browser.close().catch(() => {});
    }
    process.exit(code);
}
