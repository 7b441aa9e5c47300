import picomatch from 'picomatch';
import { z } from 'zod';

/** `0`, or a number with a unit: s, m, h, d or w. */
export const DURATION = /^(?:0|\d+(?:\.\d+)?[smhdw])$/;
const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `0`, `90m`, `2h`, `7d`, `2w` → milliseconds; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) return undefined;
  if (trimmed === '0') return 0;
  const unit = trimmed.slice(-1);
  return Math.round(Number(trimmed.slice(0, -1)) * (UNIT_MS[unit] ?? 0));
}

/** Milliseconds → the largest whole unit that fits: `9d`, `5h`, `42m`, `12s`. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  for (const unit of ['d', 'h', 'm'] as const) {
    const size = UNIT_MS[unit] ?? 1;
    if (abs >= size) return `${Math.floor(abs / size)}${unit}`;
  }
  return `${Math.floor(abs / 1000)}s`;
}

const durationField = z.string().regex(DURATION, 'expected a duration such as 0, 90m, 2h or 7d');

const regexField = z.string().superRefine((value, ctx) => {
  try {
    new RegExp(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(error as Error).message}` });
  }
});

const ruleFields = {
  keepLast: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('Keep the N most recent images (distinct digests, not tag names). 0 keeps none by count.'),
  keepDays: z.number().min(0).optional().describe('Keep every image pushed less than this many days ago.'),
  keepTags: z
    .array(regexField)
    .optional()
    .describe(
      'Keep every tag matching one of these regular expressions (JavaScript syntax), e.g. "^latest$".',
    ),
  untaggedGrace: durationField
    .optional()
    .describe('Untagged manifests younger than this are left alone (a multi-arch push uploads them first).'),
  protect: z.boolean().optional().describe('Keep everything in the matching repositories.'),
};

export const ruleSchema = z.strictObject(ruleFields);

export const policyFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    defaults: ruleSchema.optional().describe('The rule for repositories no entry of "rules" matches.'),
    rules: z
      .array(
        z.strictObject({
          repositories: z
            .array(z.string().min(1))
            .min(1)
            .describe('Repository globs: * stays within a path segment, ** crosses segments.'),
          ...ruleFields,
        }),
      )
      .optional()
      .describe(
        'Per-repository rules; the first whose globs match a repository applies. Unset fields come from defaults.',
      ),
  })
  .describe('registry-janitor retention policy');

export type RuleInput = z.infer<typeof ruleSchema>;
export type PolicyFile = z.infer<typeof policyFileSchema>;

/** A rule with every field settled; what planning one repository needs. */
export interface Rule {
  readonly keepLast?: number;
  readonly keepDays?: number;
  readonly keepTags: readonly string[];
  readonly untaggedGraceMs: number;
  readonly protect: boolean;
  /** Where the rule came from: `defaults` or `rules[2]`. */
  readonly source: string;
}

export interface Policy {
  readonly defaults: Rule;
  readonly rules: readonly { readonly repositories: readonly string[]; readonly rule: Rule }[];
}

export const DEFAULT_UNTAGGED_GRACE = '24h';

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

function formatIssues(issues: readonly z.core.$ZodIssue[], prefix: string): string[] {
  return issues.map((issue) => {
    const path = issue.path.reduce<string>(
      (text, key) =>
        typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key),
      '',
    );
    return `${prefix}${path || '(top level)'}: ${issue.message}`;
  });
}

function settle(input: RuleInput, base: Partial<Rule> & { untaggedGraceMs: number }, source: string): Rule {
  return {
    keepLast: input.keepLast ?? base.keepLast,
    keepDays: input.keepDays ?? base.keepDays,
    keepTags: input.keepTags ?? base.keepTags ?? [],
    untaggedGraceMs:
      input.untaggedGrace !== undefined ? (parseDuration(input.untaggedGrace) ?? 0) : base.untaggedGraceMs,
    protect: input.protect ?? base.protect ?? false,
    source,
  };
}

/**
 * Builds the policy from a policy file (already parsed JSON, or undefined) and the rule given on the command
 * line, which overrides the file's defaults field by field. Every problem is listed at once.
 */
export function buildPolicy(file: unknown, flags: RuleInput, fileLabel = 'policy file'): Policy {
  const problems: string[] = [];
  const parsedFlags = ruleSchema.safeParse(flags);
  if (!parsedFlags.success) problems.push(...formatIssues(parsedFlags.error.issues, 'option '));
  let parsedFile: PolicyFile = {};
  if (file !== undefined) {
    const result = policyFileSchema.safeParse(file);
    if (result.success) parsedFile = result.data;
    else problems.push(...formatIssues(result.error.issues, `${fileLabel}: `));
  }
  if (problems.length > 0) throw new PolicyError(problems);

  const flagRule = Object.fromEntries(
    Object.entries(parsedFlags.data ?? {}).filter(([, value]) => value !== undefined),
  ) as RuleInput;
  const defaultsInput: RuleInput = { ...parsedFile.defaults, ...flagRule };
  const defaults = settle(
    defaultsInput,
    { untaggedGraceMs: parseDuration(DEFAULT_UNTAGGED_GRACE) ?? 0 },
    'defaults',
  );
  if (!hasRetention(defaults)) {
    throw new PolicyError([
      'no retention rule: give --keep-last, --keep-days or --keep-tag (or "defaults" in the policy file); ' +
        'use --keep-last 0 to keep nothing by count on purpose',
    ]);
  }
  const rules = (parsedFile.rules ?? []).map(({ repositories, ...rule }, index) => ({
    repositories,
    rule: settle(rule, defaults, `rules[${index}]`),
  }));
  return { defaults, rules };
}

function hasRetention(rule: Rule): boolean {
  return (
    rule.protect || rule.keepLast !== undefined || rule.keepDays !== undefined || rule.keepTags.length > 0
  );
}

/** The rule that applies to a repository: the first matching entry of `rules`, else the defaults. */
export function ruleFor(policy: Policy, repository: string): Rule {
  for (const entry of policy.rules) {
    if (picomatch.isMatch(repository, entry.repositories as string[])) return entry.rule;
  }
  return policy.defaults;
}

/** A one-line account of a rule, for plans and reports. */
export function describeRule(rule: Rule): string {
  if (rule.protect) return `${rule.source}: protected`;
  const parts: string[] = [];
  if (rule.keepLast !== undefined) parts.push(`keep last ${rule.keepLast}`);
  if (rule.keepDays !== undefined) parts.push(`keep ${rule.keepDays}d`);
  if (rule.keepTags.length > 0) parts.push(`keep tags ${rule.keepTags.map((tag) => `/${tag}/`).join(' ')}`);
  parts.push(`untagged grace ${formatDuration(rule.untaggedGraceMs)}`);
  return `${rule.source}: ${parts.join(', ')}`;
}
