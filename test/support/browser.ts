import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium, which scripts/ensure-deps.sh installs. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless, and quiet: no sandbox (root), no GPU, and none of the connections it makes on its own. */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Starts headless Chromium with a fresh profile of its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}
