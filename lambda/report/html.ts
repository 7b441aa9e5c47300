// The report as one HTML page a person opens in a browser, offline: styles inline, charts as inline SVG, no
// script, and a Content-Security-Policy that lets the page load nothing at all. Every value is escaped where
// it is put into the page (the `html` template below), whatever its source.
import packageJson from '../../package.json' with { type: 'json' };
import type { RunReport } from '../cleanup.js';
import type { Plan, RepositoryPlan } from '../domain/plan.js';
import type { RepositoryUsage, Usage } from '../domain/usage.js';
import {
  collectionLine,
  decisionRows,
  deletesWarning,
  formatBytes,
  plural,
  shortDigest,
  shorten,
  shortTag,
} from './format.js';

/** What one page shows; each part is left out when it is absent. */
export interface ReportPage {
  /** What made the report: `plan`, `clean`, `du`, or the function and what started it. */
  readonly command: string;
  readonly registry: string;
  readonly createdAt: string;
  /** One line: what happened, the most serious first. */
  readonly headline?: string;
  readonly outcome?: string;
  /** Why the run failed; the run's own problems when not given. */
  readonly problems?: readonly string[];
  readonly notes?: readonly string[];
  readonly usage?: Usage;
  readonly plan?: Plan;
  readonly run?: RunReport;
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe inside an element and inside a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ENTITIES[char] ?? char);
}

/** Markup already made safe by `html`: inserted as it is. */
class Markup {
  constructor(readonly text: string) {}
}

type Part = Markup | string | number | false | undefined | null | readonly Part[];

function insert(part: Part): string {
  if (part instanceof Markup) return part.text;
  if (Array.isArray(part)) return part.map(insert).join('');
  if (part === undefined || part === null || part === false) return '';
  return escapeHtml(String(part));
}

/** A template whose every value is escaped unless it is Markup made by `html` itself. */
function html(strings: TemplateStringsArray, ...parts: Part[]): Markup {
  return new Markup(strings.reduce((out, text, i) => out + insert(parts[i - 1]) + text));
}

const exactBytes = (n: number) => `${n.toLocaleString('en-US')} bytes`;

interface Segment {
  readonly bytes: number;
  /** The CSS class that colours it, and the legend entry it belongs to. */
  readonly kind: 'untagged' | 'exclusive' | 'shared' | 'before' | 'estimated' | 'measured';
}

interface Bar {
  readonly label: string;
  readonly segments: readonly Segment[];
  /** The figure written after the bar. */
  readonly value: string;
  /** What a pointer resting on the bar shows. */
  readonly title: string;
}

const CHART = { label: 230, bar: 400, value: 96, row: 26, height: 16 } as const;

/** Horizontal bars on one scale, the longest the full width; one `g.bar` each. */
function barChart(bars: readonly Bar[], description: string): Markup {
  const longest = Math.max(1, ...bars.map((bar) => bar.segments.reduce((sum, s) => sum + s.bytes, 0)));
  const width = CHART.label + CHART.bar + CHART.value;
  const height = bars.length * CHART.row + 4;
  const rows = bars.map((bar, n) => {
    const y = n * CHART.row + 4;
    let x = CHART.label;
    const rects = bar.segments
      .filter((segment) => segment.bytes > 0)
      .map((segment) => {
        const w = Math.max(1, (segment.bytes / longest) * CHART.bar);
        const rect = html`<rect class="${segment.kind}" x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${CHART.height}"></rect>`;
        x += w;
        return rect;
      });
    return html`<g class="bar" data-label="${bar.label}"><title>${bar.title}</title><text class="label" x="${CHART.label - 8}" y="${y + 12}">${shorten(bar.label, 34)}</text>${rects}<text class="value" x="${x + 6}" y="${y + 12}">${bar.value}</text></g>`;
  });
  return html`<svg class="chart" role="img" aria-label="${description}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">${rows}</svg>`;
}

const USAGE_LEGEND = [
  ['untagged', 'only here, held by untagged manifests'],
  ['exclusive', 'only here, tagged'],
  ['shared', 'shared with other repositories'],
] as const;

/** How many repositories the chart draws; the table below it lists all. */
const CHART_LIMIT = 40;

