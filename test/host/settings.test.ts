import { readFile } from 'node:fs/promises';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ContextError,
  DEFAULT_STACK_NAME,
  RegistryJanitorStack,
} from '../../infra/registry-janitor-stack.js';
import { ConfigurationError, ENV, readFunctionConfig } from '../../lambda/aws/function-config.js';
import { loadCliConfig } from '../../lambda/cli-config.js';
import { OPTIONS, parseArgv } from '../../lambda/command-line.js';
import { type HostParameter, hostEnvironment, hostSettings } from '../../lambda/host/script.js';
import type { HostParams } from '../../lambda/ports.js';
import { runCli } from '../cli-runner.js';
import { cdkJsonContext, DEPLOYMENT_CONTEXT, SKIP_BUNDLING, synthConstruct } from '../infra/stacks.js';

/** Refused by every host setting's pattern: a space and a `!` are in none of them. */
const BAD = 'not valid!';

const FUNCTION_ENV = {
  [ENV.registryUrl]: 'https://registry.internal:5000',
  [ENV.instanceId]: 'i-0123456789abcdef0',
  [ENV.policy]: '{"defaults":{"keepLast":10}}',
};

/** Values the setting's pattern accepts, different on each run. */
const goodValues = (setting: Pick<HostParameter, 'pattern'>, count: number) =>
  fc.sample(
    fc.stringMatching(setting.pattern).filter((value) => setting.pattern.test(value)),
    count,
  );

/** The script's variables for what a surface configured: the user-visible end of each path. */
const scriptEnvironment = (params: HostParams) => hostEnvironment('collect', params);

const functionProblems = (env: NodeJS.ProcessEnv): readonly string[] => {
  try {
    readFunctionConfig(env);
  } catch (error) {
    if (error instanceof ConfigurationError) return error.problems;
    throw error;
  }
  return [];
};

const contextProblems = (overrides: Record<string, unknown>): readonly string[] => {
  const app = new App({
    context: { ...cdkJsonContext(), ...DEPLOYMENT_CONTEXT, ...overrides, ...SKIP_BUNDLING },
  });
  try {
    new RegistryJanitorStack(app, DEFAULT_STACK_NAME);
  } catch (error) {
    if (error instanceof ContextError) return error.problems;
    throw error;
  }
  return [];
};

/** The function's variables as the construct sets them, those known at synthesis (not references). */
const functionVariables = (template: Template): Record<string, string> => {
  const functions = Object.values(template.findResources('AWS::Lambda::Function'));
  expect(functions).toHaveLength(1);
  const variables = (functions[0]?.Properties.Environment.Variables ?? {}) as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
};

async function cliHostParams(args: readonly string[]): Promise<HostParams | undefined> {
  const config = await loadCliConfig(parseArgv(['gc', '--registry', 'http://127.0.0.1:1', ...args]), {
    env: {},
    readFile: (path) => readFile(path, 'utf8'),
    readStdin: async () => '',
    dockerCredentials: async () => undefined,
    cannotWrite: async () => undefined,
  });
  return config.host?.params;
}

describe.each(hostSettings('flag'))('the command line sets $param with --$flag.name', (setting) => {
  const { name, sets, seconds } = setting.flag;

  it('refuses a bad value, naming the flag, the value and what it takes', async () => {
    const result = await runCli(['gc', '--registry', 'http://127.0.0.1:1', `--${name}=${BAD}`]);

    expect(result.code).toBe(2);
    const expected =
      sets !== undefined
        ? `error: --${name}: takes no value, got ${JSON.stringify(BAD)}`
        : `error: --${name}: expected ${seconds?.expected ?? setting.description}, got ${JSON.stringify(BAD)}`;
    expect(result.stderr.split('\n').filter((line) => line.startsWith('error: '))).toEqual([expected]);
    expect(OPTIONS[name].type).toBe(sets !== undefined ? 'boolean' : 'string');
  });

  it('hands a good value to the host script as its variable', async () => {
    if (sets !== undefined) {
      expect(scriptEnvironment((await cliHostParams([`--${name}`])) ?? {})).toEqual({
        RJ_ACTION: 'collect',
        [setting.env]: sets,
      });
      return;
    }
    // A duration flag takes the script's whole seconds written as seconds, within its own limit.
    const values = goodValues(setting, 20).filter(
      (value) => seconds === undefined || seconds.read(`${value}s`).ok,
    );
    for (const value of values) {
      const params = await cliHostParams([`--${name}=${seconds ? `${value}s` : value}`]);
      expect(scriptEnvironment(params ?? {})).toEqual({ RJ_ACTION: 'collect', [setting.env]: value });
    }
  });
});

describe.each(hostSettings('variable'))('the function sets $param with $variable', (setting) => {
  it('refuses a bad value, naming the variable, the value and what it takes', () => {
    expect(functionProblems({ ...FUNCTION_ENV, [setting.variable]: BAD })).toEqual([
      `${setting.variable}: expected ${setting.description}, got ${JSON.stringify(BAD)}`,
    ]);
  });

  it('hands a good value to the host script as its variable', () => {
    for (const value of goodValues(setting, 50)) {
      const { host } = readFunctionConfig({ ...FUNCTION_ENV, [setting.variable]: value });
      expect(scriptEnvironment(host)).toEqual({ RJ_ACTION: 'collect', [setting.env]: value });
    }
  });
});

describe.each(hostSettings('context'))('cdk synth sets $param with the context key $context', (setting) => {
  it('refuses a bad value, naming the key, the value and what it takes', () => {
    expect(contextProblems({ [setting.context]: BAD })).toEqual([
      `${setting.context}: expected ${setting.description}, got ${JSON.stringify(BAD)}`,
    ]);
  });

  it('hands a good value through the function to the host script as its variable', () => {
    const [value = ''] = goodValues(setting, 1);
    const app = new App({
      context: { ...cdkJsonContext(), ...DEPLOYMENT_CONTEXT, [setting.context]: value, ...SKIP_BUNDLING },
    });
    const template = Template.fromStack(new RegistryJanitorStack(app, DEFAULT_STACK_NAME));

    const { host } = readFunctionConfig(functionVariables(template));
    expect(scriptEnvironment(host)[setting.env]).toBe(value);
  });
});

describe.each(hostSettings('prop'))('the construct sets $param with the prop $prop.name', (setting) => {
  it('gives the function the value, or the default it shows, for the host script', () => {
    const [value = ''] = goodValues(setting, 1);
    const given = readFunctionConfig(
      functionVariables(synthConstruct({ [setting.prop.name]: value }).template),
    );
    const unset = readFunctionConfig(functionVariables(synthConstruct().template));

    expect(scriptEnvironment(given.host)[setting.env]).toBe(value);
    expect(scriptEnvironment(unset.host)[setting.env]).toBe(
      setting.prop.showsDefault ? setting.default : undefined,
    );
  });
});
