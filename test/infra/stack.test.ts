import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { REGISTRY_CA_FILE } from '../../infra/registry-janitor.js';
import {
  CONTEXT_KEYS,
  ContextError,
  DEFAULT_STACK_NAME,
  RegistryJanitorStack,
} from '../../infra/registry-janitor-stack.js';
import { ENV } from '../../lambda/aws/function-config.js';
import { sampleEvent } from '../handler/events.js';
import {
  cdkJsonContext,
  DEPLOYMENT_CONTEXT,
  INSTANCE_ROLE_ARN,
  SKIP_BUNDLING,
  synthStack,
  text,
} from './stacks.js';

const scratch = mkdtempSync(join(tmpdir(), 'registry-janitor-stack-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The problems a context is refused with. */
function refusal(context: Record<string, unknown>): readonly string[] {
  const app = new App({ context: { ...context, ...SKIP_BUNDLING } });
  try {
    new RegistryJanitorStack(app, DEFAULT_STACK_NAME);
  } catch (error) {
    if (error instanceof ContextError) return error.problems;
    throw error;
  }
  throw new Error('the context was accepted');
}

const refusedWith = (overrides: Record<string, unknown>) =>
  refusal({ ...cdkJsonContext(), ...DEPLOYMENT_CONTEXT, ...overrides });

describe('cdk.json', () => {
  it('runs the app with tsx and holds every context key the stack reads', () => {
    const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
      app: string;
    };

    expect(cdkJson.app).toBe('npx tsx infra/app.ts');
    expect(Object.keys(cdkJsonContext()).sort()).toEqual([...CONTEXT_KEYS].sort());
  });

  it('is refused as shipped: the registry and the instance are placeholders and the instance role is unset', () => {
    expect(refusal(cdkJsonContext())).toEqual([
      'registryUrl: "https://registry.example.internal:5000" is the placeholder cdk.json ships with: set the address the function reaches the registry at: http:// or https://, a host and a port, no path, e.g. https://registry.internal:5000',
      'instanceId: "i-0123456789abcdef0" is the placeholder cdk.json ships with: set the id of the EC2 instance that runs the registry container, e.g. i-0abc1234def567890',
      "instanceRoleArn: required: the ARN of the registry instance's IAM role (the role in its instance profile), which is allowed to write command output to the stack's bucket, e.g. arn:aws:iam::123456789012:role/registry-host",
    ]);
  });

  it('synthesizes once the registry, the instance and its role are set', () => {
    const { stack, template } = synthStack();

    expect(stack.stackName).toBe(DEFAULT_STACK_NAME);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.registryUrl]: DEPLOYMENT_CONTEXT.registryUrl,
          [ENV.instanceId]: DEPLOYMENT_CONTEXT.instanceId,
        }),
      },
      ReservedConcurrentExecutions: 1,
    });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    template.hasOutput('OutputBucketName', {});
    template.hasOutput('DocumentName', {});
    template.hasOutput('DiskAlarmName', {});
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
      reservedConcurrency: '0',
      executionTimeoutSeconds: '7200',
    });

    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 70, Metrics: Match.anyValue() });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [ENV.dryRun]: 'true',
          [ENV.policy]: '{"defaults":{"keepLast":3}}',
          [ENV.maxDelete]: '100',
          [ENV.executionTimeoutSeconds]: '7200',
        }),
      },
      VpcConfig: {
        SubnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
        SecurityGroupIds: ['sg-0123456789abcdef0'],
      },
      ReservedConcurrentExecutions: Match.absent(),
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpressionTimezone: 'Europe/Berlin',
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    template.hasResourceProperties('AWS::SSM::Document', {
      Content: Match.objectLike({
        parameters: Match.objectLike({ executionTimeout: Match.objectLike({ default: '7200' }) }),
      }),
    });
  });

  it.each([
    ['a JSON array given with -c', '["subnet-0aaaaaaaaaaaaaaaa","subnet-0bbbbbbbbbbbbbbbb"]'],
    ['a JSON array in cdk.json', ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb']],
    ['a comma-separated list', 'subnet-0aaaaaaaaaaaaaaaa,subnet-0bbbbbbbbbbbbbbbb'],
  ])('takes subnetIds as %s', (_, subnetIds) => {
    const { template } = synthStack({ vpcId: 'vpc-0123456789abcdef0', subnetIds });

    template.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: Match.objectLike({ SubnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'] }),
    });
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
      '- policy: defaults.groups[1].tags: "^(?=rc)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?=` (RE2 has no lookahead or lookbehind)\n' +
        '- policy: defaults.groups[1]: a group keeps its images by keepLast or keepDays: give one',
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

  it.each([
    ['its complete ARN', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry/login-AbCdEf'],
    ['its name', 'registry/login'],
  ])(
    'lets the function decrypt a secret given by %s with the customer-managed key it is encrypted with',
    (_, registrySecret) => {
      const keyArn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
      const { template } = synthStack({ registrySecret, registrySecretKmsKeyArn: keyArn });

      template.hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'] }),
            {
              Sid: 'DecryptRegistrySecret',
              Effect: 'Allow',
              Action: 'kms:Decrypt',
              Resource: keyArn,
              Condition: {
                StringEquals: {
                  'kms:ViaService': {
                    'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']],
                  },
                },
              },
            },
          ]),
        },
      });
    },
  );

  it('grants no KMS key without registrySecretKmsKeyArn', () => {
    const { template } = synthStack({ registrySecret: 'registry/login' });

    expect(text(template.findResources('AWS::IAM::Policy'))).not.toContain('kms:');
  });

  it("ships the registry's CA certificates in the bundle and trusts them through NODE_EXTRA_CA_CERTS", () => {
    const pem = join(scratch, 'ca.pem');
    writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');

    const { template } = synthStack({ registryCaPem: pem });

    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ NODE_EXTRA_CA_CERTS: `/var/task/${REGISTRY_CA_FILE}` }),
      },
    });
    synthStack().template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ NODE_EXTRA_CA_CERTS: Match.absent() }) },
    });
  });

  it('grants the instance role the command output it writes', () => {
    const { template } = synthStack({ instanceRoleArn: INSTANCE_ROLE_ARN });

    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: ['registry-host'],
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Action: 's3:PutObject' })]),
      },
    });
  });

  it('names the disk alarm after the stack, as the sample alarm event in events/ does', () => {
    const { template } = synthStack();
    const sample = sampleEvent('disk-alarm') as { resources: string[]; detail: { alarmName: string } };

    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: sample.detail.alarmName,
      Metrics: Match.anyValue(),
    });
    expect(sample.resources[0]).toMatch(new RegExp(`:alarm:${sample.detail.alarmName}$`));
  });

  it('names the stack after the stackName key', () => {
    const app = new App({ context: { ...cdkJsonContext(), ...DEPLOYMENT_CONTEXT, ...SKIP_BUNDLING } });

    expect(new RegistryJanitorStack(app, 'Other').stackName).toBe('Other');
  });

  it.each([['UTC'], ['Etc/UTC'], ['Europe/Berlin'], ['America/Argentina/Buenos_Aires'], ['Asia/Kolkata']])(
    'takes the time zone %s',
    (timeZone) => {
      synthStack({ timeZone }).template.hasResourceProperties('AWS::Scheduler::Schedule', {
        ScheduleExpressionTimezone: timeZone,
      });
    },
  );

  it.each([
    ['registry/login'],
    ['team_a+registry=login.v2@prod-1'],
    ['arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry/login'],
  ])('takes the secret %s', (registrySecret) => {
    expect(() => synthStack({ registrySecret })).not.toThrow();
  });
});