function usageBar(repository: RepositoryUsage): Bar {
  const tagged = repository.exclusiveBytes - repository.untaggedBytes;
  return {
    label: repository.name,
    segments: [
      { bytes: repository.untaggedBytes, kind: 'untagged' },
      { bytes: tagged, kind: 'exclusive' },
      { bytes: repository.sharedBytes, kind: 'shared' },
    ],
    value: formatBytes(repository.totalBytes),
    title:
      `${repository.name}: ${formatBytes(repository.totalBytes)} in all; ${formatBytes(repository.exclusiveBytes)} only here ` +
      `(${formatBytes(repository.untaggedBytes)} of it untagged); ${formatBytes(repository.sharedBytes)} shared`,
  };
}

function spaceSection(usage: Usage, before: boolean): Markup {
  const shown = usage.repositories.filter((r) => r.totalBytes > 0);
  const empty = usage.repositories.length - shown.length;
  const drawn = shown.slice(0, CHART_LIMIT);
  const cells = (r: RepositoryUsage) =>
    [r.exclusiveBytes, r.totalBytes, r.sharedBytes, r.untaggedBytes].map(
      (n) => html`<td class="bytes" title="${exactBytes(n)}">${formatBytes(n)}</td>`,
    );
  return html`<section id="space">
<h2>Space per repository${before ? ', before the run' : ''}</h2>
<p>Exclusive bytes are what deleting the whole repository would free after garbage collection: the blobs no other repository references. Untagged bytes are what deleting its untagged manifests would free.</p>
${
  shown.length === 0
    ? html`<p>No repository holds anything.</p>`
    : html`${barChart(drawn.map(usageBar), 'Bytes per repository, the largest exclusive figure first')}
<p class="legend">${USAGE_LEGEND.map(([kind, text]) => html`<span class="key ${kind}"></span>${text} `)}</p>
${shown.length > drawn.length ? html`<p>The ${drawn.length} largest of ${shown.length} repositories are drawn; the table lists all.</p>` : ''}
<table class="numbers"><thead><tr><th>Repository</th><th>Exclusive</th><th>Total</th><th>Shared</th><th>Untagged</th></tr></thead>
<tbody>${shown.map((r) => html`<tr><td class="name">${r.name}</td>${cells(r)}</tr>`)}</tbody></table>`
}
${empty > 0 ? html`<p>${plural(empty, 'empty repository', 'empty repositories')} not shown.</p>` : ''}
</section>`;
}

function figure(label: string, value: string, detail?: string): Markup {
  return html`<div class="figure"><dt>${label}</dt><dd>${value}${detail ? html`<small>${detail}</small>` : ''}</dd></div>`;
}

function summarySection(page: ReportPage): Markup {
  const { plan, usage, run } = page;
  const figures: Markup[] = [];
  if (plan) {
    const t = plan.totals;
    figures.push(
      figure(
        'Repositories',
        `${t.repositories}`,
        t.repositoriesFailed ? `${t.repositoriesFailed} could not be scanned` : undefined,
      ),
      figure('Tags', `keep ${t.tagsKept}, delete ${t.tagsDeleted}`),
      figure('Manifests', `keep ${t.manifestsKept}, delete ${t.manifestsDeleted}`),
      figure(
        'Garbage collection frees',
        `${plan.reclaim.exact ? '' : 'at most '}${formatBytes(plan.reclaim.bytes)}`,
        `${exactBytes(plan.reclaim.bytes)} in ${plural(plan.reclaim.blobs, 'blob')}`,
      ),
    );
  }
  if (usage) {
    if (!plan) figures.push(figure('Repositories', `${usage.repositories.length}`));
    figures.push(
      figure('Referenced', formatBytes(usage.referencedBytes), exactBytes(usage.referencedBytes)),
      usage.registryBytes === null
        ? figure('In storage', 'not listed', 'shows with --storage-root')
        : figure('In storage', formatBytes(usage.registryBytes), exactBytes(usage.registryBytes)),
    );
    if (usage.unreferencedBytes !== null)
      figures.push(
        figure(
          'Referenced by no manifest',
          formatBytes(usage.unreferencedBytes),
          usage.unreferencedBytes > 0 ? 'the next garbage collection frees it' : 'every blob is in use',
        ),
      );
  }
  if (run) {
    const deleted = run.deletions.deleted.filter((d) => d.outcome === 'deleted').length;
    figures.push(figure('Deleted', plural(deleted, 'manifest')));
    const measured = run.reclaimed.measuredBytes;
    figures.push(
      measured === undefined
        ? figure('Reclaimed', 'not measured', collectionLine(run.garbageCollection))
        : figure('Reclaimed, measured', formatBytes(measured), exactBytes(measured)),
    );
  }
  const problems = page.problems ?? run?.problems ?? [];
  const caveats = plan?.reclaim.caveats ?? usage?.caveats ?? [];
  const warning = plan ? deletesWarning(plan) : undefined;
  const outcome = page.outcome ?? run?.outcome;
  return html`<section id="summary">
<h2>Summary</h2>
${page.headline ? html`<p class="headline${outcome === 'failed' ? ' failed' : ''}">${page.headline}</p>` : ''}
${problems.length > 0 ? html`<ul class="problems">${problems.map((p) => html`<li>${p}</li>`)}</ul>` : ''}
${warning ? html`<p class="warning">${warning}</p>` : ''}
<dl class="figures">${figures}</dl>
${caveats.length > 0 ? html`<ul class="caveats">${caveats.map((c) => html`<li>Upper bound: ${c}</li>`)}</ul>` : ''}
${(page.notes ?? []).length > 0 ? html`<ul class="notes">${(page.notes ?? []).map((n) => html`<li>${n}</li>`)}</ul>` : ''}
</section>`;
}

