import { readFileSync } from 'node:fs';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { RegistryJanitor, type RegistryJanitorProps } from '../../infra/registry-janitor.js';
import { DEFAULT_STACK_NAME, RegistryJanitorStack } from '../../infra/registry-janitor-stack.js';

/** Bundling the function takes seconds; one test in bundle.test.ts does it for real. */
export const SKIP_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

export const REGISTRY_URL = 'https://registry.internal:5000';
export const INSTANCE_ID = 'i-0abc1234def567890';

export const INSTANCE_ROLE_ARN = 'arn:aws:iam::123456789012:role/registry-host';

export const BASE_PROPS: Omit<RegistryJanitorProps, 'instanceRole'> = {
  registryUrl: REGISTRY_URL,
  instanceId: INSTANCE_ID,
  policy: { defaults: { keepLast: 10, keepTags: ['^latest$'] } },
  diskMetric: { path: '/srv/registry' },
};

/** The keys cdk.json leaves for each deployment to set, as a deployment sets them. */
export const DEPLOYMENT_CONTEXT = {
  registryUrl: REGISTRY_URL,
  instanceId: INSTANCE_ID,
  instanceRoleArn: INSTANCE_ROLE_ARN,
};

export interface Synthesized {
  readonly app: App;
  readonly stack: Stack;
  readonly janitor: RegistryJanitor;
  readonly template: Template;
}

/** The construct alone in a stack, with the given props over BASE_PROPS and an imported instance role. */
export function synthConstruct(
  props: Partial<RegistryJanitorProps> | ((stack: Stack) => Partial<RegistryJanitorProps>) = {},
): Synthesized {
  const app = new App({ context: SKIP_BUNDLING });
  const stack = new Stack(app, 'Test');
  const extra = typeof props === 'function' ? props(stack) : props;
  const janitor = new RegistryJanitor(stack, 'Janitor', {
    ...BASE_PROPS,
    instanceRole: extra.instanceRole ?? iam.Role.fromRoleArn(stack, 'InstanceRole', INSTANCE_ROLE_ARN),
    ...extra,
  });
  return { app, stack, janitor, template: Template.fromStack(stack) };
}

/** The context cdk.json ships with. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return cdkJson.context;
}

/**
 * The stack as `cdk synth` builds it for a deployment: cdk.json's context with the deployment's registry,
 * instance and role, and `overrides` on top, as `-c key=value` would.
 */
export function synthStack(overrides: Record<string, unknown> = {}): {
  app: App;
  stack: RegistryJanitorStack;
  template: Template;
} {
  const app = new App({
    context: { ...cdkJsonContext(), ...DEPLOYMENT_CONTEXT, ...overrides, ...SKIP_BUNDLING },
  });
  const stack = new RegistryJanitorStack(app, DEFAULT_STACK_NAME);
  return { app, stack, template: Template.fromStack(stack) };
}

/** The JSON of a resolved value, to look for strings inside Fn::Join and friends. */
export const text = (value: unknown): string => JSON.stringify(value);
