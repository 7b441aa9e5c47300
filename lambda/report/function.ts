import type { FunctionEvent } from '../aws/events.js';
import {
  type CleanupReport,
  manifestsDeleted,
  outcomeOf,
  type RunReport,
  secondsBetween,
  unscanned,
} from '../cleanup.js';
import { summaryNumber } from '../collection.js';
import type { Plan, PlanTotals } from '../domain/plan.js';
import type { Reclaim } from '../domain/reclaim.js';
import type { HostRun } from '../ports.js';
import type { Verification } from '../verify.js';
import { formatBytes, plural } from './format.js';

export type FunctionOutcome = 'succeeded' | 'failed' | 'pending' | 'nothing to do';

/** What a dry run would do. */
export interface PlanPreview {
  readonly totals: PlanTotals;
  readonly maxDelete?: number;
  readonly reclaim: Reclaim;
  readonly failedRepositories: readonly string[];
  readonly deletions: readonly {
    readonly repository: string;
    readonly tags: readonly string[];
    readonly manifests: number;
  }[];
}

/** A collection an earlier invocation left running, as this one found it. */
export interface CollectionReport {
  readonly commandId: string;
  readonly startedAt?: string;
  readonly state: 'finished' | 'running' | 'unknown';
  readonly run?: Omit<HostRun, 'output'>;
  readonly verification?: Verification;
  readonly measuredBytes?: number;
  /** Kept tags the registry no longer lists (removed since): not verified. */
  readonly tagsRemovedSince?: number;
  /** The host script's `recover`, run before verifying a collection that SSM stopped. */
  readonly recovery?: Omit<HostRun, 'output'>;
}

/** The numbers of a run, as the metrics and the notification give them. */
export interface Figures {
  readonly manifestsDeleted: number;
  /** Bytes the garbage collector freed, measured on the host, by every collection that ended in this invocation. */
  readonly bytesReclaimed?: number;
  readonly bytesEstimated?: number;
  readonly diskUsedPercentBefore?: number;
  readonly diskUsedPercentAfter?: number;
  /** Kept tags whose check ran to the end, broken ones included. */
  readonly tagsVerified: number;
  /** Kept tags the deadline left unchecked; present when there are any. They are not integrity failures. */
  readonly tagsUnverified?: number;
  readonly integrityFailures: number;
}

/** The function's report: saved to the history, sent as the notification, published as metrics. */
export interface FunctionReport {
  readonly requestId: string;
  readonly trigger: FunctionEvent;
  readonly registry?: string;
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly outcome: FunctionOutcome;
  /** One line: what happened, the most serious first. */
  readonly headline: string;
  readonly problems: readonly string[];
  readonly notes: readonly string[];
  readonly figures: Figures;
  readonly policy?: 'configured' | 'configured with overrides' | 'emergency';
  readonly dryRun?: boolean;
  readonly plan?: PlanPreview;
  readonly cleanup?: RunReport;
  /** The collection this invocation left running on the host. */
  readonly pendingCommandId?: string;
  readonly collection?: CollectionReport;
  /** The host script's `recover`, run after this invocation's own collection was stopped by SSM. */
  readonly recovery?: Omit<HostRun, 'output'>;
  /** Where the full report was saved. */
  readonly historyLocation?: string;
  /** Where the report was saved as a page for a person to read (HTML). */
  readonly reportPage?: string;
}

/** What the function knows of an invocation beyond what the engine reports. */
export interface Invocation {
  readonly requestId: string;
  readonly trigger: FunctionEvent;
  readonly registry?: string;
  /** Which policy a cycle ran by. */
  readonly policy?: NonNullable<FunctionReport['policy']>;
}

/** The function's report of what the engine did: its headline, figures and notes. */
export function functionReport(invocation: Invocation, report: CleanupReport): FunctionReport {
  const plan = report.dryRun && report.planned ? planPreview(report.planned.plan) : undefined;
  const numbers = figures(report, plan);
  return {
    requestId: invocation.requestId,
    trigger: invocation.trigger,
    outcome: report.outcome,
    headline: headline(invocation.trigger, report, numbers, plan),
    ...(invocation.registry !== undefined ? { registry: invocation.registry } : {}),
    startedAt: report.startedAt,
    durationSeconds: report.durationSeconds,
    figures: numbers,
    problems: report.problems,
    notes: [
      ...(report.skipped !== undefined ? [`skipped: ${report.skipped}`] : []),
      ...(report.nothingToDo !== undefined ? [report.nothingToDo] : []),
      ...report.notes,
      ...hostWarnings(report),
    ],
    ...(report.dryRun !== undefined && invocation.policy !== undefined
      ? { policy: invocation.policy, dryRun: report.dryRun }
      : {}),
    ...(report.collection ? { collection: report.collection } : {}),
    ...(plan ? { plan } : {}),
    ...(report.run ? { cleanup: report.run } : {}),
    ...(report.pendingCommandId !== undefined ? { pendingCommandId: report.pendingCommandId } : {}),
    ...(report.recovery ? { recovery: report.recovery } : {}),
  };
}

