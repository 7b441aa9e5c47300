import { describe, expect, it } from 'vitest';
import { ConfigurationError, ENV, readFunctionConfig } from '../../lambda/aws/function-config.js';

const valid = {
  [ENV.registryUrl]: 'https://registry.internal:5000',
  [ENV.instanceId]: 'i-0123456789abcdef0',
  [ENV.policy]: '{"defaults":{"keepLast":10}}',
};

const problemsOf = (env: NodeJS.ProcessEnv): readonly string[] => {
  try {
    readFunctionConfig(env);
  } catch (error) {
    if (error instanceof ConfigurationError) return error.problems;
    throw error;
  }
  return [];
};

describe('the function configuration', () => {
  it('passes the host lock file and log directory to the host script', () => {
    const config = readFunctionConfig({
      ...valid,
      HOST_LOCK_FILE: '/run/lock/janitor.lock',
      HOST_LOG_DIR: '/srv/logs/janitor',
    });

    expect(config.host).toEqual({ lockFile: '/run/lock/janitor.lock', logDir: '/srv/logs/janitor' });
  });

  it('needs a policy, and says so once when its JSON is broken', () => {
    const { [ENV.policy]: _, ...withoutPolicy } = valid;

    expect(problemsOf(withoutPolicy)).toEqual([
      'POLICY_JSON: required, the retention policy, e.g. {"defaults":{"keepLast":10}}',
    ]);
    expect(problemsOf({ ...valid, [ENV.policy]: '{"defaults":' })).toEqual([
      expect.stringMatching(/^POLICY_JSON: not valid JSON \(/),
    ]);
  });

  it('reads the cap on deletes, and names the variable of a bad one', () => {
    expect(readFunctionConfig(valid).maxDelete).toBeUndefined();
    expect(readFunctionConfig({ ...valid, [ENV.maxDelete]: '250' }).maxDelete).toBe(250);
    expect(problemsOf({ ...valid, [ENV.maxDelete]: 'lots' })).toEqual([
      'MAX_DELETE: expected a whole number ≥ 0, got "lots"',
    ]);
  });

  it('lists every problem at once, each with its variable', () => {
    expect(
      problemsOf({
        ...valid,
        [ENV.registryUrl]: 'ftp://registry',
        HOST_LOG_DIR: 'relative/logs',
        [ENV.gcWaitSeconds]: '5',
      }),
    ).toEqual([
      'REGISTRY_URL: expected an http:// or https:// address with no path, got "ftp://registry"',
      `HOST_LOG_DIR: expected an absolute path of 2 to 256 characters from A-Z a-z 0-9 '.' '_' '/' '-', without '..', got "relative/logs"`,
      'GC_WAIT_SECONDS: expected a number of seconds or a duration of at least 10s and at most 14m such as 600, 10m or 7m30s, got "5"',
    ]);
  });

  it('reads numbers and policy fields as the command line does, naming the variable', () => {
    const policy = {
      defaults: { keepDays: '30d', keepTags: ['^latest$', '^(?=v)'] },
      rules: [{ repositories: ['ci/**'], keepDays: '0x10' }],
    };

    expect(
      problemsOf({
        ...valid,
        [ENV.policy]: JSON.stringify(policy),
        [ENV.concurrency]: '0x10',
        [ENV.gcWaitSeconds]: '1e3',
      }),
    ).toEqual([
      'POLICY_JSON: defaults.keepTags[1]: "^(?=v)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?=` (RE2 has no lookahead or lookbehind)',
      'POLICY_JSON: rules[0].keepDays: expected a number of days or a duration such as 30, 36h or 2w, got "0x10"',
      'CONCURRENCY: expected a whole number from 1 to 64, got "0x10"',
      'GC_WAIT_SECONDS: expected a number of seconds or a duration of at least 10s and at most 14m such as 600, 10m or 7m30s, got "1e3"',
    ]);
    const config = readFunctionConfig({
      ...valid,
      [ENV.policy]: '{"defaults":{"keepDays":"2w","untaggedGrace":"1h30m"}}',
      [ENV.concurrency]: '16',
    });
    expect(config.policy.defaults).toMatchObject({ keepDays: 14, untaggedGraceMs: 5_400_000 });
    expect(config.concurrency).toBe(16);
  });

  it('reads every duration in the one syntax: a plain number in the unit implied, or with units', () => {
    const policy = {
      defaults: { keepLast: 10, keepDays: 30, untaggedGrace: '90m' },
      rules: [
        {
          repositories: ['app/*'],
          keepDays: '30d',
          groups: [
            { tags: '^rc-', keepLast: 5, keepDays: '2w' },
            { tags: '^pr-', keepDays: '1h30m' },
          ],
        },
        { repositories: ['ci/**'], untaggedOnly: true, untaggedGrace: '36h' },
      ],
    };
    const waits = ['600', '10m', '7m30s', '90s'].map(
      (wait) =>
        readFunctionConfig({ ...valid, [ENV.policy]: JSON.stringify(policy), [ENV.gcWaitSeconds]: wait })
          .gcWaitSeconds,
    );

    const config = readFunctionConfig({ ...valid, [ENV.policy]: JSON.stringify(policy) });

    expect(waits).toEqual([600, 600, 450, 90]);
    expect(config.gcWaitSeconds).toBe(600);
    expect(config.policy.defaults).toMatchObject({ keepDays: 30, untaggedGraceMs: 5_400_000 });
    const [app, ci] = config.policy.rules.map((entry) => entry.rule);
    expect(app?.keepDays).toBe(30);
    expect(app?.groups.map((group) => [group.tags.source, group.keepLast, group.keepDays])).toEqual([
      ['^rc-', 5, 14],
      ['^pr-', undefined, 0.0625],
    ]);
    expect(ci).toMatchObject({ untaggedOnly: true, untaggedGraceMs: 129_600_000 });
  });

  it('names the field of every problem of a group, in the policy and in the emergency policy', () => {
    const policy = { defaults: { keepLast: 10, groups: [{ tags: '^rc-', keepLast: 5 }, { tags: '(' }] } };
    const emergency = { defaults: { untaggedOnly: true, groups: [{ tags: '^rc-', keepLast: 1 }] } };

    expect(
      problemsOf({
        ...valid,
        [ENV.policy]: JSON.stringify(policy),
        [ENV.emergencyPolicy]: JSON.stringify(emergency),
        [ENV.gcWaitSeconds]: '15m',
      }),
    ).toEqual([
      'POLICY_JSON: defaults.groups[1].tags: "(" is not an RE2 regular expression: missing closing ): `(`',
      'POLICY_JSON: defaults.groups[1]: a group keeps its images by keepLast or keepDays: give one (keepLast 0 keeps none of them by count)',
      'EMERGENCY_POLICY_JSON: defaults.groups: does nothing with "untaggedOnly": true, which keeps every tagged image: remove one of them',
      'GC_WAIT_SECONDS: expected a number of seconds or a duration of at least 10s and at most 14m such as 600, 10m or 7m30s, got "15m"',
    ]);
  });
});
