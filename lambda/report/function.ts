import type { FunctionEvent } from '../aws/events.js';
import type { RunReport } from '../cleanup.js';
import type { PlanTotals } from '../domain/plan.js';
import type { Reclaim } from '../domain/reclaim.js';
import type { HostRun } from '../ports.js';
import type { Verification } from '../verify.js';

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