/** Bytes before the run, after it as the plan estimates, and after it as the host measured. */
function beforeAfterSection(run: RunReport, usage: Usage | undefined): Markup {
  const { estimatedBytes, estimateExact, unreferencedBytes, measuredBytes } = run.reclaimed;
  const expected = estimatedBytes + (unreferencedBytes ?? 0);
  const bound = estimateExact ? '' : 'at most ';
  const unmeasured =
    measuredBytes === undefined ? html`<p>Not measured: ${collectionLine(run.garbageCollection)}.</p>` : '';
  const before = usage ? (usage.registryBytes ?? usage.referencedBytes) : undefined;
  if (before === undefined) {
    return html`<section id="before-after"><h2>Space reclaimed</h2>
<dl class="figures">${figure('Estimated to free', `${bound}${formatBytes(expected)}`, exactBytes(expected))}${measuredBytes === undefined ? '' : figure('Measured freed', formatBytes(measuredBytes), exactBytes(measuredBytes))}</dl>
${unmeasured}</section>`;
  }
  const what = usage?.registryBytes === null ? 'referenced by the scanned repositories' : 'in storage';
  interface Stage {
    readonly label: string;
    readonly kind: Segment['kind'];
    readonly after: number;
    readonly detail: string;
  }
  const stages: Stage[] = [
    { label: 'Before', kind: 'before', after: before, detail: `${exactBytes(before)} ${what}` },
    {
      label: 'After, estimated',
      kind: 'estimated',
      after: Math.max(0, before - expected),
      detail: `${bound}${exactBytes(expected)} freed`,
    },
    ...(measuredBytes === undefined
      ? []
      : [
          {
            label: 'After, measured',
            kind: 'measured',
            after: Math.max(0, before - measuredBytes),
            detail: `${exactBytes(measuredBytes)} freed`,
          } satisfies Stage,
        ]),
  ];
  const bars: Bar[] = stages.map((stage) => ({
    label: stage.label,
    segments: [{ bytes: stage.after, kind: stage.kind }],
    value: formatBytes(stage.after),
    title: `${stage.label}: ${exactBytes(stage.after)}; ${stage.detail}`,
  }));
  return html`<section id="before-after">
<h2>Space before and after</h2>
${barChart(bars, `Bytes ${what} before the run and after it`)}
<dl class="figures">${stages.map((stage) => figure(stage.label, formatBytes(stage.after), stage.detail))}</dl>
${unmeasured}
</section>`;
}

