import { z } from 'zod';
import type { Manifest } from './domain/inventory.js';
import { type Digest, isRepositoryName, isTagName } from './domain/names.js';
import type { DeleteCheck, Plan } from './domain/plan.js';
import type { Usage } from './domain/usage.js';
import { SSM_COMMAND_ID } from './identifiers.js';
import type { FunctionReport } from './report/function.js';

/** A manifest as the registry served it; the digest is checked against the body's sha256. */
export interface FetchedManifest {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly body: Uint8Array;
}

export type DeleteOutcome = 'deleted' | 'already-gone';

/** The registry's HTTP API, sized to what the scan, the cleanup and the verification call. */
export interface Registry {
  /** The registry's origin, `https://registry.internal:5000`: how plans and reports name it. */
  readonly origin: string;
  /** Requests the client lets run at once; callers queue theirs behind the same number. */
  readonly concurrency: number;
  /** Every repository in the catalog, following pagination. Invalid names are reported through onInvalid. */
  listRepositories(): Promise<string[]>;
  /** Every tag of a repository (empty when the registry says `null`), following pagination. */
  listTags(repository: string): Promise<string[]>;
  /** GET a manifest by tag or digest with every manifest media type accepted. Undefined on 404. */
  getManifest(repository: string, reference: string): Promise<FetchedManifest | undefined>;
  /** HEAD a manifest by tag or digest; the digest it resolves to, undefined on 404. */
  resolveManifest(repository: string, reference: string): Promise<Digest | undefined>;
  /** GET a blob (an image config), at most maxBytes; the digest is checked. */
  getBlob(repository: string, digest: Digest, maxBytes: number): Promise<Uint8Array>;
  /** HEAD a blob: its size, undefined on 404. */
  statBlob(repository: string, digest: Digest): Promise<number | undefined>;
  /** DELETE a manifest by digest. Throws DeleteRefusedError on 405. */
  deleteManifest(repository: string, digest: Digest): Promise<DeleteOutcome>;
  /**
   * Whether a manifest DELETE in this repository would be carried out, told by deleting a digest no manifest
   * can have: deletes enabled, disabled, refused in read-only mode, or not granted to the account.
   */
  checkDeletes(repository: string): Promise<DeleteCheck>;
}

export interface StoredRevision {
  readonly digest: Digest;
  readonly pushedAt: string;
}

export interface StoredTag {
  readonly name: string;
  readonly digest: Digest;
  readonly pushedAt: string;
}

export interface StoredRepository {
  readonly revisions: readonly StoredRevision[];
  readonly tags: readonly StoredTag[];
}

/** The storage half of the scan: manifest revisions (tagged or not) and their push times. */
export interface StorageLister {
  /** How messages name this storage, as it was given: `--storage-root /srv/registry`. */
  readonly label?: string;
  /** What to do when the storage turns out to be another registry's, or a stale copy. */
  readonly mismatchFix?: string;
  list(): Promise<Map<string, StoredRepository>>;
  /** Every blob in storage with its size, where the lister can see them: tells what GC frees beyond the plan. */
  listBlobs?(): Promise<Map<Digest, number>>;
  /**
   * A manifest's blob read from storage, checked against its digest and parsed; undefined when storage holds no
   * such blob. With it the scan reads no manifest through the API. Throws when the blob is not that manifest.
   */
  readManifest?(digest: Digest): Promise<Manifest | undefined>;
  /**
   * A blob (an image config) read from storage, at most maxBytes, checked against its digest; undefined when
   * absent, and the scan then asks the API for it.
   */
  readBlob?(digest: Digest, maxBytes: number): Promise<Uint8Array | undefined>;
}

export interface Clock {
  now(): Date;
}

/** Progress for a person watching a long run; the engine never prints. */
export interface Progress {
  update(message: string): void;
}

/** Parameters of the host script; each is validated by the script itself too. */
export interface HostParams {
  readonly container?: string;
  readonly registryBinary?: string;
  readonly registryConfig?: string;
  readonly storageRoot?: string;
  readonly gcMode?: 'online' | 'stopped';
  readonly restart?: boolean;
  readonly registryPort?: number;
  readonly uploadWaitSeconds?: number;
  readonly uploadRecentMinutes?: number;
  readonly pollSeconds?: number;
  readonly readySeconds?: number;
  readonly lockFile?: string;
  readonly logDir?: string;
}

