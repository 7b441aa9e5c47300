import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import {
  CONTEXT,
  ContextError,
  DEFAULT_STACK_NAME,
  RegistryJanitorStack,
} from '../../infra/registry-janitor-stack.js';
import { ENV } from '../../lambda/aws/environment.js';
import { cdkJsonContext, SKIP_BUNDLING, synthStack } from './stacks.js';

describe('cdk.json', () => {
  it('runs the app with tsx and holds every context key the stack reads', () => {
    const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
      app: string;
    };

    expect(cdkJson.app).toBe('npx tsx infra/app.ts');
    expect(Object.keys(cdkJsonContext()).sort()).toEqual(Object.values(CONTEXT).sort());
  });

  it('synthesizes as shipped, with placeholders for the registry and the instance', () => {
    const { stack, template } = synthStack();

    expect(stack.stackName).toBe(DEFAULT_STACK_NAME);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.registryUrl]: 'https://registry.example.internal:5000',
          [ENV.instanceId]: 'i-0123456789abcdef0',
        }),
      },
    });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    template.hasOutput('OutputBucketName', { Description: Match.stringLikeRegexp('s3:PutObject') });
    template.hasOutput('DocumentName', {});
  });
});

describe('the stack from context', () => {
  it('takes -c strings for numbers, booleans, lists and JSON', () => {
    const { template } = synthStack({
      diskThresholdPercent: '70',
      dryRun: 'true',
      policy: '{"defaults":{"keepLast":3}}',
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: 'subnet-0aaaaaaaaaaaaaaaa, subnet-0bbbbbbbbbbbbbbbb',
      securityGroupId: 'sg-0123456789abcdef0',
      timeZone: 'Europe/Berlin',
      notificationEmail: 'ops@example.com',
      logRetentionDays: '30',
      maxDelete: '100',
    });

    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 70, Metrics: Match.anyValue() });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.dryRun]: 'true',
          [ENV.policy]: '{"defaults":{"keepLast":3}}',
          [ENV.maxDelete]: '100',
        }),
      },
      VpcConfig: {
        SubnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
        SecurityGroupIds: ['sg-0123456789abcdef0'],
      },
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpressionTimezone: 'Europe/Berlin',
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('carries a policy with tag groups, untaggedOnly and durations in any unit to the function, and refuses a bad group by its field', () => {
    const policy = {
      defaults: { keepLast: 10, keepDays: '30d', untaggedGrace: '90m' },
      rules: [
        {
          repositories: ['app/*'],
          groups: [
            { tags: '^rc-', keepLast: 5, keepDays: 14 },
            { tags: '^pr-', keepLast: 3, keepDays: '1h30m' },
          ],
        },
        { repositories: ['ci/**'], untaggedOnly: true, untaggedGrace: '36h' },
      ],
    };
    const bad = { defaults: { keepLast: 10, groups: [{ tags: '^pr-', keepLast: 3 }, { tags: '^(?=rc)' }] } };
    let error: unknown;

    const { template } = synthStack({ policy: JSON.stringify(policy) });
    try {
      synthStack({ policy: bad });
    } catch (caught) {
      error = caught;
    }

    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [ENV.policy]: JSON.stringify(policy) }) },
    });
    expect((error as Error).message).toContain(
      '- POLICY_JSON: defaults.groups[1].tags: "^(?=rc)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?=` (RE2 has no lookahead or lookbehind)\n' +
        '- POLICY_JSON: defaults.groups[1]: a group keeps its images by keepLast or keepDays: give one',
    );
  });

  it('reads the registry secret by complete ARN, partial ARN or name', () => {
    const complete = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry/login-AbCdEf';
    const byArn = synthStack({ registrySecret: complete }).template;
    const byName = synthStack({ registrySecret: 'registry/login' }).template;

    byArn.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [ENV.registrySecretArn]: complete }) },
    });
    byArn.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
            Resource: complete,
          },
        ]),
      },
    });
    byName.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
            Resource: {
              'Fn::Join': ['', Match.arrayWith([':secret:registry/login-??????'])],
            },
          }),
        ]),
      },
    });
  });

  it('grants the instance role given the command output it writes', () => {
    const { template } = synthStack({ instanceRoleArn: 'arn:aws:iam::123456789012:role/registry-host' });

    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: ['registry-host'],
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Action: 's3:PutObject' })]),
      },
    });
  });

  it('names the stack after the stackName key', () => {
    const app = new App({ context: { ...cdkJsonContext(), ...SKIP_BUNDLING } });

    expect(new RegistryJanitorStack(app, 'Other').stackName).toBe('Other');
  });

  it('lists every unusable value with its key', () => {
    let error: unknown;
    try {
      synthStack({
        registryUrl: '',
        diskThresholdPercent: '0x50',
        dryRun: 'yes',
        gcMode: 'offline',
        vpcId: 'vpc-0123456789abcdef0',
        policy: '{not json',
        logRetentionDays: 42,
        instanceRoleArn: 'registry-host',
        maxDelete: 'many',
      });
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(ContextError);
    expect((error as ContextError).problems).toEqual([
      'registryUrl: required, e.g. https://registry.internal:5000',
      'gcMode: expected online or stopped, got "offline"',
      "logRetentionDays: expected one of CloudWatch Logs' retention periods (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, …), got 42",
      'vpcId and subnetIds: give both to run the function in a VPC, or neither',
      'instanceRoleArn: expected an IAM role ARN such as arn:aws:iam::123456789012:role/registry-host, got "registry-host"',
      expect.stringMatching(/^policy: not valid JSON/),
      'diskThresholdPercent: expected a number ≥ 0, got "0x50"',
      'dryRun: expected true or false, got "yes"',
      'maxDelete: expected a number, got "many"',
    ]);
    expect((error as Error).message).toContain('Set the values in cdk.json or with -c key=value.');
  });
});
