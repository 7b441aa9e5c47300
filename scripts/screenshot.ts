// Makes the README's picture of the HTML report: the demo's push history on a throwaway registry, a real
// clean with garbage collection on the host (the docker stand-in), and the page it writes, rendered by
// headless Chromium into docs/report.png.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launchChromium } from '../test/support/browser.js';
import { installDockerStandIn } from '../test/support/docker-stand-in.js';
import { startRegistry } from '../test/support/registry.js';
import { demoPolicy, fillRegistry, History } from './demo-history.js';
import { stopOnInterrupt } from './interrupt.js';
import { PROJECT_ROOT, runCli } from './run-cli.js';

const OUTPUT = join(PROJECT_ROOT, 'docs', 'report.png');
/** The repository whose decisions the picture shows opened. */
const OPENED = 'web/frontend';

async function main(): Promise<void> {
  const reg = await startRegistry();
  const undoInterrupt = stopOnInterrupt(reg);
  const scratch = await mkdtemp(join(tmpdir(), 'registry-janitor-screenshot-'));
  const docker = await installDockerStandIn(reg);
  try {
    await fillRegistry(new History(reg, Date.now()), () => undefined);
    const page = join(scratch, 'report.html');
    const cleaned = await runCli(
      [
        'clean',
        ...demoPolicy(reg),
        '--gc',
        'local',
        '--lock-file',
        join(scratch, 'lock'),
        '--log-dir',
        join(scratch, 'logs'),
        '--yes',
        '--quiet',
        '--html',
        page,
      ],
      { env: docker.env },
    );
    if (cleaned.code !== 0) throw new Error(`clean exited ${cleaned.code}: ${cleaned.stderr.trim()}`);

    const browser = await launchChromium();
    try {
      const tab = await browser.newPage({ viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1 });
      await tab.goto(pathToFileURL(page).href, { waitUntil: 'load' });
      await tab.locator(`details.repository[data-repository="${OPENED}"] > summary`).click();
      await mkdir(join(PROJECT_ROOT, 'docs'), { recursive: true });
      await tab.screenshot({ path: OUTPUT, fullPage: true });
    } finally {
      await browser.close();
    }
    process.stdout.write(`wrote ${OUTPUT}\n`);
  } finally {
    await docker.close();
    undoInterrupt();
    await reg.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `screenshot failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
