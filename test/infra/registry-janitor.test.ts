import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CfnElement, Duration, type Stack, TimeZone } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { IConstruct } from 'constructs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diskUsedQuery, RegistryJanitorPropsError } from '../../infra/registry-janitor.js';
import { ENV } from '../../lambda/aws/function-config.js';
import { PENDING_KEY } from '../../lambda/aws/history.js';
import { LEASE_KEY } from '../../lambda/aws/lease.js';
import { METRICS, REGISTRY_DIMENSION } from '../../lambda/aws/metrics.js';
import { HOST_PARAMETERS, maintenanceScript } from '../../lambda/host/script.js';
import { DEFAULT_STEP_NAME } from '../../lambda/host/ssm-runner.js';
import { INSTANCE_ID, REGISTRY_URL, synthConstruct, text } from './stacks.js';

type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Sid?: string };

const only = (template: Template, type: string): [string, Record<string, unknown>] => {
  const resources = Object.entries(template.findResources(type));
  expect(resources).toHaveLength(1);
  const [logicalId, resource] = resources[0] as [string, { Properties: Record<string, unknown> }];
  return [logicalId, resource.Properties];
};

const logicalId = (stack: Stack, construct: IConstruct | undefined): string => {
  if (construct === undefined) throw new Error('no construct to name');
  return stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
};

/** Every statement of the policies attached to the function's role. */
const functionStatements = (template: Template, roleId: string): Statement[] =>
  Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => text(policy.Properties.Roles) === text([{ Ref: roleId }]))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);

const actions = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

const instanceArn = {
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      ':ec2:',
      { Ref: 'AWS::Region' },
      ':',
      { Ref: 'AWS::AccountId' },
      `:instance/${INSTANCE_ID}`,
    ],
  ],
};

