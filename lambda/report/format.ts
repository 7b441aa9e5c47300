import { type DeletionReport, type GarbageCollection, MAX_DELETE_CODE, type RunReport } from '../cleanup.js';
import type { Digest } from '../domain/names.js';
import {
  cleanWouldStop,
  type Decision,
  type ManifestDecision,
  type Plan,
  type RepositoryPlan,
} from '../domain/plan.js';
import type { Usage } from '../domain/usage.js';
import type { Verification } from '../verify.js';
import type { CollectionReport } from './function.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → `1.5 KiB`; exact bytes belong in JSON output. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export const shortDigest = (digest: string) => digest.slice(7, 19);
export const plural = (count: number, word: string, many = `${word}s`): string =>
  `${count} ${count === 1 ? word : many}`;
/** Cosign and OCI fallback tags carry a whole digest; show its head. */
export const shortTag = (tag: string) => tag.replace(/^sha256-([a-f0-9]{12})[a-f0-9]{52}/, 'sha256-$1…');
/** A plan has not deleted anything yet: it says what it will do. */
const verb = (decision: 'keep' | 'delete') => (decision === 'keep' ? 'keep' : 'will delete');

export { DEFAULT_WIDTH, fitLine, fitText, shorten, table, wrapText } from './text.js';

import { DEFAULT_WIDTH, fitText, shorten, table } from './text.js';

export interface DecisionRow {
  /** The tag, or the role of a manifest without one: `(untagged)`, `(child)`, `(referrer)`. */
  readonly what: string;
  readonly digest: Digest;
  readonly decision: Decision;
  readonly reason: string;
}

/**
 * What a person is shown of a repository's plan: every tag, every manifest without a tag that goes, and the
 * untagged revisions that stay. Children and referrers without a tag that stay with their parents are only
 * counted.
 */
export function decisionRows(repository: RepositoryPlan): { rows: DecisionRow[]; keptDependents: number } {
  const rows: DecisionRow[] = repository.tags.map((tag) => ({
    what: tag.tag,
    digest: tag.digest,
    decision: tag.decision,
    reason: tag.reason,
  }));
  const untagged = repository.manifests.filter((m) => m.tags.length === 0);
  const row = (m: ManifestDecision): DecisionRow => ({
    what: `(${m.role})`,
    digest: m.digest,
    decision: m.decision,
    reason: m.reason,
  });
  rows.push(...untagged.filter((m) => m.decision === 'delete').map(row));
  const keptUntagged = untagged.filter((m) => m.decision === 'keep');
  rows.push(...keptUntagged.filter((m) => m.role === 'untagged').map(row));
  return { rows, keptDependents: keptUntagged.filter((m) => m.role !== 'untagged').length };
}

function repositoryLines(repository: RepositoryPlan, width: number): string[] {
  const lines = [`${repository.name}  (${repository.rule})`];
  if (repository.error !== undefined) {
    lines.push(`  not scanned, left alone: ${repository.error}`);
    return lines;
  }
  const { rows, keptDependents } = decisionRows(repository);
  if (rows.length > 0)
    lines.push(
      ...table(
        [
          ['  TAG', 'DIGEST', 'DECISION'],
          ...rows.map((r) => [
            `  ${shortTag(r.what)}`,
            shortDigest(r.digest),
            `${verb(r.decision)}: ${r.reason}`,
          ]),
        ],
        width,
      ),
    );
  if (keptDependents > 0)
    lines.push(
      `  and ${plural(keptDependents, 'untagged child or referrer', 'untagged children or referrers')} kept with their parents`,
    );
  for (const manifest of repository.manifests) {
    for (const warning of manifest.warnings ?? [])
      lines.push(`  warning: ${shortDigest(manifest.digest)} ${warning}`);
  }
  return lines;
}

export interface PlanOutput {
  /** Say whether clean would be refused its deletes; clean itself says so once, as its error. @default true */
  readonly deletes?: boolean;
}

export function renderPlan(plan: Plan, width = DEFAULT_WIDTH, output: PlanOutput = {}): string {
  const lines: string[] = [`Plan for ${plan.registry} at ${plan.createdAt}`, ''];
  for (const repository of plan.repositories) {
    if (repository.tags.length === 0 && repository.manifests.length === 0 && repository.error === undefined)
      continue;
    lines.push(...repositoryLines(repository, width), '');
  }
  const empty = plan.repositories.filter(
    (r) => r.tags.length === 0 && r.manifests.length === 0 && !r.error,
  ).length;
  if (empty > 0) lines.push(`${plural(empty, 'empty repository', 'empty repositories')} not shown`, '');
  lines.push(...planSummary(plan, output));
  return `${fitText(lines.join('\n'), width)}\n`;
}

