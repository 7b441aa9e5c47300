import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lambda/cleanup.js';
import { plan } from '../../lambda/domain/plan.js';
import { buildPolicy } from '../../lambda/domain/policy.js';
import { usage } from '../../lambda/domain/usage.js';
import { escapeHtml, renderReportPage } from '../../lambda/report/html.js';
import { daysAgo, image, inventory, NOW, repository, tag } from '../domain/builders.js';

const HOSTILE = `<img src=x onerror="alert('x')">&`;

/** A registry whose plan, errors and run carry markup: a keep-tag pattern, a repository error, a host reason. */
function hostileReport() {
  const kept = image('kept', { pushedAt: daysAgo(1) });
  const stale = image('stale', { pushedAt: daysAgo(40) });
  const inv = inventory(repository('web/app', [tag('latest', kept), tag('v1', stale)], [kept, stale]), {
    name: 'broken/app',
    tags: [],
    manifests: [],
    revisionsVisible: true,
    error: `HTTP 500 ${HOSTILE}`,
  });
  const planned = plan(inv, buildPolicy(undefined, { keepLast: 0, keepTags: [`^latest$|${HOSTILE}`] }), NOW);
  const run: RunReport = {
    registry: inv.registry,
    startedAt: NOW.toISOString(),
    durationSeconds: 1.5,
    outcome: 'failed',
    problems: [`garbage collection failed (exit 1): ${HOSTILE}`],
    plan: { totals: planned.totals, reclaim: planned.reclaim, failedRepositories: ['broken/app'] },
    deletions: {
      deleted: [],
      skipped: [],
      failed: [{ repository: 'web/app', digest: stale.digest, error: `answered ${HOSTILE}` }],
    },
    garbageCollection: {
      ran: true,
      state: 'finished',
      exitCode: 1,
      summary: { action: 'collect', status: 'failed', reason: HOSTILE },
    },
    reclaimed: { estimatedBytes: planned.reclaim.bytes, estimateExact: true },
    verification: { tags: 1, manifests: 1, blobs: 2, broken: [], unverified: [] },
  };
  return renderReportPage({
    command: 'clean',
    registry: inv.registry,
    createdAt: NOW.toISOString(),
    plan: planned,
    usage: usage(inv),
    run,
    notes: [HOSTILE],
  });
}

describe('the HTML report', () => {
  it('escapes the five characters that could end text or an attribute', () => {
    expect(escapeHtml(`<>&"'`)).toBe('&lt;&gt;&amp;&quot;&#39;');
    expect(escapeHtml('web/app:v1 (sha256-ab.sig)')).toBe('web/app:v1 (sha256-ab.sig)');
  });

  it('loads nothing from anywhere: no script, stylesheet link, import, remote url or source attribute', () => {
    const page = hostileReport();

    for (const reference of ['<script', '<link', '@import', 'url(http', '<img', '<iframe', '<object'])
      expect(page).not.toContain(reference);
    expect(page).not.toMatch(/<[a-z][^>]*\s(?:src|href|srcset|action)=/i);
    expect(page).toContain(
      `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    );
  });

  it('shows what the registry, the host and a pattern said as text, wherever it appears', () => {
    const page = hostileReport();
    const escaped = escapeHtml(HOSTILE);

    expect(page).toContain(`matches keep-tag /^latest$|${escaped}/`);
    expect(page).toContain(`HTTP 500 ${escaped}`);
    expect(page).toContain(`answered ${escaped}`);
    expect(page).toContain(`garbage collection failed (exit 1): ${escaped}`);
    expect(page).not.toContain('onerror="');
  });
});
