import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { buildPolicy, describeRule, PolicyError, ruleFor } from '../../lambda/domain/policy.js';
import { policySchemaText } from '../../lambda/domain/policy-schema.js';

const problemsOf = (action: () => unknown): readonly string[] => {
  try {
    action();
  } catch (error) {
    if (error instanceof PolicyError) return error.problems;
    throw error;
  }
  throw new Error('expected a PolicyError');
};

describe('policy', () => {
  it('lets flags override the file defaults field by field, and rules inherit unset fields', () => {
    const file = {
      defaults: { keepLast: 20, keepTags: ['^latest$'], untaggedGrace: '2h' },
      rules: [
        { repositories: ['ci/**'], keepLast: 3 },
        { repositories: ['prod/*'], protect: true },
      ],
    };

    const policy = buildPolicy(file, { keepLast: 10 });

    expect(describeRule(policy.defaults)).toBe(
      'defaults: keep last 10, keep tags /^latest$/, untagged grace 2h',
    );
    expect(describeRule(ruleFor(policy, 'ci/build/cache'))).toBe(
      'rules[0]: keep last 3, keep tags /^latest$/, untagged grace 2h',
    );
    expect(describeRule(ruleFor(policy, 'prod/db'))).toBe('rules[1]: protected');
    expect(ruleFor(policy, 'prod/db/backup').source).toBe('defaults');
  });

  it('defaults the untagged grace period to 24h', () => {
    expect(buildPolicy(undefined, { keepDays: 30 }).defaults.untaggedGraceMs).toBe(86_400_000);
  });

  it('lists every problem of a policy file at once, each naming its field', () => {
    const file = {
      defaults: { keepLast: -1, untaggedGrace: '3 days' },
      rules: [
        { repositories: [], keepTags: ['^v', '(?=x)', '(a)\\1'] },
        { keepLast: 2, keepDays: '0x10' },
      ],
      extra: true,
    };

    const problems = problemsOf(() => buildPolicy(file, {}, 'team.json'));

    expect(problems).toEqual([
      'team.json: defaults.keepLast: expected a whole number ≥ 0 such as 10, got -1',
      'team.json: defaults.untaggedGrace: expected a duration such as 0, 90m, 2h or 7d, got "3 days"',
      expect.stringMatching(/^team\.json: rules\[0\]\.repositories: /),
      'team.json: rules[0].keepTags[1]: "(?=x)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?=` (RE2 has no lookahead or lookbehind)',
      'team.json: rules[0].keepTags[2]: "(a)\\\\1" is not an RE2 regular expression: invalid escape sequence: `\\1` (RE2 has no backreferences)',
      expect.stringMatching(/^team\.json: rules\[1\]\.repositories: /),
      'team.json: rules[1].keepDays: expected a number of days or a duration such as 30, 36h or 2w, got "0x10"',
      expect.stringMatching(/^team\.json: \(top level\): Unrecognized key: "extra"/),
    ]);
  });

  it('reads keepDays as days, plain or with a unit, and untaggedGrace as the flags do', () => {
    const policy = buildPolicy(
      {
        defaults: { keepDays: 30, untaggedGrace: '1h30m' },
        rules: [
          { repositories: ['ci/**'], keepDays: '36h' },
          { repositories: ['web/*'], keepDays: '30d', keepLast: 5 },
        ],
      },
      {},
    );

    expect(describeRule(policy.defaults)).toBe('defaults: keep 30d, untagged grace 1h');
    expect(policy.defaults.untaggedGraceMs).toBe(5_400_000);
    expect(ruleFor(policy, 'ci/build').keepDays).toBe(1.5);
    expect(describeRule(ruleFor(policy, 'web/app'))).toBe(
      'rules[1]: keep last 5, keep 30d, untagged grace 1h',
    );
  });

  it('refuses to run with no retention rule at all, and says how to ask for one', () => {
    expect(problemsOf(() => buildPolicy(undefined, {}))).toEqual([
      expect.stringContaining(
        'no retention rule: give --keep-last, --keep-days, --keep-tag or --untagged-only',
      ),
    ]);
  });

  it("gives rules the defaults' groups unless they have their own, which replace them", () => {
    const file = {
      defaults: { keepLast: 10, groups: [{ tags: '^rc-', keepLast: 5 }] },
      rules: [
        { repositories: ['app/*'], groups: [{ tags: '^pr-', keepLast: 3, keepDays: '36h' }] },
        { repositories: ['base'], groups: [] },
        { repositories: ['tools'], keepLast: 2 },
      ],
    };

    const policy = buildPolicy(file, {});

    expect(describeRule(ruleFor(policy, 'app/web'))).toBe(
      'rules[0]: keep last 10, group /^pr-/ (keep last 3, keep 1.5d), untagged grace 1d',
    );
    expect(describeRule(ruleFor(policy, 'base'))).toBe('rules[1]: keep last 10, untagged grace 1d');
    expect(describeRule(ruleFor(policy, 'tools'))).toBe(
      'rules[2]: keep last 2, group /^rc-/ (keep last 5), untagged grace 1d',
    );
    expect(ruleFor(policy, 'app/web').groups[0]?.tags.test('pr-17')).toBe(true);
  });

  it('counts groups and untaggedOnly as retention rules on their own', () => {
    const grouped = buildPolicy({ defaults: { groups: [{ tags: '^rc-', keepDays: 7 }] } }, {});
    const untaggedOnly = buildPolicy(undefined, { untaggedOnly: true });

    expect(describeRule(grouped.defaults)).toBe('defaults: group /^rc-/ (keep 7d), untagged grace 1d');
    expect(describeRule(untaggedOnly.defaults)).toBe('defaults: untagged only, untagged grace 1d');
  });

  it('names the field of every problem in a group, and of a rule that is untagged only yet keeps by count', () => {
    const file = {
      defaults: { keepLast: 3, untaggedOnly: true },
      rules: [
        {
          repositories: ['app/*'],
          groups: [
            { tags: '^rc-', keepLast: 5 },
            { tags: '^(?!pr-)', keepLast: 3 },
            { tags: '^nightly-' },
            { tags: 7, keepDays: '2 days', keepLas: 1 },
          ],
        },
        { repositories: ['ci/**'], untaggedOnly: true, keepTags: [], groups: [{ tags: 'x', keepLast: 1 }] },
      ],
    };

    const problems = problemsOf(() => buildPolicy(file, {}, 'policy.json'));

    expect(problems).toEqual([
      'policy.json: defaults.keepLast: does nothing with "untaggedOnly": true, which keeps every tagged image: remove one of them',
      'policy.json: rules[0].groups[1].tags: "^(?!pr-)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?!` (RE2 has no lookahead or lookbehind)',
      'policy.json: rules[0].groups[2]: a group keeps its images by keepLast or keepDays: give one (keepLast 0 keeps none of them by count)',
      'policy.json: rules[0].groups[3].tags: expected an RE2 regular expression such as "^v1", got 7',
      'policy.json: rules[0].groups[3].keepDays: expected a number of days or a duration such as 30, 36h or 2w, got "2 days"',
      expect.stringMatching(/^policy\.json: rules\[0\]\.groups\[3\]: Unrecognized key: "keepLas"/),
      'policy.json: rules[1].groups: does nothing with "untaggedOnly": true, which keeps every tagged image: remove one of them',
    ]);
  });

  it('ships a JSON Schema that matches the validator', async () => {
    const shipped = await readFile(new URL('../../policy.schema.json', import.meta.url), 'utf8');

    expect(shipped).toBe(policySchemaText());
    const schema = JSON.parse(shipped) as {
      properties: Record<string, unknown>;
      additionalProperties: boolean;
    };
    expect(Object.keys(schema.properties)).toEqual(['$schema', 'defaults', 'rules']);
    expect(schema.additionalProperties).toBe(false);
  });
});