/** Why clean would stop before deleting anything, as a warning; undefined when nothing says it would. */
export function deletesWarning(plan: Plan): string | undefined {
  const stop = cleanWouldStop(plan);
  return stop ? `warning: clean would stop before deleting anything: ${stop}` : undefined;
}

export function planSummary(plan: Plan, output: PlanOutput = {}): string[] {
  const t = plan.totals;
  const bound = plan.reclaim.exact ? '' : ' at most';
  const lines: string[] = [];
  if (output.deletes !== false) {
    const warning = deletesWarning(plan);
    if (warning) lines.push(warning);
    else if (plan.deletes?.status === 'unknown')
      lines.push(`Could not tell whether the registry accepts deletes: ${plan.deletes.problem}`);
  }
  lines.push(
    `${plural(t.repositories, 'repository', 'repositories')} scanned${t.repositoriesFailed ? `, ${t.repositoriesFailed} failed` : ''}; ` +
      `tags: keep ${t.tagsKept}, delete ${t.tagsDeleted}; manifests: keep ${t.manifestsKept}, delete ${t.manifestsDeleted}` +
      (plan.maxDelete ? ` (${plan.maxDelete.setting} ${plan.maxDelete.limit})` : ''),
    `Garbage collection will then free${bound} ${formatBytes(plan.reclaim.bytes)} (${plan.reclaim.bytes} bytes in ${plural(plan.reclaim.blobs, 'blob')})`,
  );
  for (const caveat of plan.reclaim.caveats) lines.push(`  upper bound: ${caveat}`);
  const unreferenced = plan.reclaim.unreferencedBytes;
  if (unreferenced) {
    lines.push(
      `  and ${formatBytes(unreferenced)} (${unreferenced} bytes) of blobs no manifest references already (earlier deletes, or a push in flight)`,
    );
  }
  return lines;
}

export function renderDeletionReport(report: DeletionReport, opts: { collectHint?: boolean } = {}): string {
  const deleted = report.deleted.filter((d) => d.outcome === 'deleted').length;
  const gone = report.deleted.length - deleted;
  const lines: string[] = [];
  // The refusal itself is the run's problem, told once with the others.
  if (report.stoppedBy?.code === MAX_DELETE_CODE)
    lines.push('STOPPED: the plan deletes more manifests than its cap allows; nothing was attempted');
  else if (report.stoppedBy)
    lines.push('STOPPED: the registry refused deletes; nothing after that was attempted');
  lines.push(
    `Deleted ${plural(deleted, 'manifest')}${gone ? ` (${gone} already gone)` : ''}, ` +
      `skipped ${report.skipped.length}, failed ${report.failed.length}`,
  );
  for (const skip of report.skipped)
    lines.push(`  skipped ${skip.repository}@${skip.digest}: ${skip.reason}`);
  for (const failure of report.failed)
    lines.push(`  failed ${failure.repository}@${failure.digest}: ${failure.error}`);
  if (deleted > 0 && opts.collectHint !== false) {
    lines.push(
      'Space is reclaimed when garbage collection runs on the registry host: registry-janitor gc there, ' +
        'or clean with --gc local|ssm.',
    );
  }
  return `${lines.join('\n')}\n`;
}

const summaryNumber = (summary: Record<string, unknown> | undefined, field: string) =>
  typeof summary?.[field] === 'number' ? (summary[field] as number) : undefined;

export function collectionLine(gc: GarbageCollection): string {
  if (!gc.ran) return `Garbage collection: not run (${gc.reason})`;
  if (gc.state === 'running')
    return `Garbage collection: still running on the host (command ${gc.commandId ?? 'unknown'})`;
  const summary = gc.summary;
  if (!summary)
    return `Garbage collection: no summary from the host script (exit ${gc.exitCode ?? 'unknown'})`;
  const parts = [`${summary.status}${summary.reason ? ` (${summary.reason})` : ''}`];
  for (const [field, label] of [
    ['mode', 'mode'],
    ['version', 'registry'],
  ] as const) {
    if (typeof summary[field] === 'string') parts.push(`${label} ${summary[field]}`);
  }
  const deleted = summaryNumber(summary, 'blobsDeleted');
  if (deleted !== undefined) parts.push(`${plural(deleted, 'blob')} deleted`);
  if (summary.restarted === true) parts.push('registry restarted');
  if (typeof summary.log === 'string') parts.push(`log ${summary.log}`);
  const lines = [`Garbage collection: ${parts.join(', ')}`];
  if (typeof summary.warning === 'string') lines.push(`  warning: ${summary.warning}`);
  return lines.join('\n');
}