describe('a context the stack refuses', () => {
  it('lists every unusable value at once, each under its key with the value and what is accepted', () => {
    const problems = refusedWith({
      registryUrl: '',
      instanceId: 'registry-host',
      instanceRoleArn: 'arn:aws:iam::123456789012:instance-profile/registry-host',
      registrySecret: 'my secret!',
      timeZone: 'Mars/Olympus',
      diskThresholdPercent: 'high',
      dryRun: 'yes',
      gcMode: 'offline',
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: '["subnet-0aaaaaaaaaaaaaaaa", "subnet-…"]',
      policy: '{not json',
      logRetentionDays: 42,
      reservedConcurrency: 'one',
      maxDelete: 'many',
    });

    expect(problems).toEqual([
      'registryUrl: required: the address the function reaches the registry at: http:// or https://, a host and a port, no path, e.g. https://registry.internal:5000',
      'instanceId: expected the id of the EC2 instance that runs the registry container, e.g. i-0abc1234def567890, got "registry-host"',
      `instanceRoleArn: expected the ARN of the registry instance's IAM role (the role in its instance profile), which is allowed to write command output to the stack's bucket, e.g. arn:aws:iam::123456789012:role/registry-host (an instance profile's ARN names no role: give the ARN of the role in the profile), got "arn:aws:iam::123456789012:instance-profile/registry-host"`,
      `registrySecret: expected a Secrets Manager secret's name (1 to 512 letters, digits and / _ + = . @ -) or its ARN, got "my secret!"`,
      'timeZone: expected an IANA time zone such as Europe/Berlin, America/New_York or UTC, got "Mars/Olympus"',
      'diskThresholdPercent: expected a number, got "high"',
      'subnetIds: expected each item to be a subnet id such as subnet-0123456789abcdef0, got "subnet-…"',
      expect.stringMatching(/^policy: not valid JSON \(.*\), got "\{not json"$/),
      'gcMode: expected online or stopped, got "offline"',
      'dryRun: expected true or false, got "yes"',
      'maxDelete: expected a number, got "many"',
      "logRetentionDays: expected one of CloudWatch Logs' retention periods in days (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653), got 42",
      'reservedConcurrency: expected a number, got "one"',
    ]);
  });

  it('says which time zone was meant', () => {
    expect(refusedWith({ timeZone: 'europe/berlin' })).toEqual([
      expect.stringMatching(
        /^timeZone: expected an IANA time zone .*, got "europe\/berlin" \(did you mean Europe\/Berlin\?\)$/,
      ),
    ]);
    expect(refusedWith({ timeZone: 'Europe/Berln' })).toEqual([
      expect.stringMatching(/\(did you mean Europe\/Berlin\?\)$/),
    ]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      'a URL with a path',
      { registryUrl: 'https://registry.internal:5000/v2/web' },
      'registryUrl: expected the address',
    ],
    [
      'a schedule of five fields',
      { schedule: 'cron(0 3 * * *)' },
      'schedule: expected an EventBridge Scheduler cron expression of six fields',
    ],
    ['a rate', { schedule: 'rate(1 day)' }, 'schedule: expected an EventBridge Scheduler cron expression'],
    [
      'a full disk as threshold',
      { diskThresholdPercent: 100 },
      'diskThresholdPercent: expected a percentage above 0 and below 100, e.g. 85, got 100',
    ],
    ['a relative disk path', { diskPath: 'srv/registry' }, 'diskPath: expected the mount point'],
    [
      'a quote in a disk dimension',
      { diskDevice: "nvme1n1' OR '1" },
      "diskDevice: expected the CloudWatch agent's device dimension",
    ],
    [
      'a name for an address',
      { notificationEmail: 'ops' },
      'notificationEmail: expected an email address such as ops@example.com, got "ops"',
    ],
    [
      'a security group alone',
      { securityGroupId: 'sg-0123456789abcdef0' },
      'securityGroupId: only used with vpcId and subnetIds',
    ],
    [
      'a policy without a keep rule',
      { policy: {} },
      'policy: no retention rule: give "defaults" a keepLast, keepDays or keepTags',
    ],
    [
      'an unknown policy field',
      { emergencyPolicy: { defaults: { keepLast: 1, keep: 2 } } },
      'emergencyPolicy: defaults: Unrecognized key: "keep"',
    ],
    [
      'a container name with a space',
      { container: 'registry 1' },
      'container: expected a container name or id',
    ],
    [
      'a relative storage root',
      { storageRoot: 'var/lib/registry' },
      'storageRoot: expected an absolute path',
    ],
    [
      'an execution timeout the SSM Agent would ignore',
      { executionTimeoutSeconds: 4 },
      'executionTimeoutSeconds: expected a whole number of seconds from 5 to 172800: how long SSM lets the host script run, e.g. 3600, got 4',
    ],
    [
      'a fraction of an execution',
      { reservedConcurrency: 0.5 },
      'reservedConcurrency: expected 0 (no reservation',
    ],
    [
      'an alias for the key',
      {
        registrySecret: 'registry/login',
        registrySecretKmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:alias/registry',
      },
      "registrySecretKmsKeyArn: expected the ARN of the customer-managed KMS key the secret is encrypted with, such as arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab (an alias's ARN does not grant the key it names",
    ],
    [
      'a key without a secret',
      {
        registrySecretKmsKeyArn:
          'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      },
      'registrySecretKmsKeyArn: only used with registrySecret',
    ],
    [
      'a CA file that is not there',
      { registryCaPem: 'certs/missing.pem' },
      'registryCaPem: "certs/missing.pem" cannot be read (ENOENT): expected the path of a PEM file of CA certificates',
    ],
    [
      'a misspelt key',
      { registryURL: 'https://registry.internal:5000' },
      'registryURL: not a key registry-janitor reads, so its value would be ignored: did you mean registryUrl?',
    ],
  ])('%s', (_, overrides, message) => {
    expect(refusedWith(overrides)).toEqual([expect.stringContaining(message)]);
  });

  it('a CA file without a certificate', () => {
    const notPem = join(scratch, 'key.pem');
    writeFileSync(notPem, '-----BEGIN PRIVATE KEY-----\n');

    expect(refusedWith({ registryCaPem: notPem })).toEqual([
      `registryCaPem: ${JSON.stringify(notPem)} holds no PEM certificate (-----BEGIN CERTIFICATE-----): expected the CA certificates that sign the registry's certificate`,
    ]);
  });
});