describe('the function', () => {
  it('runs on nodejs24.x and arm64, alone, for up to 15 minutes', () => {
    const { template } = synthConstruct();

    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      ReservedConcurrentExecutions: 1,
      Timeout: 900,
      MemorySize: 1024,
    });
  });

  it.each([
    [0, undefined],
    [1, 1],
    [2, 2],
  ])('reserves %s executions as reservedConcurrency asks', (reservedConcurrency, reserved) => {
    const { template } = synthConstruct({ reservedConcurrency });

    const [, fn] = only(template, 'AWS::Lambda::Function');
    expect(fn.ReservedConcurrentExecutions).toBe(reserved);
  });

  it('is invoked asynchronously without retries, for events at most an hour old, failures to an encrypted queue', () => {
    const { template, stack, janitor } = synthConstruct();

    const queueId = logicalId(stack, janitor.failedInvocationQueue);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
    expect(template.toJSON().Resources[queueId].Properties).toMatchObject({ SqsManagedSseEnabled: true });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('logs to its own log group, kept for the retention given', () => {
    const { template, stack, janitor } = synthConstruct({ logRetention: logs.RetentionDays.ONE_MONTH });

    const logGroupId = logicalId(stack, janitor.logGroup);
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    template.hasResourceProperties('AWS::Lambda::Function', {
      LoggingConfig: { LogGroup: { Ref: logGroupId } },
    });
  });

  it('keeps its logs three months by default', () => {
    const { template } = synthConstruct();

    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
  });

  it('gets its configuration through the variables the handler reads', () => {
    const { template, stack, janitor } = synthConstruct((scope) => ({
      registrySecret: secretsmanager.Secret.fromSecretCompleteArn(
        scope,
        'Secret',
        'arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry-AbCdEf',
      ),
      gcMode: 'stopped',
      container: 'registry-1',
      registryConfigPath: '/etc/distribution/config.yml',
      storageRoot: '/data',
      hostLockFile: '/run/janitor.lock',
      hostLogDir: '/var/log/janitor',
      emergencyPolicy: '{"defaults":{"keepLast":2}}',
      dryRun: true,
      repositories: ['web/*'],
      excludeRepositories: ['web/keep'],
      metricsNamespace: 'Janitor',
      concurrency: 4,
      gcWaitSeconds: 300,
      executionTimeoutSeconds: 7200,
      maxDelete: 100,
    }));

    const [, fn] = only(template, 'AWS::Lambda::Function');
    const variables = (fn.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables).toEqual({
      [ENV.registryUrl]: REGISTRY_URL,
      [ENV.registrySecretArn]: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry-AbCdEf',
      [ENV.instanceId]: INSTANCE_ID,
      [ENV.ssmDocument]: { Ref: logicalId(stack, janitor.document) },
      [ENV.bucket]: { Ref: logicalId(stack, janitor.outputBucket) },
      REGISTRY_CONTAINER: 'registry-1',
      REGISTRY_CONFIG_PATH: '/etc/distribution/config.yml',
      REGISTRY_STORAGE_ROOT: '/data',
      GC_MODE: 'stopped',
      HOST_LOCK_FILE: '/run/janitor.lock',
      HOST_LOG_DIR: '/var/log/janitor',
      [ENV.policy]: '{"defaults":{"keepLast":10,"keepTags":["^latest$"]}}',
      [ENV.emergencyPolicy]: '{"defaults":{"keepLast":2}}',
      [ENV.dryRun]: 'true',
      [ENV.repositories]: '["web/*"]',
      [ENV.excludeRepositories]: '["web/keep"]',
      [ENV.topicArn]: { Ref: logicalId(stack, janitor.topic) },
      [ENV.diskAlarmName]: { Ref: logicalId(stack, janitor.diskAlarm) },
      [ENV.metricsNamespace]: 'Janitor',
      [ENV.concurrency]: '4',
      [ENV.gcWaitSeconds]: '300',
      [ENV.executionTimeoutSeconds]: '7200',
      [ENV.maxDelete]: '100',
      NODE_OPTIONS: '--enable-source-maps',
    });
  });

  it("trusts the registry's CA certificates, shipped beside the handler, through NODE_EXTRA_CA_CERTS", () => {
    const notPem = fileURLToPath(new URL('../../host-setup/registry-janitor.service', import.meta.url));
    expect(() => synthConstruct({ registryCaPem: notPem })).toThrow(/holds no PEM certificate/);

    const dir = mkdtempSync(join(tmpdir(), 'registry-janitor-ca-'));
    try {
      const ca = join(dir, 'ca.pem');
      writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      const { template } = synthConstruct({ registryCaPem: ca });

      const [, fn] = only(template, 'AWS::Lambda::Function');
      const variables = (fn.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables.NODE_EXTRA_CA_CERTS).toBe('/var/task/registry-ca.pem');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sets only the variables it has values for', () => {
    const { template } = synthConstruct();

    const [, fn] = only(template, 'AWS::Lambda::Function');
    const variables = (fn.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(Object.keys(variables).sort()).toEqual(
      [
        ENV.registryUrl,
        ENV.instanceId,
        ENV.ssmDocument,
        ENV.bucket,
        'REGISTRY_CONTAINER',
        'GC_MODE',
        ENV.policy,
        ENV.dryRun,
        ENV.topicArn,
        ENV.diskAlarmName,
        ENV.metricsNamespace,
        ENV.executionTimeoutSeconds,
        'NODE_OPTIONS',
      ].sort(),
    );
    expect(variables[ENV.executionTimeoutSeconds]).toBe('3600');
    expect(variables[ENV.dryRun]).toBe('false');
    expect(variables.GC_MODE).toBe('online');
    expect(variables.REGISTRY_CONTAINER).toBe('registry');
    expect(variables[ENV.metricsNamespace]).toBe('RegistryJanitor');
  });

  it('runs in the VPC given, with the network-interface permissions Lambda needs there and no logs actions on *', () => {
    const { template, stack, janitor } = synthConstruct((scope) => {
      const vpc = importedVpc(scope);
      return { vpc, vpcSubnets: { subnets: vpc.privateSubnets } };
    });

    const roleId = logicalId(stack, janitor.function.role);
    const [, fn] = Object.entries(template.findResources('AWS::Lambda::Function'))[0] as [
      string,
      { Properties: Record<string, unknown>; DependsOn: string[] },
    ];
    expect(fn.Properties.VpcConfig).toMatchObject({
      SubnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
    });
    const statements = functionStatements(template, roleId);
    expect(statements).toContainEqual({
      Sid: 'ManageNetworkInterfacesInVpc',
      Effect: 'Allow',
      Action: [
        'ec2:CreateNetworkInterface',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DescribeSubnets',
        'ec2:DeleteNetworkInterface',
        'ec2:AssignPrivateIpAddresses',
        'ec2:UnassignPrivateIpAddresses',
      ],
      Resource: '*',
    });
    expect(statements.flatMap(actions).filter((a) => a.startsWith('logs:'))).not.toHaveLength(0);
    const onEverything = statements.filter((s) => s.Resource === '*').flatMap(actions);
    expect(onEverything.filter((a) => a.startsWith('logs:'))).toEqual([]);
    expect(template.toJSON().Resources[roleId].Properties.ManagedPolicyArns).toBeUndefined();
    // Lambda checks the network-interface permissions when it creates the function: the policy must exist first.
    const [policyId] = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([, policy]) => text(policy.Properties.Roles) === text([{ Ref: roleId }]))
      .map(([id]) => id);
    expect(fn.DependsOn).toContain(policyId);
  });
});

function importedVpc(scope: Stack): ec2.IVpc {
  return ec2.Vpc.fromVpcAttributes(scope, 'Vpc', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
  });
}