/** A collection an earlier run left running, as this run settled it: one line for a person. */
export function earlierCollectionLine(collection: CollectionReport): string {
  const which = `the collection started ${collection.startedAt ?? 'earlier'} (command ${collection.commandId})`;
  if (collection.state === 'running') {
    return `Earlier collection: ${which} is still running on the host; this run collects nothing until it ends`;
  }
  if (collection.state === 'unknown') return `Earlier collection: ${which} could not be checked`;
  const summary = collection.run?.summary;
  const status = summary
    ? `${summary.status}${summary.reason ? ` (${summary.reason})` : ''}`
    : `no summary from the host script (exit ${collection.run?.exitCode ?? 'unknown'}${collection.run?.reason ? `: ${collection.run.reason}` : ''})`;
  const parts = [status];
  if (collection.measuredBytes !== undefined) {
    parts.push(`freed ${formatBytes(collection.measuredBytes)} (${collection.measuredBytes} bytes)`);
  }
  const v = collection.verification;
  const checked: string[] = [];
  if (v) {
    checked.push(`${plural(v.tags - v.unverified.length, 'kept tag')} verified`);
    if (v.broken.length > 0) checked.push(`${v.broken.length} BROKEN`);
    if (v.unverified.length > 0) checked.push(`${v.unverified.length} not verified`);
  }
  if (collection.tagsRemovedSince)
    checked.push(`${plural(collection.tagsRemovedSince, 'tag')} removed since`);
  return `Earlier collection: ${which} finished: ${parts.join(', ')}${checked.length > 0 ? `; ${checked.join(', ')}` : ''}`;
}

/** The run report for a person: failures first, then what was done, measured against what was promised. */
export function renderRunReport(report: RunReport, width = DEFAULT_WIDTH): string {
  const lines: string[] = [];
  if (report.outcome === 'failed') {
    lines.push(`FAILED: ${report.problems[0] ?? 'see below'}`);
    for (const problem of report.problems.slice(1)) lines.push(`  also: ${problem}`);
    lines.push('');
  }
  const d = report.deletions;
  // A plan with nothing to delete (always so for gc) has no deletions to report.
  const planned = report.plan.totals.manifestsDeleted > 0;
  if (planned || d.deleted.length + d.skipped.length + d.failed.length > 0 || d.stoppedBy) {
    lines.push(renderDeletionReport(d, { collectHint: !report.garbageCollection.ran }).trimEnd());
  }
  lines.push(collectionLine(report.garbageCollection));
  const { estimatedBytes, estimateExact, measuredBytes, unreferencedBytes } = report.reclaimed;
  const unreferenced = unreferencedBytes ? ` + ${unreferencedBytes} bytes already unreferenced` : '';
  const estimate = `${estimateExact ? '' : 'at most '}${formatBytes(estimatedBytes)} (${estimatedBytes} bytes${unreferenced})`;
  // Without deletions or a look at the storage, there is no estimate to hold the measurement against.
  const estimated = planned || unreferencedBytes !== undefined;
  const measured =
    measuredBytes === undefined
      ? undefined
      : `Reclaimed: ${formatBytes(measuredBytes)} (${measuredBytes} bytes) measured on the host`;
  if (measured) lines.push(estimated ? `${measured}; plan estimate ${estimate}` : measured);
  else if (estimated) lines.push(`Reclaimable: ${estimate}, once garbage collection runs`);
  const v = report.verification;
  if (v.broken.length === 0 && v.unverified.length === 0) {
    lines.push(
      `Verified: all ${plural(v.tags, 'kept tag')} resolve completely (${plural(v.manifests, 'manifest')}, ${plural(v.blobs, 'blob')})`,
    );
  } else {
    const found = [
      ...(v.broken.length > 0 ? [`${v.broken.length} of ${plural(v.tags, 'kept tag')} BROKEN`] : []),
      ...(v.unverified.length > 0
        ? [`${v.unverified.length} of ${plural(v.tags, 'kept tag')} ${NOT_VERIFIED}`]
        : []),
    ];
    lines.push(`Verification: ${found.join(', ')}`);
  }
  for (const broken of v.broken) lines.push(`  BROKEN ${broken.repository}:${broken.tag}: ${broken.problem}`);
  lines.push(...unverifiedLines(v, '  '));
  lines.push(`${report.outcome === 'succeeded' ? 'Done' : 'Failed'} in ${report.durationSeconds} s.`);
  return `${fitText(lines.join('\n'), width)}\n`;
}

