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
      expect.stringContaining('no retention rule: give --keep-last, --keep-days or --keep-tag'),
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