describe("the function's permissions", () => {
  it('send commands with exactly the document, the instance and the output bucket', () => {
    const { template, stack, janitor } = synthConstruct();

    const statements = functionStatements(template, logicalId(stack, janitor.function.role));
    const sendCommand = statements.filter((s) => actions(s).some((a) => a.startsWith('ssm:Send')));
    expect(sendCommand).toEqual([
      {
        Sid: 'SendCommandToRegistryHost',
        Effect: 'Allow',
        Action: 'ssm:SendCommand',
        Resource: [
          {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':ssm:',
                { Ref: 'AWS::Region' },
                ':',
                { Ref: 'AWS::AccountId' },
                ':document/',
                { Ref: logicalId(stack, janitor.document) },
              ],
            ],
          },
          instanceArn,
          { 'Fn::GetAtt': [logicalId(stack, janitor.outputBucket), 'Arn'] },
        ],
      },
    ]);
  });

  it('read command invocations, the one action allowed on *', () => {
    const { template, stack, janitor } = synthConstruct();

    const statements = functionStatements(template, logicalId(stack, janitor.function.role));
    const onEverything = statements.filter((s) => text(s.Resource).includes('"*"'));
    expect(onEverything).toEqual([
      { Sid: 'ReadCommandInvocations', Effect: 'Allow', Action: 'ssm:GetCommandInvocation', Resource: '*' },
    ]);
    const ssmActions = statements.flatMap(actions).filter((a) => a.startsWith('ssm:'));
    expect(ssmActions.sort()).toEqual(['ssm:GetCommandInvocation', 'ssm:SendCommand']);
  });

  it('read the registry secret', () => {
    const secretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry-AbCdEf';
    const { template, stack, janitor } = synthConstruct((scope) => ({
      registrySecret: secretsmanager.Secret.fromSecretCompleteArn(scope, 'Secret', secretArn),
    }));

    const statements = functionStatements(template, logicalId(stack, janitor.function.role));
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      Resource: secretArn,
    });
  });

  it('read command output, write run reports, settle the pending record and hold the run lease, in the bucket only', () => {
    const { template, stack, janitor } = synthConstruct();

    const bucketArn = { 'Fn::GetAtt': [logicalId(stack, janitor.outputBucket), 'Arn'] };
    const objects = (suffix: string) => ({ 'Fn::Join': ['', [bucketArn, suffix]] });
    const statements = functionStatements(template, logicalId(stack, janitor.function.role));
    const s3 = statements.filter((s) => actions(s).some((a) => a.startsWith('s3:')));
    expect(s3).toEqual([
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn },
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [objects('/ssm/*'), objects(`/${PENDING_KEY}`), objects(`/${LEASE_KEY}`)],
      },
      { Effect: 'Allow', Action: 's3:PutObject', Resource: objects('/runs/*') },
      {
        Effect: 'Allow',
        Action: 's3:DeleteObject',
        Resource: [objects(`/${PENDING_KEY}`), objects(`/${LEASE_KEY}`)],
      },
    ]);
  });

  it('publish to the topic', () => {
    const { template, stack, janitor } = synthConstruct();

    const statements = functionStatements(template, logicalId(stack, janitor.function.role));
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: 'sns:Publish',
      Resource: { Ref: logicalId(stack, janitor.topic) },
    });
  });

  it('decrypt the registry secret with its customer-managed key, through Secrets Manager only', () => {
    const keyArn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const { template, stack, janitor } = synthConstruct((scope) => ({
      registrySecret: secretsmanager.Secret.fromSecretNameV2(scope, 'Secret', 'registry/login'),
      registrySecretKey: kms.Key.fromKeyArn(scope, 'Key', keyArn),
    }));

    const statements = functionStatements(template, logicalId(stack, janitor.function.role));
    expect(statements.filter((s) => actions(s).some((a) => a.startsWith('kms:')))).toEqual([
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
    ]);
  });

  it('refuse a key without the secret it encrypts', () => {
    expect(() =>
      synthConstruct((scope) => ({
        registrySecretKey: kms.Key.fromKeyArn(
          scope,
          'Key',
          'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        ),
      })),
    ).toThrow(/registrySecretKey is the key of registrySecret: give the secret too/);
  });

  it("let the registry instance's role write command output", () => {
    const { template, stack, janitor } = synthConstruct((scope) => ({
      instanceRole: iam.Role.fromRoleArn(scope, 'HostRole', 'arn:aws:iam::123456789012:role/registry-host'),
    }));

    const bucketArn = { 'Fn::GetAtt': [logicalId(stack, janitor.outputBucket), 'Arn'] };
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: ['registry-host'],
      PolicyDocument: {
        Statement: [
          { Effect: 'Allow', Action: 's3:PutObject', Resource: { 'Fn::Join': ['', [bucketArn, '/ssm/*']] } },
          { Effect: 'Allow', Action: 's3:GetEncryptionConfiguration', Resource: bucketArn },
        ],
      },
    });
  });
});

