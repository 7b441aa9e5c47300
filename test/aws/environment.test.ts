import { describe, expect, it } from 'vitest';
import { ConfigurationError, ENV, readFunctionConfig } from '../../lambda/aws/environment.js';

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
      [ENV.hostLockFile]: '/run/lock/janitor.lock',
      [ENV.hostLogDir]: '/srv/logs/janitor',
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
      'MAX_DELETE: expected a whole number from 0 to 9007199254740991, got "lots"',
    ]);
  });

  it('lists every problem at once, each with its variable', () => {
    expect(
      problemsOf({
        ...valid,
        [ENV.registryUrl]: 'ftp://registry',
        [ENV.hostLogDir]: 'relative/logs',
        [ENV.gcWaitSeconds]: '5',
      }),
    ).toEqual([
      'REGISTRY_URL: expected an http:// or https:// address with no path, got "ftp://registry"',
      expect.stringMatching(/^logDir \(RJ_LOG_DIR\) .*: expected an absolute path/),
      'GC_WAIT_SECONDS: expected a whole number from 10 to 840, got "5"',
    ]);
  });
});
