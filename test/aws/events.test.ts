import { describe, expect, it } from 'vitest';
import { parseEvent } from '../../lambda/aws/events.js';
import { buildPolicy, describeRule, type RuleInput } from '../../lambda/domain/policy.js';

const overridesOf = (event: unknown): RuleInput => {
  const parsed = parseEvent(event);
  if (parsed.kind !== 'manual') throw new Error(`expected overrides, got a ${parsed.kind} event`);
  const { dryRun, gc, repositories, excludeRepositories, maxDelete, ...rule } = parsed.overrides;
  return rule as RuleInput;
};

describe('the overrides of an on-demand run', () => {
  it('read every duration in the one syntax: plain days, units, and compound units', () => {
    const configured = { defaults: { keepLast: 10 } };
    const policies = [
      { keepDays: 30, untaggedGrace: '90m', groups: [{ tags: '^pr-', keepDays: 2 }] },
      { keepDays: '30d', untaggedGrace: '1h30m', groups: [{ tags: '^pr-', keepDays: '48h' }] },
      { keepDays: '4w2d', untaggedGrace: '5400s', groups: [{ tags: '^pr-', keepDays: '1d24h' }] },
    ].map((event) => buildPolicy(configured, overridesOf(event)));

    for (const policy of policies) {
      expect(describeRule(policy.defaults)).toBe(
        'defaults: keep last 10, keep 30d, group /^pr-/ (keep 2d), untagged grace 1h',
      );
      expect(policy.defaults.untaggedGraceMs).toBe(5_400_000);
    }
  });

  it('make a run untagged only in every rule of the configured policy', () => {
    const configured = {
      defaults: { keepLast: 10 },
      rules: [{ repositories: ['ci/**'], keepLast: 2, groups: [{ tags: '^pr-', keepLast: 1 }] }],
    };

    const policy = buildPolicy(configured, overridesOf({ untaggedOnly: true }));

    expect([policy.defaults, ...policy.rules.map((entry) => entry.rule)].map(describeRule)).toEqual([
      'defaults: untagged only, untagged grace 1d',
      'rules[0]: untagged only, untagged grace 1d',
    ]);
  });
});