describe('the schedule', () => {
  it('invokes the function nightly at the exact time, retrying twice within an hour, then to a dead-letter queue', () => {
    const { template, stack, janitor } = synthConstruct({
      schedule: 'cron(30 2 * * ? *)',
      timeZone: TimeZone.EUROPE_BERLIN,
    });

    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 2 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [logicalId(stack, janitor.function), 'Arn'] },
        Input: '{"trigger":"schedule"}',
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: {
          Arn: { 'Fn::GetAtt': [logicalId(stack, janitor.deliveryDeadLetterQueue), 'Arn'] },
        },
      },
    });
  });

  it('runs at 03:00 UTC by default', () => {
    const { template } = synthConstruct();

    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Etc/UTC',
    });
  });
});

describe('the SSM document', () => {
  const documentOf = (template: Template) => {
    const [, properties] = only(template, 'AWS::SSM::Document');
    return properties as {
      DocumentType: string;
      Name: string;
      UpdateMethod: string;
      Content: {
        schemaVersion: string;
        parameters: Record<string, Record<string, unknown>>;
        mainSteps: {
          action: string;
          name: string;
          inputs: { runCommand: string[]; timeoutSeconds: string };
        }[];
      };
    };
  };

  it('is a Command document whose one step runs the host script', () => {
    const { template } = synthConstruct();

    const document = documentOf(template);
    expect(document.DocumentType).toBe('Command');
    expect(document.UpdateMethod).toBe('NewVersion');
    expect(document.Content.schemaVersion).toBe('2.2');
    expect(document.Content.mainSteps).toHaveLength(1);
    const step = document.Content.mainSteps[0];
    expect(step?.action).toBe('aws:runShellScript');
    expect(step?.name).toBe(DEFAULT_STEP_NAME);
    expect(step?.inputs.runCommand.at(-1)).toBe(maintenanceScript());
  });

  it('has a stable name, given to the function', () => {
    const first = synthConstruct();
    const second = synthConstruct({ diskAlarmThresholdPercent: 90 });

    expect(documentOf(first.template).Name).toMatch(/^RegistryJanitor-HostMaintenance-[0-9A-F]{8}$/);
    expect(documentOf(second.template).Name).toBe(documentOf(first.template).Name);
    expect(synthConstruct({ documentName: 'registry-gc' }).janitor.documentName).toBe('registry-gc');
  });

  it('takes each script input as an ENV_VAR parameter with an allowedPattern free of lookarounds', () => {
    const { template } = synthConstruct();

    const { parameters } = documentOf(template).Content;
    for (const input of HOST_PARAMETERS) {
      const parameter = parameters[input.param];
      expect(parameter).toMatchObject({ type: 'String', interpolationType: 'ENV_VAR' });
      expect(parameter?.allowedPattern).toEqual(expect.any(String));
      expect(parameter?.allowedPattern).not.toMatch(/\(\?<?[=!]/);
    }
    expect(parameters.storageRoot?.maxChars).toBe(256);
  });

  it('accepts through allowedPattern and maxChars exactly what the host script accepts, or empty', () => {
    const { template } = synthConstruct();
    const { parameters } = documentOf(template).Content;
    const units = ['a', 'Z', '0', '9', '.', '_', '-', '/', ' ', ';', '$', '{', '\n', 'é'];
    const values = fc.oneof(
      fc.string({ unit: fc.constantFrom(...units), maxLength: 12 }),
      fc.constantFrom(
        '/',
        '/.',
        '/..',
        '/a..b',
        '/a/./b',
        `/${'p'.repeat(255)}`,
        `/${'p'.repeat(256)}`,
        '65535',
      ),
    );

    fc.assert(
      fc.property(fc.constantFrom(...HOST_PARAMETERS), values, (input, value) => {
        const parameter = parameters[input.param] as { allowedPattern: string; maxChars?: number };
        const ssmAccepts =
          new RegExp(parameter.allowedPattern).test(value) &&
          (parameter.maxChars === undefined || value.length <= parameter.maxChars);
        const scriptAccepts = (input.param !== 'action' && value === '') || input.pattern.test(value);
        expect({ param: input.param, value, ssmAccepts }).toEqual({
          param: input.param,
          value,
          ssmAccepts: scriptAccepts,
        });
      }),
      { numRuns: 500 },
    );
  });

  it('lets the host script run as long as executionTimeoutSeconds says, an hour by default, and tells the function', () => {
    const timeoutOf = (props: Parameters<typeof synthConstruct>[0]) => {
      const { template } = synthConstruct(props);
      const { parameters, mainSteps } = documentOf(template).Content;
      const [, fn] = only(template, 'AWS::Lambda::Function');
      return {
        step: mainSteps[0]?.inputs.timeoutSeconds,
        allowedPattern: parameters.executionTimeout?.allowedPattern,
        documentDefault: parameters.executionTimeout?.default,
        functionSends: (fn.Environment as { Variables: Record<string, unknown> }).Variables[
          ENV.executionTimeoutSeconds
        ],
      };
    };

    const byDefault = timeoutOf({});
    const doubled = timeoutOf({ executionTimeoutSeconds: 7200 });

    expect(byDefault).toMatchObject({
      step: '{{ executionTimeout }}',
      documentDefault: '3600',
      functionSends: '3600',
    });
    expect(doubled).toMatchObject({ documentDefault: '7200', functionSends: '7200' });
    const accepts = new RegExp(String(byDefault.allowedPattern));
    expect(['4', '5', '3600', '172800', '172801', '05'].filter((v) => accepts.test(v))).toEqual([
      '5',
      '3600',
      '172800',
    ]);
  });

  it('holds no double brace but the execution timeout parameter', () => {
    const { template } = synthConstruct();

    const content = text(documentOf(template).Content);
    expect(content.match(/{{[^}]*}}/g)).toEqual(['{{ executionTimeout }}']);
  });
});

