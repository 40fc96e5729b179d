/**
 * Real headless Chromium for browser tests: Debian's `chromium` (installed by `.ci/run`)
 * driven by `playwright-core`, which downloads no browser. A page's JavaScript errors and
 * failed requests are collected so a test can count them as failures.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Where Debian puts Chromium. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Thrown when Chromium is not installed. */
export class ChromiumMissing extends Error {
  constructor() {
    super(`Chromium is not installed at ${CHROMIUM_PATH} (Debian: apt-get install chromium; .ci/run installs it)`);
    this.name = 'ChromiumMissing';
  }
}

/** Starts headless Chromium; close it with `browser.close()`. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw new ChromiumMissing();
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}

/** A page with its JavaScript errors, console errors and failed requests collected. */
export interface WatchedPage {
  readonly page: Page;
  /** Uncaught exceptions and `console.error` lines, in order. */
  readonly errors: string[];
  /** Requests that failed or answered ≥ 400, as `METHOD url (reason)`. */
  readonly failedRequests: string[];
}

/**
 * Opens a new page that records its errors. With `offline`, every request that would leave
 * the machine (anything but `file:`, `data:`, `blob:` and 127.0.0.1/localhost) is aborted
 * and recorded, so a test proves a page needs no network.
 */
export async function watchedPage(browser: Browser, options: { readonly offline?: boolean } = {}): Promise<WatchedPage> {
  const page = await browser.newPage();
  const errors: string[] = [];
  const failedRequests: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console.error: ${message.text()}`);
  });
  page.on('requestfailed', (request) =>
    failedRequests.push(`${request.method()} ${request.url()} (${request.failure()?.errorText ?? 'failed'})`),
  );
  page.on('response', (response) => {
    if (response.status() >= 400) failedRequests.push(`${response.request().method()} ${response.url()} (${response.status()})`);
  });
  if (options.offline === true) {
    await page.route('**/*', async (route) => {
      const url = new URL(route.request().url());
      const local = ['file:', 'data:', 'blob:'].includes(url.protocol) || ['127.0.0.1', 'localhost'].includes(url.hostname);
      if (local) await route.continue();
      else await route.abort('internetdisconnected');
    });
  }
  return { page, errors, failedRequests };
}
