import { describeError, errorCode } from './error-message.js';
import { createLimit } from './limit.js';
import type {
  Clock,
  HostParams,
  HostResume,
  HostRun,
  HostRunner,
  PendingCollection,
  PendingCollections,
  Registry,
} from './ports.js';
import type { CollectionReport } from './report/function.js';
import {
  selectionTags,
  type TagToVerify,
  type Verification,
  verificationProblems,
  verifyTags,
} from './verify.js';

/** A collection still "running" after this long never reported back (SSM's longest execution timeout is 48 h). */
export const MAX_COLLECTION_MS = 50 * 3_600_000;

/** SSM command statuses of a command that has not ended. */
export const RUNNING_STATUSES: ReadonlySet<string> = new Set([
  'Pending',
  'InProgress',
  'Delayed',
  'Cancelling',
]);

/** What a report needs of a host run; runners may carry more (a stderr tail, SSM's own status). */
export function shownRun(run: HostRun): Omit<HostRun, 'output'> {
  const { output: _, ...shown } = run;
  return shown;
}

/** A number the host script's summary gives, such as `bytesFreed`; undefined when it gave none. */
export function summaryNumber(run: Omit<HostRun, 'output'> | undefined, field: string): number | undefined {
  const value = run?.summary?.[field];
  return typeof value === 'number' ? value : undefined;
}

/** What is wrong with a collection: still running, failed, or without a summary. */
export function collectionProblems(run: HostRun): string[] {
  if (run.state === 'running') {
    return [`garbage collection still running on the host (command ${run.commandId ?? 'unknown'})`];
  }
  const status = run.summary?.status;
  if (status === 'done' || status === 'skipped') return [];
  const reason =
    run.summary?.reason ??
    run.reason ??
    (run.summary ? 'see the host log' : 'the host script printed no summary');
  return [`garbage collection failed (exit ${run.exitCode ?? 'unknown'}): ${reason}`];
}

export interface CollectionCheck {
  readonly verification: Verification;
  /** Broken kept images first, then kept tags left unverified, then what went wrong with the collection. */
  readonly problems: readonly string[];
  readonly measuredBytes?: number;
}

/** Once a collection's command has ended: verifies the given tags, and tells its problems and the bytes it freed. */
export async function checkCollection(
  registry: Registry,
  run: HostRun,
  tags: readonly TagToVerify[],
): Promise<CollectionCheck> {
  const verification = await verifyTags(registry, tags);
  const problems = [...verificationProblems(verification), ...collectionProblems(run)];
  const measuredBytes = summaryNumber(run, 'bytesFreed');
  return { verification, problems, ...(measuredBytes !== undefined ? { measuredBytes } : {}) };
}

/** What an ended or checked collection adds to a report. */
export interface Settled {
  readonly report?: CollectionReport;
  readonly problems: readonly string[];
  readonly notes: readonly string[];
  /** Why no new collection may start now. */
  readonly blockedBy?: string;
}

export interface Recovery {
  readonly run?: Omit<HostRun, 'output'>;
  readonly problems: readonly string[];
  readonly notes: readonly string[];
}

/**
 * After a collection that SSM stopped (execution timeout or cancel), which killed the host script before it
 * reported: the script's detached watchdog normally brought the registry back already. The host script's
 * `recover` makes sure of it (a watchdog killed too, a failed start) before anything is verified.
 */
export async function recoverAfter(host: HostRunner, params: HostParams, which: string): Promise<Recovery> {
  const interrupted = `${which} was stopped by SSM before it finished`;
  let run: HostRun;
  try {
    run = await host.run('recover', params);
  } catch (error) {
    return {
      problems: [`${interrupted}, and recover could not be started on the host: ${describeError(error)}`],
      notes: [],
    };
  }
  const shown = shownRun(run);
  const summary = run.summary?.action === 'recover' ? run.summary : undefined;
  if (run.state === 'finished' && summary && summary.status !== 'failed') {
    const said = summary.reason ?? summary.status;
    return {
      run: shown,
      problems: [],
      notes: [
        summary.status === 'done'
          ? `${interrupted}; recover: ${said}`
          : `${interrupted}; recover found nothing to do: ${said}`,
      ],
    };
  }
  const reason =
    summary?.reason ??
    run.reason ??
    (run.state === 'running' ? 'it is still running on the host' : 'it printed no summary');
  return {
    run: shown,
    problems: [`${interrupted}, and recover failed, so the registry may not be serving: ${reason}`],
    notes: [],
  };
}

/** Remembers a collection left running, so that its status-change event or the next run verifies it. */
export async function recordPending(
  store: PendingCollections | undefined,
  record: PendingCollection,
): Promise<{ readonly note?: string; readonly problem?: string }> {
  const running = `garbage collection is still running on the host (command ${record.commandId})`;
  if (!store) {
    return {
      note: `${running}; with no output bucket to remember it, its status-change event verifies every tag when it ends`,
    };
  }
  try {
    await store.write(record);
    return {
      note: `${running}; its status-change event, or the next run, verifies the kept images when it ends`,
    };
  } catch (error) {
    return { problem: `${running} and could not be recorded for verification: ${describeError(error)}` };
  }
}

export interface SettlePorts {
  readonly registry: Registry;
  readonly store: PendingCollections;
  /** Runs `recover` after a collection SSM stopped. */
  readonly host: HostRunner;
  readonly resume: HostResume;
  readonly clock: Clock;
}

