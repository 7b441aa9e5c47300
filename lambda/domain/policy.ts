import picomatch from 'picomatch';
import { z } from 'zod';
import { compileTagPattern, type TagPattern } from './pattern.js';
import { DAY_MS, duration, formatDuration, type Quantity, shown, wholeNumber } from './quantity.js';

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
export const tagPatternField = z
  .string({ error: (issue) => `expected an RE2 regular expression such as "^v1", got ${shown(issue.input)}` })
  .superRefine((value, ctx) => {
    const reading = compileTagPattern(value);
    if (!reading.ok) ctx.addIssue({ code: 'custom', message: reading.problem });
  });

const GROUP_NEEDS_RETENTION =
  'a group keeps its images by keepLast or keepDays: give one (keepLast 0 keeps none of them by count)';

export const groupSchema = z
  .strictObject({
    tags: tagPatternField.describe(
      'An image belongs to the group when one of its tags matches this RE2 regular expression, e.g. "^rc-".',
    ),
    keepLast: keepLastField.optional().describe('Keep the N most recent images of the group.'),
    keepDays: keepDaysField
      .optional()
      .describe('Keep every image of the group pushed less than this many days ago: 2, or "36h".'),
  })
  .refine((group) => group.keepLast !== undefined || group.keepDays !== undefined, {
    message: GROUP_NEEDS_RETENTION,
  })
  .meta({ anyOf: [{ required: ['keepLast'] }, { required: ['keepDays'] }] });

export type GroupInput = z.input<typeof groupSchema>;

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
  groups: z
    .array(groupSchema)
    .optional()
    .describe(
      "Tag groups, each ranked on its own: an image is in every group one of its tags matches, and ranked by the rule's own keepLast and keepDays when one of its tags matches none. Replaces the defaults' groups.",
    ),
  untaggedOnly: z
    .boolean()
    .optional()
    .describe(
      'Delete only untagged manifests that nothing kept needs: every tagged image is kept. A retention rule on its own.',
    ),
  protect: z.boolean().optional().describe('Keep everything in the matching repositories.'),
};

/** The fields of one rule that have nothing to do when it is untagged only, which keeps every tagged image. */
export function idleWithUntaggedOnly(rule: RuleInput): ('keepLast' | 'keepDays' | 'keepTags' | 'groups')[] {
  if (rule.untaggedOnly !== true) return [];
  return (['keepLast', 'keepDays', 'keepTags', 'groups'] as const).filter((field) => {
    const value = rule[field];
    return Array.isArray(value) ? value.length > 0 : value !== undefined;
  });
}

/** Refuses, in a rule object of a policy, a field that untaggedOnly leaves nothing to do. */
function refuseIdleFields(rule: RuleInput, ctx: z.RefinementCtx): void {
  for (const field of idleWithUntaggedOnly(rule)) {
    ctx.addIssue({
      code: 'custom',
      path: [field],
      message: 'does nothing with "untaggedOnly": true, which keeps every tagged image: remove one of them',
    });
  }
}

export const ruleSchema = z.strictObject(ruleFields);

export const policyFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    defaults: ruleSchema
      .superRefine(refuseIdleFields)
      .optional()
      .describe('The rule for repositories no entry of "rules" matches.'),
    rules: z
      .array(
        z
          .strictObject({
            repositories: z
              .array(z.string().min(1))
              .min(1)
              .describe('Repository globs: * stays within a path segment, ** crosses segments.'),
            ...ruleFields,
          })
          .superRefine(refuseIdleFields),
      )
      .optional()
      .describe(
        'Per-repository rules; the first whose globs match a repository applies. Unset fields come from defaults.',
      ),
  })
  .describe('registry-janitor retention policy');

export type RuleInput = z.input<typeof ruleSchema>;
export type PolicyFile = z.infer<typeof policyFileSchema>;

/** Images with a tag matching `tags`, ranked among themselves and kept by their own count and age. */
export interface TagGroup {
  readonly tags: TagPattern;
  readonly keepLast?: number;
  readonly keepDays?: number;
}

/** A rule with every field settled; what planning one repository needs. */
export interface Rule {
  /** For images with a tag that matches no group. */
  readonly keepLast?: number;
  readonly keepDays?: number;
  readonly keepTags: readonly TagPattern[];
  readonly groups: readonly TagGroup[];
  /** Every tagged image is kept; only untagged manifests nothing kept needs are deleted. */
  readonly untaggedOnly: boolean;
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

const days = (input: number | string | undefined) =>
  input === undefined ? undefined : checkedValue(KEEP_DAYS, input) / DAY_MS;

function settle(input: RuleInput, base: Partial<Rule> & { untaggedGraceMs: number }, source: string): Rule {
  return {
    keepLast: input.keepLast ?? base.keepLast,
    keepDays: days(input.keepDays) ?? base.keepDays,
    keepTags: input.keepTags?.map(compiled) ?? base.keepTags ?? [],
    groups:
      input.groups?.map((group) => ({
        tags: compiled(group.tags),
        keepLast: group.keepLast,
        keepDays: days(group.keepDays),
      })) ??
      base.groups ??
      [],
    untaggedOnly: input.untaggedOnly ?? base.untaggedOnly ?? false,
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
 * line, which overrides the file's defaults field by field; its `untaggedOnly: true` holds for every rule, so
 * that a run asked to delete only untagged manifests does so whatever the file says. Every problem is listed
 * at once.
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
      'no retention rule: give --keep-last, --keep-days, --keep-tag or --untagged-only (or "defaults" in the ' +
        'policy file); use --keep-last 0 to keep nothing by count on purpose',
    ]);
  }
  const rules = (parsedFile.rules ?? []).map(({ repositories, ...rule }, index) => ({
    repositories,
    rule: settle(
      flagRule.untaggedOnly === true ? { ...rule, untaggedOnly: true } : rule,
      defaults,
      `rules[${index}]`,
    ),
  }));
  return { defaults, rules };
}

function hasRetention(rule: Rule): boolean {
  return (
    rule.protect ||
    rule.untaggedOnly ||
    rule.keepLast !== undefined ||
    rule.keepDays !== undefined ||
    rule.keepTags.length > 0 ||
    rule.groups.length > 0
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
  if (rule.untaggedOnly) parts.push('untagged only');
  else {
    parts.push(...retention(rule));
    if (rule.keepTags.length > 0)
      parts.push(`keep tags ${rule.keepTags.map((tag) => `/${tag.source}/`).join(' ')}`);
    for (const group of rule.groups)
      parts.push(`group /${group.tags.source}/ (${retention(group).join(', ')})`);
  }
  parts.push(`untagged grace ${formatDuration(rule.untaggedGraceMs)}`);
  return `${rule.source}: ${parts.join(', ')}`;
}

function retention(ranking: { readonly keepLast?: number; readonly keepDays?: number }): string[] {
  return [
    ...(ranking.keepLast !== undefined ? [`keep last ${ranking.keepLast}`] : []),
    ...(ranking.keepDays !== undefined ? [`keep ${ranking.keepDays}d`] : []),
  ];
}
