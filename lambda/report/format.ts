import type { DeletionReport, GarbageCollection, RunReport } from '../cleanup.js';
import type { Plan, RepositoryPlan } from '../domain/plan.js';
import type { Verification } from '../verify.js';

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

const shortDigest = (digest: string) => digest.slice(7, 19);
export const plural = (count: number, word: string, many = `${word}s`): string =>
  `${count} ${count === 1 ? word : many}`;
/** Cosign and OCI fallback tags carry a whole digest; show its head. */
const shortTag = (tag: string) => tag.replace(/^sha256-([a-f0-9]{12})[a-f0-9]{52}/, 'sha256-$1…');
const verb = (decision: 'keep' | 'delete') => (decision === 'keep' ? 'kept' : 'deleted');

/** Left-aligned columns, two spaces apart. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, index) => {
      widths[index] = Math.max(widths[index] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, index) => (index === row.length - 1 ? cell : cell.padEnd(widths[index] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

function repositoryLines(repository: RepositoryPlan): string[] {
  const lines = [`${repository.name}  (${repository.rule})`];
  if (repository.error !== undefined) {
    lines.push(`  not scanned, left alone: ${repository.error}`);
    return lines;
  }
  const rows: string[][] = [['  TAG', 'DIGEST', 'DECISION']];
  for (const tag of repository.tags)
    rows.push([`  ${shortTag(tag.tag)}`, shortDigest(tag.digest), `${verb(tag.decision)}: ${tag.reason}`]);
  const untagged = repository.manifests.filter((m) => m.tags.length === 0);
  for (const manifest of untagged.filter((m) => m.decision === 'delete')) {
    rows.push([`  (${manifest.role})`, shortDigest(manifest.digest), `deleted: ${manifest.reason}`]);
  }
  const keptUntagged = untagged.filter((m) => m.decision === 'keep');
  for (const manifest of keptUntagged.filter((m) => m.role === 'untagged')) {
    rows.push(['  (untagged)', shortDigest(manifest.digest), `kept: ${manifest.reason}`]);
  }
  if (rows.length > 1) lines.push(...table(rows));
  const keptDependents = keptUntagged.filter((m) => m.role !== 'untagged').length;
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

export function renderPlan(plan: Plan): string {
  const lines: string[] = [`Plan for ${plan.registry} at ${plan.createdAt}`, ''];
  for (const repository of plan.repositories) {
    if (repository.tags.length === 0 && repository.manifests.length === 0 && repository.error === undefined)
      continue;
    lines.push(...repositoryLines(repository), '');
  }
  const empty = plan.repositories.filter(
    (r) => r.tags.length === 0 && r.manifests.length === 0 && !r.error,
  ).length;
  if (empty > 0) lines.push(`${plural(empty, 'empty repository', 'empty repositories')} not shown`, '');
  lines.push(...planSummary(plan));
  return `${lines.join('\n')}\n`;
}

export function planSummary(plan: Plan): string[] {
  const t = plan.totals;
  const bound = plan.reclaim.exact ? '' : ' at most';
  const lines = [
    `${plural(t.repositories, 'repository', 'repositories')} scanned${t.repositoriesFailed ? `, ${t.repositoriesFailed} failed` : ''}; ` +
      `tags: ${t.tagsKept} kept, ${t.tagsDeleted} deleted; manifests: ${t.manifestsKept} kept, ${t.manifestsDeleted} deleted`,
    `Garbage collection will then free${bound} ${formatBytes(plan.reclaim.bytes)} (${plan.reclaim.bytes} bytes in ${plural(plan.reclaim.blobs, 'blob')})`,
  ];
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
  if (report.stoppedBy) lines.push(`STOPPED: ${report.stoppedBy.message}`, '');
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
      "Space is reclaimed when the registry's garbage collector runs on the host " +
        '(registry garbage-collect <config>, without --delete-untagged on 2.x), followed by a registry restart.',
    );
  }
  return `${lines.join('\n')}\n`;
}

const summaryNumber = (summary: Record<string, unknown> | undefined, field: string) =>
  typeof summary?.[field] === 'number' ? (summary[field] as number) : undefined;

function collectionLine(gc: GarbageCollection): string {
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

/** The run report for a person: failures first, then what was done, measured against what was promised. */
export function renderRunReport(report: RunReport): string {
  const lines: string[] = [];
  if (report.outcome === 'failed') {
    lines.push(`FAILED: ${report.problems[0] ?? 'see below'}`);
    for (const problem of report.problems.slice(1)) lines.push(`  also: ${problem}`);
    lines.push('');
  }
  lines.push(
    renderDeletionReport(report.deletions, { collectHint: !report.garbageCollection.ran }).trimEnd(),
  );
  lines.push(collectionLine(report.garbageCollection));
  const { estimatedBytes, estimateExact, measuredBytes, unreferencedBytes } = report.reclaimed;
  const unreferenced = unreferencedBytes ? ` + ${unreferencedBytes} bytes already unreferenced` : '';
  const estimate = `${estimateExact ? '' : 'at most '}${formatBytes(estimatedBytes)} (${estimatedBytes} bytes${unreferenced})`;
  lines.push(
    measuredBytes === undefined
      ? `Reclaimable: ${estimate}, once garbage collection runs`
      : `Reclaimed: ${formatBytes(measuredBytes)} (${measuredBytes} bytes) measured on the host; plan estimate ${estimate}`,
  );
  const v = report.verification;
  lines.push(
    v.broken.length === 0
      ? `Verified: all ${plural(v.tags, 'kept tag')} resolve completely (${plural(v.manifests, 'manifest')}, ${plural(v.blobs, 'blob')})`
      : `Verification: ${v.broken.length} of ${plural(v.tags, 'kept tag')} BROKEN`,
  );
  for (const broken of v.broken) lines.push(`  BROKEN ${broken.repository}:${broken.tag}: ${broken.problem}`);
  lines.push(`${report.outcome === 'succeeded' ? 'Done' : 'Failed'} in ${report.durationSeconds} s.`);
  return `${lines.join('\n')}\n`;
}

export function renderVerification(verification: Verification): string {
  const lines = verification.broken.map((b) => `BROKEN ${b.repository}:${b.tag}: ${b.problem}`);
  lines.push(
    verification.broken.length === 0
      ? `All ${plural(verification.tags, 'tag')} resolve completely (${plural(verification.manifests, 'manifest')}, ${plural(verification.blobs, 'blob')} checked).`
      : `${verification.broken.length} of ${plural(verification.tags, 'tag')} broken.`,
  );
  return `${lines.join('\n')}\n`;
}
