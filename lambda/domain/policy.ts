import picomatch from 'picomatch';
import { z } from 'zod';
import { compileTagPattern, type TagPattern } from './pattern.js';
import { DAY_MS, duration, formatDuration, type Quantity, wholeNumber } from './quantity.js';

export const KEEP_LAST = wholeNumber({ example: '10' });
export const KEEP_DAYS = duration({ unit: 'd', examples: ['30', '36h', '2w'] });
export const UNTAGGED_GRACE = duration({ examples: ['0', '90m', '2h', '7d'] });
export const DEFAULT_UNTAGGED_GRACE = '24h';

/** The value of an input already checked against its quantity. */
function checkedValue(quantity: Quantity, input: unknown): number {
  const reading = quantity.read(input);
  if (!reading.ok) throw new Error(`unchecked policy value: ${reading.problem}`);
  return reading.value;
}

/** A field read by a quantity from the JSON types `base` takes, with its message for any other value. */
function quantityField<T extends z.ZodType>(
  base: (error: (issue: { input?: unknown }) => string) => T,
  quantity: Quantity,
  json: Record<string, unknown>,
) {
  return base((issue) => quantity.refuse(issue.input))
    .superRefine((value, ctx) => {
      const reading = quantity.read(value);
      if (!reading.ok) ctx.addIssue({ code: 'custom', message: reading.problem });
    })
    .meta(json);
}

const numberOrText = (error: (issue: { input?: unknown }) => string) =>
  z.union([z.number(), z.string()], { error });

export const keepLastField = quantityField((error) => z.number({ error }), KEEP_LAST, {
  type: 'integer',
  minimum: 0,
});
export const keepDaysField = quantityField(numberOrText, KEEP_DAYS, {
  anyOf: [
    { type: 'number', minimum: 0 },
    { type: 'string', pattern: KEEP_DAYS.pattern },
  ],
});
export const untaggedGraceField = quantityField(numberOrText, UNTAGGED_GRACE, {
  anyOf: [{ const: 0 }, { type: 'string', pattern: UNTAGGED_GRACE.pattern }],
});
export const tagPatternField = z.string().superRefine((value, ctx) => {
  const reading = compileTagPattern(value);
  if (!reading.ok) ctx.addIssue({ code: 'custom', message: reading.problem });
});

const ruleFields = {
  keepLast: keepLastField
    .optional()
    .describe('Keep the N most recent images (distinct digests, not tag names). 0 keeps none by count.'),
  keepDays: keepDaysField
    .optional()
    .describe(
      'Keep every image pushed less than this many days ago: 30, or a duration such as "36h" or "2w".',
    ),
  keepTags: z
    .array(tagPatternField)
    .optional()
    .describe(
      'Keep every tag matching one of these regular expressions (RE2 syntax: no lookaround or backreferences), e.g. "^latest$".',
    ),
  untaggedGrace: untaggedGraceField
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
  readonly keepTags: readonly TagPattern[];
  readonly untaggedGraceMs: number;
  readonly protect: boolean;
  /** Where the rule came from: `defaults` or `rules[2]`. */
  readonly source: string;
}

export interface Policy {
  readonly defaults: Rule;
  readonly rules: readonly { readonly repositories: readonly string[]; readonly rule: Rule }[];
}

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
    keepDays: input.keepDays !== undefined ? checkedValue(KEEP_DAYS, input.keepDays) / DAY_MS : base.keepDays,
    keepTags: input.keepTags?.map(compiled) ?? base.keepTags ?? [],
    untaggedGraceMs:
      input.untaggedGrace !== undefined
        ? checkedValue(UNTAGGED_GRACE, input.untaggedGrace)
        : base.untaggedGraceMs,
    protect: input.protect ?? base.protect ?? false,
    source,
  };
}

function compiled(source: string): TagPattern {
  const reading = compileTagPattern(source);
  if (!reading.ok) throw new Error(`unchecked tag pattern: ${reading.problem}`);
  return reading.pattern;
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
    { untaggedGraceMs: checkedValue(UNTAGGED_GRACE, DEFAULT_UNTAGGED_GRACE) },
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
  if (rule.keepTags.length > 0)
    parts.push(`keep tags ${rule.keepTags.map((tag) => `/${tag.source}/`).join(' ')}`);
  parts.push(`untagged grace ${formatDuration(rule.untaggedGraceMs)}`);
  return `${rule.source}: ${parts.join(', ')}`;
}