describe('the disk alarm', () => {
  it("watches the agent's disk_used_percent for the registry volume through a Metrics Insights query", () => {
    const { template, stack, janitor } = synthConstruct({ diskAlarmThresholdPercent: 80 });

    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [
        {
          Id: Match.anyValue(),
          Expression: `SELECT MAX(disk_used_percent) FROM CWAgent WHERE InstanceId = '${INSTANCE_ID}' AND path = '/srv/registry'`,
          Period: 300,
          ReturnData: true,
          Label: Match.anyValue(),
        },
      ],
      Threshold: 80,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
      AlarmActions: [{ Ref: logicalId(stack, janitor.topic) }],
    });
  });

  it('narrows the query to the device and file system type when given', () => {
    expect(
      diskUsedQuery('i-0abc', { path: '/data', device: 'nvme1n1', fstype: 'xfs', namespace: 'Agent' }),
    ).toBe(
      "SELECT MAX(disk_used_percent) FROM Agent WHERE InstanceId = 'i-0abc' AND path = '/data' AND device = 'nvme1n1' AND fstype = 'xfs'",
    );
  });

  it('is refused with a value that would break out of the query', () => {
    expect(() => synthConstruct({ diskMetric: { path: "/data' OR path = '/" } })).toThrow(
      /diskMetric: the path dimension must be 1 to 255 characters without ' or \\/,
    );
  });

  it('matches the CloudWatch agent configuration shipped for the host, whatever dimensions the agent adds', () => {
    const agent = JSON.parse(
      readFileSync(new URL('../../host-setup/cloudwatch-agent.json', import.meta.url), 'utf8'),
    ) as {
      metrics: {
        namespace: string;
        append_dimensions: Record<string, string>;
        metrics_collected: { disk: { measurement: string[]; resources: string[] } };
      };
    };
    const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
      context: { diskPath: string };
    };

    const query = diskUsedQuery(INSTANCE_ID, { path: cdkJson.context.diskPath });
    expect(query).toContain(`FROM ${agent.metrics.namespace} WHERE`);
    expect(query).not.toContain('SCHEMA(');
    expect(agent.metrics.append_dimensions.InstanceId).toMatch(/^\$\{aws:InstanceId\}$/);
    expect(agent.metrics.metrics_collected.disk.measurement).toContain('used_percent');
    expect(agent.metrics.metrics_collected.disk.resources).toContain(cdkJson.context.diskPath);
  });

  it('is named as diskAlarmName says, and by CloudFormation without it', () => {
    synthConstruct({ diskAlarmName: 'registry-disk-used' }).template.hasResourceProperties(
      'AWS::CloudWatch::Alarm',
      { AlarmName: 'registry-disk-used', Metrics: Match.anyValue() },
    );
    synthConstruct().template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: Match.absent(),
      Metrics: Match.anyValue(),
    });
  });

  it('starts the function when it goes into ALARM', () => {
    const { template, stack, janitor } = synthConstruct();

    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.cloudwatch'],
        'detail-type': ['CloudWatch Alarm State Change'],
        detail: {
          alarmName: [{ Ref: logicalId(stack, janitor.diskAlarm) }],
          state: { value: ['ALARM'] },
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(stack, janitor.function), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
          DeadLetterConfig: {
            Arn: { 'Fn::GetAtt': [logicalId(stack, janitor.deliveryDeadLetterQueue), 'Arn'] },
          },
        }),
      ],
    });
  });
});

