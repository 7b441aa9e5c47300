import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  buildPolicy,
  describeRule,
  formatDuration,
  PolicyError,
  parseDuration,
  ruleFor,
} from '../../lambda/domain/policy.js';
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

describe('durations', () => {
  it.each([
    ['0', 0],
    ['90m', 5_400_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['1.5h', 5_400_000],
    ['2w', 1_209_600_000],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '7', '-1d', '1y', 'd', '1 d'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('writes the largest whole unit', () => {
    expect([formatDuration(9 * 86_400_000 + 5), formatDuration(5_400_000), formatDuration(42_000)]).toEqual([
      '9d',
      '1h',
      '42s',
    ]);
  });
});

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
      rules: [{ repositories: [], keepTags: ['('] }, { keepLast: 2 }],
      extra: true,
    };

    const problems = problemsOf(() => buildPolicy(file, {}, 'team.json'));

    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^team\.json: defaults\.keepLast: .*>=0/),
        'team.json: defaults.untaggedGrace: expected a duration such as 0, 90m, 2h or 7d',
        expect.stringMatching(/^team\.json: rules\[0\]\.repositories: /),
        expect.stringMatching(/^team\.json: rules\[0\]\.keepTags\[0\]: invalid regular expression: /),
        expect.stringMatching(/^team\.json: rules\[1\]\.repositories: /),
        expect.stringMatching(/^team\.json: \(top level\): Unrecognized key: "extra"/),
      ]),
    );
    expect(problems).toHaveLength(6);
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
