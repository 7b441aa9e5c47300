import { z } from 'zod';
import type { HostSummary } from '../ports.js';

const count = z.number().int().nonnegative();
const common = {
  registryJanitor: z.literal(1),
  status: z.enum(['done', 'skipped', 'failed']),
  reason: z.string().optional(),
  durationSeconds: count,
};

const inventorySummary = z
  .looseObject({
    ...common,
    action: z.literal('inventory'),
    repositories: count.optional(),
    revisions: count.optional(),
    tags: count.optional(),
    manifests: count.optional(),
    archiveLines: count.optional(),
    ignored: count.optional(),
  })
  .refine(
    (s) =>
      s.status !== 'done' ||
      (s.repositories !== undefined && s.revisions !== undefined && s.tags !== undefined),
    { message: 'a done inventory counts its repositories, revisions and tags' },
  );

const collectSummary = z.looseObject({
  ...common,
  action: z.literal('collect'),
  warning: z.string().optional(),
  mode: z.enum(['online', 'stopped']),
  version: z
    .string()
    .regex(/^[0-9]+\.[0-9]+\.[0-9]+$/)
    .nullable(),
  blobsMarked: count.nullable(),
  blobsDeleted: count.nullable(),
  manifestsDeleted: count.nullable(),
  bytesBefore: count.nullable(),
  bytesAfter: count.nullable(),
  bytesFreed: count.nullable(),
  diskUsedPercentBefore: count.max(100).nullable(),
  diskUsedPercentAfter: count.max(100).nullable(),
  restarted: z.boolean(),
  gcExitCode: z.number().int().nullable(),
  log: z.string().nullable(),
});

const recoverSummary = z.looseObject({
  ...common,
  action: z.literal('recover'),
  status: z.enum(['done', 'nothing to do', 'failed']),
  reason: z.string(),
  warning: z.string().optional(),
  restarted: z.boolean(),
  log: z.string().nullable(),
});

/** What the script prints when it refuses an input (exit 2), before it knows anything else. */
const inputFailure = z.looseObject({
  ...common,
  action: z.enum(['inventory', 'collect', 'recover']),
  status: z.literal('failed'),
  reason: z.string(),
  variable: z.string().optional(),
});

function validate(found: Record<string, unknown>): { summary: HostSummary } | { problem: string } {
  let parsed: z.ZodSafeParseResult<HostSummary>;
  if (found.action === 'inventory') parsed = inventorySummary.safeParse(found);
  else if (found.action === 'collect' || found.action === 'recover') {
    const failure = inputFailure.safeParse(found);
    const own = found.action === 'collect' ? collectSummary : recoverSummary;
    parsed = failure.success && !('restarted' in found) ? failure : own.safeParse(found);
  } else return { problem: `the summary line names no known action: ${JSON.stringify(found.action)}` };
  if (parsed.success) return { summary: parsed.data };
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(line)'}: ${i.message}`);
  return { problem: `the summary line is not valid: ${issues.join('; ')}` };
}

export interface ParsedHostOutput {
  readonly summary?: HostSummary;
  /** Everything before the summary line; all of stdout when there is no valid summary. */
  readonly output: string;
  /** Why the last `registryJanitor` line was not accepted as a summary. */
  readonly problem?: string;
}

function candidate(line: string): Record<string, unknown> | undefined {
  const text = line.trim();
  if (!text.startsWith('{') || !text.endsWith('}')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (
      typeof value === 'object' &&
      value !== null &&
      (value as { registryJanitor?: unknown }).registryJanitor === 1
    ) {
      return value as Record<string, unknown>;
    }
  } catch {
    // not JSON: an ordinary output line
  }
  return undefined;
}

/** Splits the host script's stdout into its output and its summary, the last `registryJanitor` line. */
export function parseHostOutput(stdout: string): ParsedHostOutput {
  let end = stdout.length;
  while (end > 0) {
    const start = stdout.lastIndexOf('\n', end - 1) + 1;
    const line = stdout.slice(start, end);
    const found = candidate(line);
    if (found) {
      const checked = validate(found);
      if ('problem' in checked) return { output: stdout, problem: checked.problem };
      return { summary: checked.summary, output: stdout.slice(0, start) };
    }
    end = start - 1;
  }
  return { output: stdout };
}