describe('the command status rule', () => {
  it("tells the function when this document's command on this instance has ended", () => {
    const { template, stack, janitor } = synthConstruct();

    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ssm'],
        'detail-type': ['EC2 Command Status-change Notification'],
        resources: [instanceArn],
        detail: {
          'document-name': [{ Ref: logicalId(stack, janitor.document) }],
          status: ['Success', 'Failed', 'TimedOut', 'Cancelled'],
          parameters: { action: ['collect'] },
        },
      },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [logicalId(stack, janitor.function), 'Arn'] } })],
    });
  });
});

describe('the topic', () => {
  it('refuses requests without TLS', () => {
    const { template, stack, janitor } = synthConstruct();

    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: logicalId(stack, janitor.topic) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it("lets this account's alarms publish, since its policy replaces the default one", () => {
    const { template, stack, janitor } = synthConstruct();

    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: logicalId(stack, janitor.topic) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sns:Publish',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Condition: {
              StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
              ArnLike: { 'aws:SourceArn': Match.anyValue() },
            },
          }),
        ]),
      },
    });
  });

  it('mails the address given, and nobody without one', () => {
    synthConstruct({ notificationEmail: 'ops@example.com' }).template.hasResourceProperties(
      'AWS::SNS::Subscription',
      { Protocol: 'email', Endpoint: 'ops@example.com' },
    );
    synthConstruct().template.resourceCountIs('AWS::SNS::Subscription', 0);
  });
});

describe('the output bucket', () => {
  it('is encrypted, private, TLS-only and forgets objects after the retention period', () => {
    const { template, stack, janitor } = synthConstruct({ outputRetention: Duration.days(30) });

    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ Status: 'Enabled', ExpirationInDays: 30 })],
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalId(stack, janitor.outputBucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('keeps objects 90 days by default', () => {
    synthConstruct().template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 90 })] },
    });
  });
});

describe('the alarms', () => {
  const registryDimension = [{ Name: REGISTRY_DIMENSION, Value: 'registry.internal:5000' }];

  it.each([[METRICS.integrityFailures], [METRICS.runFailed]])(
    '%s above 0 notifies the topic',
    (metricName) => {
      const { template, stack, janitor } = synthConstruct();

      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'RegistryJanitor',
        MetricName: metricName,
        Dimensions: registryDimension,
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: logicalId(stack, janitor.topic) }],
      });
    },
  );

  it('a message in either dead-letter queue notifies the topic', () => {
    const { template, stack, janitor } = synthConstruct();

    for (const queue of [janitor.failedInvocationQueue, janitor.deliveryDeadLetterQueue]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack, queue), 'QueueName'] } }],
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        AlarmActions: [{ Ref: logicalId(stack, janitor.topic) }],
      });
    }
    template.resourceCountIs('AWS::CloudWatch::Alarm', 5);
  });
});

