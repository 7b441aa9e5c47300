import { z } from 'zod';
import { isDigest, isRepositoryName, isTagName } from './names.js';
import type { Plan } from './plan.js';

const digest = z.string().refine(isDigest, 'expected a sha256 digest');
const tag = z.string().refine(isTagName, 'expected a valid tag name');
const decision = z.enum(['keep', 'delete']);

const savedPlanSchema = z.object({
  version: z.literal(1),
  registry: z.string(),
  createdAt: z.iso.datetime(),
  repositories: z.array(
    z.object({
      name: z.string().refine(isRepositoryName, 'expected a valid repository name'),
      rule: z.string(),
      error: z.string().optional(),
      tags: z.array(z.object({ tag, digest, decision, reason: z.string() })),
      manifests: z.array(
        z.object({
          digest,
          kind: z.enum(['image', 'index']),
          role: z.enum(['image', 'child', 'referrer', 'untagged']),
          tags: z.array(tag),
          decision,
          reason: z.string(),
          time: z.object({ at: z.string(), source: z.enum(['pushed', 'created']) }).optional(),
          warnings: z.array(z.string()).optional(),
        }),
      ),
      deletions: z.array(
        z.object({ root: digest, steps: z.array(z.object({ digest, tags: z.array(tag) })).min(1) }),
      ),
    }),
  ),
  totals: z.object({
    repositories: z.number(),
    repositoriesFailed: z.number(),
    tagsKept: z.number(),
    tagsDeleted: z.number(),
    manifestsKept: z.number(),
    manifestsDeleted: z.number(),
  }),
  reclaim: z.object({
    bytes: z.number(),
    blobs: z.number(),
    exact: z.boolean(),
    caveats: z.array(z.string()),
    unreferencedBytes: z.number().optional(),
  }),
  deletes: z
    .object({
      status: z.enum(['allowed', 'disabled', 'read-only', 'denied', 'unknown']),
      repository: z.string(),
      problem: z.string().optional(),
      fix: z.string().optional(),
    })
    .optional(),
  maxDelete: z
    .object({ limit: z.number().int().min(0), setting: z.string().regex(/^[-A-Za-z]{1,32}$/) })
    .optional(),
});

export class SavedPlanError extends Error {
  override readonly name = 'SavedPlanError';
}

/** Reads a plan written by `plan --json`; every name in it is checked before anything acts on it. */
export function parseSavedPlan(json: unknown, label: string): Plan {
  const parsed = savedPlanSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SavedPlanError(
      `${label} is not a plan written by \`registry-janitor plan --json\` (${issue?.path.join('.') || 'top level'}: ${issue?.message})`,
    );
  }
  return parsed.data as Plan;
}