function repositoryDetails(repository: RepositoryPlan): Markup {
  const count = (items: readonly { decision: string }[], decision: string) =>
    items.filter((item) => item.decision === decision).length;
  const counts = `tags: keep ${count(repository.tags, 'keep')}, delete ${count(repository.tags, 'delete')}; manifests: keep ${count(repository.manifests, 'keep')}, delete ${count(repository.manifests, 'delete')}`;
  const deletes = count(repository.manifests, 'delete') > 0;
  if (repository.error !== undefined) {
    return html`<details class="repository failed" data-repository="${repository.name}"><summary><span class="name">${repository.name}</span> <span class="counts">not scanned, left alone</span></summary>
<p class="problem">${repository.error}</p></details>`;
  }
  const { rows, keptDependents } = decisionRows(repository);
  const warnings = repository.manifests.flatMap((m) =>
    (m.warnings ?? []).map((w) => `${shortDigest(m.digest)} ${w}`),
  );
  return html`<details class="repository${deletes ? ' deletes' : ''}" data-repository="${repository.name}"><summary><span class="name">${repository.name}</span> <span class="counts">${counts}</span></summary>
<p class="rule">Rule: ${repository.rule}</p>
${
  rows.length > 0
    ? html`<table class="decisions"><thead><tr><th>Tag</th><th>Digest</th><th>Decision</th><th>Reason</th></tr></thead><tbody>${rows.map(
        (row) =>
          html`<tr class="${row.decision}"><td class="what" title="${row.what}">${shortTag(row.what)}</td><td class="digest" title="${row.digest}"><code>${shortDigest(row.digest)}</code></td><td class="decision">${row.decision}</td><td class="reason">${row.reason}</td></tr>`,
      )}</tbody></table>`
    : ''
}
${keptDependents > 0 ? html`<p>And ${plural(keptDependents, 'untagged child or referrer', 'untagged children or referrers')} kept with their parents.</p>` : ''}
${warnings.length > 0 ? html`<ul class="warnings">${warnings.map((w) => html`<li>Warning: ${w}</li>`)}</ul>` : ''}
</details>`;
}

function decisionsSection(plan: Plan, done: boolean): Markup {
  const listed = plan.repositories.filter(
    (r) => r.tags.length > 0 || r.manifests.length > 0 || r.error !== undefined,
  );
  const empty = plan.repositories.length - listed.length;
  return html`<section id="decisions">
<h2>${done ? 'What was kept and deleted' : 'What is kept and deleted'}, and why</h2>
<p>One section a repository: open it for every tag, and every manifest without one, with its decision and the reason.</p>
${listed.map(repositoryDetails)}
${empty > 0 ? html`<p>${plural(empty, 'empty repository', 'empty repositories')} not shown.</p>` : ''}
</section>`;
}

function runSection(run: RunReport): Markup {
  const d = run.deletions;
  const deleted = d.deleted.filter((x) => x.outcome === 'deleted').length;
  const gone = d.deleted.length - deleted;
  const v = run.verification;
  const verified =
    v.broken.length === 0 && v.unverified.length === 0
      ? `All ${plural(v.tags, 'kept tag')} resolve completely (${plural(v.manifests, 'manifest')}, ${plural(v.blobs, 'blob')}).`
      : `${v.broken.length} of ${plural(v.tags, 'kept tag')} broken, ${v.unverified.length} not verified (deadline passed).`;
  return html`<section id="run">
<h2>The run</h2>
<dl class="lines">
<dt>Deletions</dt><dd>${d.stoppedBy ? html`<p class="problem">Stopped: ${d.stoppedBy.message}</p>` : ''}Deleted ${plural(deleted, 'manifest')}${gone ? ` (${gone} already gone)` : ''}, skipped ${d.skipped.length}, failed ${d.failed.length}.
${d.skipped.length + d.failed.length > 0 ? html`<ul>${d.skipped.map((s) => html`<li>Skipped ${s.repository}@<code>${shortDigest(s.digest)}</code>: ${s.reason}</li>`)}${d.failed.map((f) => html`<li class="problem">Failed ${f.repository}@<code>${shortDigest(f.digest)}</code>: ${f.error}</li>`)}</ul>` : ''}</dd>
<dt>Garbage collection</dt><dd>${collectionLine(run.garbageCollection).replace(/^Garbage collection: /, '')}</dd>
<dt>Verification</dt><dd class="${v.broken.length > 0 ? 'problem' : ''}">${run.verificationDeferred ? 'Left to the collection that is still running.' : verified}
${v.broken.length > 0 ? html`<ul>${v.broken.map((b) => html`<li>Broken ${b.repository}:${b.tag}: ${b.problem}</li>`)}</ul>` : ''}</dd>
<dt>Duration</dt><dd>${run.durationSeconds} s, from ${run.startedAt}</dd>
</dl>
</section>`;
}

