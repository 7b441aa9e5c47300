import type { MaxDelete, Plan } from './domain/plan.js';
import type { Policy } from './domain/policy.js';
import type { HostParams } from './ports.js';

/** The repositories a run looks at: globs to include (none: all) and to exclude. */
export interface Selection {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

/** A selection to plan now, by a policy. */
export interface PlanRequest extends Selection {
  readonly policy: Policy;
  /** The most manifests the run may delete; the plan records it. */
  readonly maxDelete?: MaxDelete;
}

/** The whole cycle: plan, delete (or only preview), collect garbage on the host, verify. */
export interface CycleRequest {
  readonly kind: 'cycle';
  /** What to clean: a selection to plan now, or a plan made (and shown) before. */
  readonly plan: PlanRequest | { readonly planned: Plan };
  /** Plan and preview only: nothing is deleted or collected. */
  readonly dryRun?: boolean;
  /** The host script's parameters, to collect and to recover; without them nothing runs on the host. */
  readonly host?: HostParams;
  /** Collect garbage after deleting. @default true when `host` is given */
  readonly collect?: boolean;
  /**
   * Collect even when nothing was deleted and the storage showed no unreferenced blob (or was not read):
   * a collection that failed earlier left garbage that only the host can see.
   */
  readonly collectAlways?: boolean;
  /** Names the run in the run lease and in the record of a collection it leaves running. */
  readonly requestId?: string;
  /** When the run ends at the latest; a run lease it takes expires then. */
  readonly deadline?: Date;
}

/** A host command's status-change event: the collection it ran has ended, or says where it is. */
export interface CommandStatusRequest {
  readonly kind: 'command-status';
  readonly commandId: string;
  readonly status: string;
  readonly documentName?: string;
  /** The host script action, when the event carries the document's parameters. */
  readonly action?: string;
  /** Verified when no record says which tags were kept. */
  readonly selection: Selection;
  readonly host: HostParams;
  readonly requestId?: string;
  readonly deadline?: Date;
}

/** An event that asks for nothing: an alarm back to OK, another alarm. */
export interface NothingToDoRequest {
  readonly kind: 'nothing to do';
  readonly reason: string;
}

/** A request that cannot be carried out (an override the policy refuses): its reasons are the report's problems. */
export interface RejectedRequest {
  readonly kind: 'rejected';
  readonly problems: readonly string[];
}

export type CleanupRequest = CycleRequest | CommandStatusRequest | NothingToDoRequest | RejectedRequest;