describe('the dashboard', () => {
  it('shows disk use, bytes reclaimed, manifests deleted, integrity failures and run outcomes', () => {
    const { template } = synthConstruct();

    const [, dashboard] = only(template, 'AWS::CloudWatch::Dashboard');
    const body = text(dashboard.DashboardBody);
    for (const title of [
      'Registry disk used %',
      'Bytes reclaimed per run',
      'Manifests deleted per run',
      'Integrity failures',
      'Run outcome',
    ]) {
      expect(body).toContain(title);
    }
    expect(body).toContain(
      `SELECT MAX(disk_used_percent) FROM CWAgent WHERE InstanceId = '${INSTANCE_ID}' AND path = '/srv/registry'`,
    );
    for (const name of Object.values(METRICS)) expect(body).toContain(name);
  });
});

describe('props the construct refuses', () => {
  it.each([
    [{ registryUrl: 'registry.internal' }, /registryUrl must be an http:\/\/ or https:\/\/ address/],
    [{ registryUrl: 'registry.internal:5000' }, /REGISTRY_URL: expected an http:\/\/ or https:\/\/ address/],
    [
      { diskAlarmThresholdPercent: 100 },
      /diskAlarmThresholdPercent must be between 0 and 100 \(exclusive\), got 100/,
    ],
    [
      { schedule: 'rate(1 day)' },
      /schedule must be an EventBridge Scheduler cron expression.*"rate\(1 day\)"/,
    ],
    [
      { documentName: 'AWS-Janitor' },
      /documentName must be .* not start with aws, amazon or amzn, got "AWS-Janitor"/,
    ],
    [{ policy: {} }, /the function would refuse its configuration:\n- .*no retention rule/],
    [
      { container: 'registry; reboot' },
      /- REGISTRY_CONTAINER: expected a container name or id: .*, got "registry; reboot"$/m,
    ],
    [{ instanceId: 'registry-host' }, /INSTANCE_ID: expected an EC2 instance id/],
    [{ maxDelete: 2.5 }, /MAX_DELETE: expected a whole number ≥ 0, got "2.5"/],
    [
      { registryCaPem: '/nonexistent/ca.pem' },
      /registryCaPem: "\/nonexistent\/ca.pem" cannot be read \(ENOENT\)/,
    ],
    [{ diskAlarmName: 'disk\nalarm' }, /diskAlarmName must be 1 to 255 printable ASCII characters/],
    [
      { executionTimeoutSeconds: 4 },
      /executionTimeoutSeconds must be a whole number of seconds from 5 to 172800 .*, got 4/,
    ],
    [
      { executionTimeoutSeconds: 90.5 },
      /executionTimeoutSeconds must be a whole number of seconds from 5 to 172800 .*, got 90.5/,
    ],
    [
      { reservedConcurrency: -1 },
      /reservedConcurrency must be 0 \(no reservation\) or a whole number .*, got -1/,
    ],
    [
      { policy: { defaults: { keepLast: 1, keepTags: ['x'.repeat(4000)] } } },
      /environment would be about \d+ bytes/,
    ],
  ])('%j', (props, message) => {
    expect(() => synthConstruct(props)).toThrow(RegistryJanitorPropsError);
    expect(() => synthConstruct(props)).toThrow(message);
  });
  it('a registryUrl with credentials, shown masked, with where they belong', () => {
    const synth = (password: string) => () =>
      synthConstruct({ registryUrl: `https://janitor:${password}@registry.internal:5000` });

    expect(synth('hunter2-Secret')).toThrow(RegistryJanitorPropsError);
    expect(synth('hunter2-Secret')).toThrow(
      'registryUrl must not hold credentials, got "https://janitor:***@registry.internal:5000": give https://registry.internal:5000 and the user name and password as registrySecret',
    );
    expect(synth('hunter2/Secret')).toThrow('got "https://janitor:***@registry.internal:5000"');
    for (const password of ['hunter2-Secret', 'hunter2/Secret'])
      expect(synth(password)).not.toThrow(/hunter2/);
  });
});