const STYLE = `
:root { color-scheme: light; --ink: #1d232b; --muted: #5b6570; --line: #d9dee4; --panel: #f5f7f9;
  --keep: #1f7a4d; --delete: #b3261e; --untagged: #e08a1e; --exclusive: #2f6fb5; --shared: #a9b6c4;
  --before: #6b7785; --estimated: #62a87c; --measured: #1f7a4d; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1040px; padding: 24px 28px 48px; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { border-bottom: 3px solid var(--exclusive); margin-bottom: 8px; }
h1 { font-size: 26px; margin: 0 0 2px; }
h2 { font-size: 19px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta { color: var(--muted); margin: 0 0 12px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.headline { font-size: 18px; font-weight: 600; padding: 10px 14px; border-left: 5px solid var(--keep); background: var(--panel); }
.headline.failed, .problems { border-left-color: var(--delete); }
.problems, .problem { color: var(--delete); font-weight: 600; }
.warning { color: #8a4b00; }
.caveats, .notes { color: var(--muted); }
.figures { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; padding: 0; }
.figure { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.figure dt { color: var(--muted); font-size: 13px; }
.figure dd { margin: 0; font-size: 20px; font-weight: 600; }
.figure small { display: block; font-size: 12px; font-weight: 400; color: var(--muted); }
.chart { max-width: 100%; height: auto; display: block; }
.chart text { font-size: 12px; fill: var(--ink); }
.chart .label { text-anchor: end; }
.chart .value { fill: var(--muted); }
rect.untagged, .key.untagged { fill: var(--untagged); background: var(--untagged); }
rect.exclusive, .key.exclusive { fill: var(--exclusive); background: var(--exclusive); }
rect.shared, .key.shared { fill: var(--shared); background: var(--shared); }
rect.before, .key.before { fill: var(--before); background: var(--before); }
rect.estimated, .key.estimated { fill: var(--estimated); background: var(--estimated); }
rect.measured, .key.measured { fill: var(--measured); background: var(--measured); }
.legend { color: var(--muted); font-size: 13px; }
.key { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin: 0 5px -1px 10px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 14px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 13px; }
td.bytes { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.numbers th:not(:first-child) { text-align: right; }
td.what { word-break: break-all; }
tr.keep td.decision { color: var(--keep); font-weight: 600; }
tr.delete td.decision { color: var(--delete); font-weight: 600; }
tr.delete td.what { text-decoration: line-through; text-decoration-color: var(--delete); }
details.repository { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; padding: 0 12px; }
details.repository[open] { padding-bottom: 8px; }
details.repository > summary { cursor: pointer; padding: 8px 0; }
details.repository.deletes > summary .name { color: var(--delete); }
details.repository .name { font-weight: 600; }
details.repository .counts { color: var(--muted); margin-left: 8px; font-size: 14px; }
.rule { color: var(--muted); margin: 0; }
dl.lines dt { font-weight: 600; margin-top: 8px; }
dl.lines dd { margin: 0 0 0 16px; }
footer { margin-top: 36px; color: var(--muted); font-size: 13px; }
@media print { details.repository { break-inside: avoid; } }
`;

/** The whole page: summary, space per repository, before and after, every decision, the run. */
export function renderReportPage(page: ReportPage): string {
  const title = `registry-janitor ${page.command}: ${page.registry}`;
  const body = html`<header><h1>registry-janitor ${page.command}</h1><p class="meta">${page.registry} · ${page.createdAt}</p></header>
${summarySection(page)}
${page.run ? beforeAfterSection(page.run, page.usage) : ''}
${page.usage ? spaceSection(page.usage, page.run !== undefined) : ''}
${page.plan ? decisionsSection(page.plan, page.run !== undefined) : ''}
${page.run ? runSection(page.run) : ''}
<footer>Made by registry-janitor ${packageJson.version}. This page loads nothing: it reads the same offline.</footer>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body.text}
</body>
</html>
`;
}