/** The report of an invocation that could not start: the configuration is wrong. */
export function configurationFailure(input: {
  readonly requestId: string;
  readonly event: FunctionEvent;
  readonly problems: readonly string[];
  readonly registry?: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
}): FunctionReport {
  const problems = input.problems.map((problem) => `configuration: ${problem}`);
  const report = functionReport(
    {
      requestId: input.requestId,
      trigger: input.event,
      ...(input.registry !== undefined ? { registry: input.registry } : {}),
    },
    {
      startedAt: input.startedAt.toISOString(),
      durationSeconds: secondsBetween(input.startedAt, input.finishedAt),
      outcome: outcomeOf({ problems }),
      problems,
      notes: ['fix the function’s environment variables (the stack sets them) and run it again'],
    },
  );
  return { ...report, headline: `FAILED - misconfigured: ${input.problems[0] ?? 'see the report'}` };
}

function planPreview(plan: Plan): PlanPreview {
  return {
    totals: plan.totals,
    ...(plan.maxDelete ? { maxDelete: plan.maxDelete.limit } : {}),
    reclaim: plan.reclaim,
    failedRepositories: unscanned(plan),
    deletions: plan.repositories
      .filter((r) => r.deletions.length > 0)
      .map((r) => ({
        repository: r.name,
        tags: r.tags.filter((t) => t.decision === 'delete').map((t) => t.tag),
        manifests: r.deletions.reduce((sum, unit) => sum + unit.steps.length, 0),
      })),
  };
}

function figures(report: CleanupReport, plan: PlanPreview | undefined): Figures {
  const cleanup = report.run;
  const measured = [cleanup?.reclaimed.measuredBytes, report.collection?.measuredBytes].filter(
    (n): n is number => n !== undefined,
  );
  const ownRun = cleanup?.garbageCollection.ran ? cleanup.garbageCollection : undefined;
  const disk = (field: string) =>
    summaryNumber(ownRun, field) ?? summaryNumber(report.collection?.run, field);
  const before = disk('diskUsedPercentBefore');
  const after = disk('diskUsedPercentAfter');
  const estimated = cleanup?.reclaimed.estimatedBytes ?? plan?.reclaim.bytes;
  const verifications = [cleanup?.verification, report.collection?.verification].filter(
    (v): v is Verification => v !== undefined,
  );
  const unverified = verifications.reduce((sum, v) => sum + v.unverified.length, 0);
  return {
    manifestsDeleted: cleanup ? manifestsDeleted(cleanup.deletions) : 0,
    ...(measured.length > 0 ? { bytesReclaimed: measured.reduce((a, b) => a + b, 0) } : {}),
    ...(estimated !== undefined ? { bytesEstimated: estimated } : {}),
    ...(before !== undefined ? { diskUsedPercentBefore: before } : {}),
    ...(after !== undefined ? { diskUsedPercentAfter: after } : {}),
    tagsVerified: verifications.reduce((sum, v) => sum + v.tags, 0) - unverified,
    ...(unverified > 0 ? { tagsUnverified: unverified } : {}),
    integrityFailures: verifications.reduce((sum, v) => sum + v.broken.length, 0),
  };
}

function headline(
  trigger: FunctionEvent,
  report: CleanupReport,
  numbers: Figures,
  plan: PlanPreview | undefined,
): string {
  const { outcome } = report;
  if (report.skipped !== undefined) return `skipped: ${report.skipped}`;
  if (outcome === 'nothing to do') return `nothing to do: ${report.nothingToDo}`;
  if (outcome === 'failed') {
    const broken = numbers.integrityFailures;
    const unverified = numbers.tagsUnverified ?? 0;
    if (broken > 0) return `FAILED - ${plural(broken, 'kept image')} broken`;
    if (unverified > 0) {
      return `FAILED - ${unverified} of ${plural(numbers.tagsVerified + unverified, 'kept tag')} not verified before the deadline`;
    }
    return `FAILED - ${report.problems[0] ?? 'see the report'}`;
  }
  const deleted = plural(numbers.manifestsDeleted, 'manifest');
  if (plan) {
    const reclaim = plan.reclaim;
    return `dry run: would delete ${plural(plan.totals.manifestsDeleted, 'manifest')}, freeing ${reclaim.exact ? '' : 'at most '}${formatBytes(reclaim.bytes)}`;
  }
  if (outcome === 'pending') {
    return `${numbers.manifestsDeleted > 0 ? `deleted ${deleted}; ` : ''}garbage collection still running`;
  }
  const freed = numbers.bytesReclaimed;
  if (trigger.kind === 'command-status') {
    return `garbage collection finished: freed ${formatBytes(freed ?? 0)}, ${plural(numbers.tagsVerified, 'kept tag')} verified`;
  }
  if (freed !== undefined && freed > 0) return `freed ${formatBytes(freed)}, deleted ${deleted}`;
  if (numbers.manifestsDeleted > 0) {
    return `deleted ${deleted}; ${formatBytes(numbers.bytesEstimated ?? 0)} frees at the next garbage collection`;
  }
  return 'nothing to delete';
}

/** What the host script warned of (no restart, a Redis blob cache to flush): a person has to act on it. */
function hostWarnings(report: CleanupReport): string[] {
  const gc = report.run?.garbageCollection;
  const summaries = [
    gc?.ran ? gc.summary : undefined,
    report.recovery?.summary,
    report.collection?.run?.summary,
    report.collection?.recovery?.summary,
  ];
  return summaries.flatMap((summary) =>
    typeof summary?.warning === 'string' ? [`garbage collection: ${summary.warning}`] : [],
  );
}