/**
 * The collection an earlier run left running, if the store records one: checked, and once ended verified and
 * forgotten. Undefined when nothing is recorded.
 */
export async function settlePending(
  ports: SettlePorts,
  params: HostParams,
  waitMs: number | undefined,
): Promise<Settled | undefined> {
  let record: PendingCollection | undefined;
  try {
    record = await ports.store.read();
  } catch (error) {
    return {
      problems: [`the record of an unfinished collection could not be read: ${describeError(error)}`],
      notes: [],
      blockedBy: 'the record of an unfinished collection could not be read',
    };
  }
  return record ? settle(ports, params, record, waitMs) : undefined;
}

/** Checks a recorded collection; once it has ended, verifies the tags it recorded and forgets it. */
export async function settle(
  ports: SettlePorts,
  params: HostParams,
  record: PendingCollection,
  waitMs: number | undefined,
): Promise<Settled> {
  const which = `the collection started ${record.startedAt} (command ${record.commandId})`;
  const known = { commandId: record.commandId, startedAt: record.startedAt };
  const forget = async (): Promise<string[]> => {
    try {
      await ports.store.write(undefined);
      return [];
    } catch (error) {
      return [`${which} was settled but its record could not be removed: ${describeError(error)}`];
    }
  };
  let run: HostRun;
  try {
    run = await ports.resume.resume(record.commandId, waitMs);
  } catch (error) {
    const problem = `${which} could not be checked: ${describeError(error)}`;
    if (errorCode(error) === 'RJ_SSM_UNKNOWN_COMMAND') {
      return { report: { ...known, state: 'unknown' }, problems: [problem, ...(await forget())], notes: [] };
    }
    return {
      report: { ...known, state: 'unknown' },
      problems: [problem],
      notes: [],
      blockedBy: `${which} could not be checked`,
    };
  }
  const shown = shownRun(run);
  if (run.state === 'running') {
    if (ports.clock.now().getTime() - Date.parse(record.startedAt) > MAX_COLLECTION_MS) {
      return {
        report: { ...known, state: 'unknown', run: shown },
        problems: [`${which} never reported an end; its kept images were not verified`, ...(await forget())],
        notes: [],
      };
    }
    return {
      report: { ...known, state: 'running', run: shown },
      problems: [],
      notes: [],
      blockedBy: `${which} is still running`,
    };
  }
  const recovery = run.interrupted ? await recoverAfter(ports.host, params, which) : undefined;
  const { present, removed } = await stillListed(ports.registry, record.keptTags);
  const check = await checkCollection(ports.registry, run, present);
  return {
    report: {
      ...collectionReport(known, shown, check, removed),
      ...(recovery?.run ? { recovery: recovery.run } : {}),
    },
    problems: [...check.problems, ...(recovery?.problems ?? []), ...(await forget())],
    notes: recovery?.notes ?? [],
  };
}

/**
 * A collection no store recorded, once its status-change event says it ended: every tag of the selected
 * repositories is verified, since nothing says which were kept.
 */
export async function settleUnrecorded(
  ports: { registry(): Promise<Registry>; readonly host: HostRunner },
  params: HostParams,
  selection: { readonly include: readonly string[]; readonly exclude: readonly string[] },
  commandId: string,
  run: HostRun,
): Promise<Settled> {
  const shown = shownRun(run);
  if (run.state === 'running') {
    return { report: { commandId, state: 'running', run: shown }, problems: [], notes: [] };
  }
  const recovery = run.interrupted
    ? await recoverAfter(ports.host, params, `command ${commandId}`)
    : undefined;
  const registry = await ports.registry();
  const { tags } = await selectionTags(registry, selection.include, selection.exclude);
  const check = await checkCollection(registry, run, tags);
  return {
    report: {
      ...collectionReport({ commandId }, shown, check, 0),
      ...(recovery?.run ? { recovery: recovery.run } : {}),
    },
    problems: [...check.problems, ...(recovery?.problems ?? [])],
    notes: [
      ...(recovery?.notes ?? []),
      'no output bucket records the kept tags, so every tag of the selected repositories was verified',
    ],
  };
}

function collectionReport(
  known: { commandId: string; startedAt?: string },
  run: Omit<HostRun, 'output'>,
  check: CollectionCheck,
  removed: number,
): CollectionReport {
  return {
    ...known,
    state: 'finished',
    run,
    verification: check.verification,
    ...(check.measuredBytes !== undefined ? { measuredBytes: check.measuredBytes } : {}),
    ...(removed > 0 ? { tagsRemovedSince: removed } : {}),
  };
}

/** The recorded tags the registry still lists; a tag removed since is not a broken image. */
async function stillListed(
  registry: Registry,
  tags: readonly TagToVerify[],
): Promise<{ present: TagToVerify[]; removed: number }> {
  const limit = createLimit(registry.concurrency);
  const repositories = [...new Set(tags.map((t) => t.repository))];
  const listed = new Map<string, Set<string> | undefined>();
  await Promise.all(
    repositories.map(async (repository) => {
      try {
        listed.set(repository, new Set(await limit(() => registry.listTags(repository))));
      } catch {
        // Unlisted: every recorded tag is verified, and verification says what is wrong.
        listed.set(repository, undefined);
      }
    }),
  );
  const present = tags.filter((t) => listed.get(t.repository)?.has(t.tag) ?? true);
  return { present, removed: tags.length - present.length };
}