export function renderVerification(verification: Verification, width = DEFAULT_WIDTH): string {
  const { broken, unverified, tags } = verification;
  const lines = broken.map((b) => `BROKEN ${b.repository}:${b.tag}: ${b.problem}`);
  lines.push(...unverifiedLines(verification, ''));
  if (broken.length === 0 && unverified.length === 0) {
    lines.push(
      `All ${plural(tags, 'tag')} resolve completely (${plural(verification.manifests, 'manifest')}, ${plural(verification.blobs, 'blob')} checked).`,
    );
  }
  if (broken.length > 0) lines.push(`${broken.length} of ${plural(tags, 'tag')} broken.`);
  if (unverified.length > 0) lines.push(`${unverified.length} of ${plural(tags, 'tag')} ${NOT_VERIFIED}.`);
  return `${fitText(lines.join('\n'), width)}\n`;
}

/** A tag whose check the deadline cut short: nothing is known to be wrong with it. */
const NOT_VERIFIED = 'not verified (deadline passed)';
/** Unverified tags a person is shown by name; the JSON output has them all. */
const UNVERIFIED_SHOWN = 10;

function unverifiedLines(verification: Verification, indent: string): string[] {
  const shown = verification.unverified.slice(0, UNVERIFIED_SHOWN);
  const more = verification.unverified.length - shown.length;
  return [
    ...shown.map((t) => `${indent}${NOT_VERIFIED}: ${t.repository}:${t.tag}`),
    ...(more > 0 ? [`${indent}and ${more} more ${NOT_VERIFIED}`] : []),
  ];
}

/** A size as wide as the widest one, `1023.9 KiB`, so that a column of them lines up on the right. */
const SIZE_WIDTH = 10;
const sizeCell = (bytes: number) => formatBytes(bytes).padStart(SIZE_WIDTH);

/** The totals of `du`: what the repositories reference, what the registry holds, and what limits the figures. */
export function usageSummary(usage: Usage): string[] {
  const exclusive = usage.repositories.reduce((sum, r) => sum + r.exclusiveBytes, 0);
  const lines = [
    `${plural(usage.repositories.length, 'repository', 'repositories')} reference ${formatBytes(usage.referencedBytes)} (${usage.referencedBytes} bytes); ${formatBytes(exclusive)} of it only one repository references`,
  ];
  const stored = usage.registryBytes;
  const unreferenced = usage.unreferencedBytes;
  if (stored === null) lines.push('Registry: its total in storage shows with --storage-root');
  else
    lines.push(
      `Registry: ${formatBytes(stored)} (${stored} bytes) in storage` +
        (unreferenced === null
          ? ''
          : unreferenced === 0
            ? ', every blob referenced by a manifest'
            : `, ${formatBytes(unreferenced)} (${unreferenced} bytes) of it referenced by no manifest: the next garbage collection frees it`),
    );
  for (const caveat of usage.caveats) lines.push(`  exclusive and untagged bytes are at most: ${caveat}`);
  return lines;
}

/** `du` for a person: one row a repository, sizes first and aligned, the name last; then the totals. */
export function renderUsage(usage: Usage, width = DEFAULT_WIDTH): string {
  const shown = usage.repositories.filter((r) => r.totalBytes > 0);
  const nameWidth = Math.max(12, width - 4 * (SIZE_WIDTH + 2));
  const lines: string[] = [];
  if (shown.length > 0) {
    lines.push(
      ...table(
        [
          [...['EXCLUSIVE', 'TOTAL', 'SHARED', 'UNTAGGED'].map((h) => h.padStart(SIZE_WIDTH)), 'REPOSITORY'],
          ...shown.map((r) => [
            sizeCell(r.exclusiveBytes),
            sizeCell(r.totalBytes),
            sizeCell(r.sharedBytes),
            sizeCell(r.untaggedBytes),
            shorten(r.name, nameWidth),
          ]),
        ],
        width,
      ),
      '',
    );
  }
  const empty = usage.repositories.length - shown.length;
  if (empty > 0) lines.push(`${plural(empty, 'empty repository', 'empty repositories')} not shown`, '');
  lines.push(...usageSummary(usage));
  return `${fitText(lines.join('\n'), width)}\n`;
}