export type HostAction = 'inventory' | 'collect' | 'recover';

/** The host script's last stdout line, parsed. Counts the garbage collector did not print are null. */
export interface HostSummary {
  readonly action: HostAction;
  readonly status: 'done' | 'skipped' | 'failed' | 'nothing to do';
  readonly reason?: string;
  readonly [field: string]: unknown;
}

export interface HostRun {
  /** `running`: the command outlived the runner's deadline; `commandId` lets a later run pick it up. */
  readonly state: 'finished' | 'running';
  readonly exitCode?: number;
  readonly summary?: HostSummary;
  /** Everything the script printed before its summary (the inventory lines), when the runner could get it all. */
  readonly output?: string;
  readonly commandId?: string;
  /** Why the run did not produce a usable result, when the runner knows. */
  readonly reason?: string;
  /**
   * The script's supervisor stopped it before it finished (SSM's execution timeout or a cancel, the local
   * runner's timeout or abort): the registry may need the `recover` action.
   */
  readonly interrupted?: true;
}

/** Runs the host script: here with bash, or on an instance through SSM Run Command. */
export interface HostRunner {
  run(action: HostAction, params: HostParams): Promise<HostRun>;
}

/** Picks up a host command an earlier invocation left running. */
export interface HostResume {
  /** The SSM document the commands run, as status-change events name it. */
  readonly documentName: string;
  /** Waits at most `waitMs` (default: as long as a collection may be waited for) for the command to end. */
  resume(commandId: string, waitMs?: number): Promise<HostRun>;
}

/** The host script on the registry host: run an action, or pick up a command an earlier invocation left running. */
export interface HostCommands extends HostRunner, HostResume {}

export const pendingCollectionSchema = z.object({
  commandId: z.string().regex(SSM_COMMAND_ID),
  startedAt: z.iso.datetime(),
  requestId: z.string().max(256),
  registry: z.string().max(2048),
  keptTags: z.array(
    z.object({
      repository: z.string().refine(isRepositoryName, 'not a repository name'),
      tag: z.string().refine(isTagName, 'not a tag name'),
    }),
  ),
});

/** A collection an invocation left running, with the tags to verify once it ends. */
export type PendingCollection = z.infer<typeof pendingCollectionSchema>;

/**
 * A stored record read back: the record, or why the text `where` names is none, with the fix, for every store
 * to throw in its own error.
 */
export function parsePendingCollection(text: string, where: string): PendingCollection | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = pendingCollectionSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  const why = json === undefined ? 'not JSON' : `${field}${issue?.message ?? 'invalid'}`;
  return {
    problem: `${where} is not a pending-collection record (${why}): delete it, and verify the registry with registry-janitor verify`,
  };
}

/** Where a collection left running is remembered; at most one at a time. */
export interface PendingCollections {
  read(): Promise<PendingCollection | undefined>;
  write(record: PendingCollection | undefined): Promise<void>;
}

/** Who holds the run lease, and until when at the latest. */
export interface LeaseRecord {
  readonly requestId: string;
  readonly acquiredAt: string;
  readonly expiresAt: string;
}

export type LeaseOutcome =
  | {
      readonly acquired: true;
      /** An expired lease this one replaced: its invocation ended without giving it back. */
      readonly replaced?: LeaseRecord;
      release(): Promise<void>;
    }
  | { readonly acquired: false; readonly heldBy?: LeaseRecord };

/** Keeps runs from overlapping when nothing else does (the function's concurrency is not reserved). */
export interface RunLease {
  acquire(record: LeaseRecord): Promise<LeaseOutcome>;
}

/** What the report's page shows beyond the report: every decision with its reason, the space per repository. */
export interface RunDetails {
  readonly plan: Plan;
  readonly usage: Usage;
}

/** Saves the full report, and its page for a person. Answers where each went. */
export interface RunArchive {
  save(
    report: FunctionReport,
    details?: RunDetails,
  ): Promise<{ readonly report: string; readonly page?: string }>;
}

export interface Notifier {
  notify(report: FunctionReport): Promise<void>;
}

export interface Metrics {
  publish(report: FunctionReport): void;
}
