import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lambda/cleanup.js';
import type { Plan } from '../../lambda/domain/plan.js';
import { formatBytes } from '../../lambda/report/format.js';
import { runCli } from '../cli-runner.js';
import { launchChromium } from '../support/browser.js';
import { type DockerStandIn, installDockerStandIn } from '../support/docker-stand-in.js';
import { pushImage, randomGzipBlob } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { backdate, blobSizes } from '../support/storage.js';

const KiB = 1024;
/** A keep-tag pattern that is also markup: the planner's reasons carry it to the page. */
const HOSTILE = '^mirror$|<img src=x onerror=window.pwned=1>';
const total = (sizes: Map<string, number>) => [...sizes.values()].reduce((sum, size) => sum + size, 0);
const exact = (bytes: number) => `${bytes.toLocaleString('en-US')} bytes`;
/** The text as the page shows it, laid out: what a person reads, not the DOM's text. */
// biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator, whose innerText is the rendered text
const shown = (locator: Locator) => locator.innerText();

describe('the HTML report of a clean, rendered in Chromium', () => {
  let reg: TestRegistry;
  let docker: DockerStandIn;
  let browser: Browser;
  let scratch: string;
  let tab: Page;
  let plan: Plan;
  let report: RunReport;
  let before: number;
  let after: number;
  const requested: string[] = [];

  beforeAll(async () => {
    // Prepare: web/app keeps latest and loses v1 and an untagged build; api/server keeps 1.0 and mirror.
    reg = await startRegistry();
    docker = await installDockerStandIn(reg);
    scratch = await mkdtemp(join(tmpdir(), 'janitor-page-'));
    browser = await launchChromium();
    const base = randomGzipBlob(64 * KiB);
    const v1 = await pushImage(reg, 'web/app', 'v1', { layers: [base, randomGzipBlob(20 * KiB)] });
    await backdate(reg, 'web/app', v1.digest, 20, 'v1');
    const build = await pushImage(reg, 'web/app', 'latest', { layers: [base, randomGzipBlob(12 * KiB)] });
    await backdate(reg, 'web/app', build.digest, 10, 'latest');
    await pushImage(reg, 'web/app', 'latest', { layers: [base, randomGzipBlob(8 * KiB)] });
    const mirror = await pushImage(reg, 'api/server', 'mirror', { layers: [base, randomGzipBlob(16 * KiB)] });
    await backdate(reg, 'api/server', mirror.digest, 30, 'mirror');
    await pushImage(reg, 'api/server', '1.0', { layers: [base, randomGzipBlob(4 * KiB)] });
    const file = join(scratch, 'clean.html');
    before = total(await blobSizes(reg));

    // Act
    const result = await runCli(
      [
        'clean',
        '--registry',
        reg.url,
        '--storage-root',
        reg.root,
        '--keep-last',
        '1',
        '--keep-tag',
        HOSTILE,
        '--gc',
        'local',
        '--lock-file',
        join(scratch, 'lock'),
        '--log-dir',
        join(scratch, 'logs'),
        '--yes',
        '--json',
        '--html',
        file,
      ],
      { env: docker.env },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    ({ plan, report } = JSON.parse(result.stdout) as { plan: Plan; report: RunReport });
    after = total(await blobSizes(reg));
    tab = await browser.newPage();
    tab.on('request', (request) => requested.push(request.url()));
    await tab.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  });

  afterAll(async () => {
    await browser?.close();
    await docker?.close();
    await reg?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('opens offline: the page is the only thing it loads', () => {
    expect(requested).toEqual([tab.url()]);
  });

  it('gives the summary as the plan and the run have it', async () => {
    const summary = await shown(tab.locator('#summary'));

    expect(await shown(tab.locator('h1'))).toBe('registry-janitor clean');
    expect(summary).toContain(`keep ${plan.totals.tagsKept}, delete ${plan.totals.tagsDeleted}`);
    expect(summary).toContain(`keep ${plan.totals.manifestsKept}, delete ${plan.totals.manifestsDeleted}`);
    expect(summary).toContain(`Deleted\n${plan.totals.manifestsDeleted} manifests`);
    expect(summary).toContain(formatBytes(report.reclaimed.measuredBytes ?? -1));
  });

  it('draws one bar for each repository, longer for the one that takes more', async () => {
    const bars = tab.locator('#space svg g.bar');

    expect(await bars.count()).toBe(2);
    expect(await bars.evaluateAll((gs) => gs.map((g) => g.getAttribute('data-label')))).toEqual([
      'web/app',
      'api/server',
    ]);
    const widths = await bars.evaluateAll((gs) =>
      gs.map((g) =>
        [...g.querySelectorAll('rect')].reduce((sum, r) => sum + r.getBoundingClientRect().width, 0),
      ),
    );
    expect(widths.every((w) => w > 50)).toBe(true);
    expect(await tab.locator('#space').getByText('web/app', { exact: true }).first().isVisible()).toBe(true);
  });

  it('shows the bytes before, as estimated after, and as measured after', async () => {
    const section = await shown(tab.locator('#before-after'));
    const measured = report.reclaimed.measuredBytes ?? -1;

    expect(measured).toBe(before - after);
    expect(await tab.locator('#before-after svg g.bar').count()).toBe(3);
    expect(section).toContain(`Before\n${formatBytes(before)}\n${exact(before)} in storage`);
    expect(section).toContain(`After, estimated\n${formatBytes(before - report.reclaimed.estimatedBytes)}`);
    expect(section).toContain(`After, measured\n${formatBytes(after)}\n${exact(measured)} freed`);
  });

  it('opens a repository to show each decision with its reason', async () => {
    const app = tab.locator('details.repository[data-repository="web/app"]');
    const reason = app.getByText('stale: pushed 20d ago, not among 1 most recent');
    expect(await reason.isVisible()).toBe(false);
    expect(await app.getAttribute('open')).toBeNull();

    await app.locator('summary').click();

    expect(await app.getAttribute('open')).toBe('');
    expect(await reason.isVisible()).toBe(true);
    expect(await app.getByText('untagged for 10d').isVisible()).toBe(true);
    expect(await app.locator('tr.keep td.what').allInnerTexts()).toEqual(['latest']);
  });

  it('shows markup from a pattern as text, and runs none of it', async () => {
    const api = tab.locator('details.repository[data-repository="api/server"]');

    await api.locator('summary').click();

    expect(await api.getByText(`matches keep-tag /${HOSTILE}/`).isVisible()).toBe(true);
    expect(await tab.locator('img').count()).toBe(0);
    expect(await tab.evaluate(() => (globalThis as { pwned?: unknown }).pwned)).toBeUndefined();
  });
});
