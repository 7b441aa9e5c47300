import { CfnOutput, Fn, Stack, type StackProps, TimeZone, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { SSM_OUTPUT_PREFIX } from '../lambda/aws/host-commands.js';
import { decimalNumber } from '../lambda/domain/quantity.js';
import { redactText } from '../lambda/redact.js';
import { RegistryJanitor, type RegistryJanitorProps } from './registry-janitor.js';

/** The context keys the stack reads (cdk.json, or `-c key=value`). */
export const CONTEXT = {
  stackName: 'stackName',
  registryUrl: 'registryUrl',
  instanceId: 'instanceId',
  registrySecret: 'registrySecret',
  schedule: 'schedule',
  timeZone: 'timeZone',
  diskThresholdPercent: 'diskThresholdPercent',
  diskPath: 'diskPath',
  diskDevice: 'diskDevice',
  diskFstype: 'diskFstype',
  notificationEmail: 'notificationEmail',
  vpcId: 'vpcId',
  subnetIds: 'subnetIds',
  securityGroupId: 'securityGroupId',
  instanceRoleArn: 'instanceRoleArn',
  policy: 'policy',
  emergencyPolicy: 'emergencyPolicy',
  gcMode: 'gcMode',
  container: 'container',
  registryConfigPath: 'registryConfigPath',
  storageRoot: 'storageRoot',
  dryRun: 'dryRun',
  maxDelete: 'maxDelete',
  logRetentionDays: 'logRetentionDays',
} as const;

export const DEFAULT_STACK_NAME = 'RegistryJanitor';

/** Context values the stack cannot use; every problem is listed with its key. */
export class ContextError extends Error {
  override readonly name = 'ContextError';
  constructor(readonly problems: readonly string[]) {
    super(
      redactText(
        `the cdk.json context is not usable:\n${problems.map((p) => `- ${p}`).join('\n')}\nSet the values in cdk.json or with -c key=value.`,
      ),
    );
  }
}

const CONTEXT_NUMBER = decimalNumber();
const SECRET_COMPLETE_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/;
const ARN = /^arn:aws[a-z-]*:/;
const RETENTION_DAYS = new Set<number>(
  Object.values(logs.RetentionDays).filter((value): value is number => typeof value === 'number'),
);

/** Reads context values: empty strings and nulls count as unset, `-c` strings as numbers, booleans or JSON. */
class ContextReader {
  readonly problems: string[] = [];

  constructor(private readonly scope: Construct) {}

  private raw(key: string): unknown {
    const value: unknown = this.scope.node.tryGetContext(key);
    return value === null || value === '' ? undefined : value;
  }

  string(key: string): string | undefined {
    const value = this.raw(key);
    if (value === undefined || typeof value === 'string') return value;
    this.problems.push(`${key}: expected a string, got ${JSON.stringify(value)}`);
    return undefined;
  }

  required(key: string, example: string): string {
    const value = this.string(key);
    if (value === undefined) this.problems.push(`${key}: required, e.g. ${example}`);
    return value ?? '';
  }

  number(key: string): number | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    const reading = CONTEXT_NUMBER.read(value);
    if (reading.ok) return reading.value;
    this.problems.push(`${key}: ${reading.problem}`);
    return undefined;
  }

  boolean(key: string): boolean | undefined {
    const value = this.raw(key);
    if (value === undefined || typeof value === 'boolean') return value;
    if (value === 'true' || value === 'false') return value === 'true';
    this.problems.push(`${key}: expected true or false, got ${JSON.stringify(value)}`);
    return undefined;
  }

  list(key: string): string[] | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    const items = typeof value === 'string' ? value.split(',').map((item) => item.trim()) : value;
    if (Array.isArray(items) && items.every((item) => typeof item === 'string' && item !== '')) {
      return items.length > 0 ? items : undefined;
    }
    this.problems.push(
      `${key}: expected a list of strings or a comma-separated string, got ${JSON.stringify(value)}`,
    );
    return undefined;
  }

  /** A JSON object, given as an object (cdk.json) or as JSON text (-c). */
  object(key: string): Record<string, unknown> | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    let parsed: unknown = value;
    if (typeof value === 'string') {
      try {
        parsed = JSON.parse(value);
      } catch (error) {
        this.problems.push(`${key}: not valid JSON (${(error as Error).message})`);
        return undefined;
      }
    }
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
    this.problems.push(`${key}: expected a JSON object, got ${JSON.stringify(value)}`);
    return undefined;
  }
}

/**
 * registry-janitor for one registry, configured from the context: see CONTEXT for the keys. Synthesizes without
 * AWS credentials: nothing is looked up.
 */
export class RegistryJanitorStack extends Stack {
  readonly janitor: RegistryJanitor;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, {
      description: 'registry-janitor: cleans stale images out of a self-hosted Docker registry',
      ...props,
    });
    const context = new ContextReader(this);

    const registryUrl = context.required(CONTEXT.registryUrl, 'https://registry.internal:5000');
    const instanceId = context.required(CONTEXT.instanceId, 'i-0123456789abcdef0');
    const secret = context.string(CONTEXT.registrySecret);
    const gcMode = context.string(CONTEXT.gcMode);
    if (gcMode !== undefined && gcMode !== 'online' && gcMode !== 'stopped') {
      context.problems.push(`${CONTEXT.gcMode}: expected online or stopped, got ${JSON.stringify(gcMode)}`);
    }
    const logRetentionDays = context.number(CONTEXT.logRetentionDays);
    if (logRetentionDays !== undefined && !RETENTION_DAYS.has(logRetentionDays)) {
      context.problems.push(
        `${CONTEXT.logRetentionDays}: expected one of CloudWatch Logs' retention periods (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, …), got ${logRetentionDays}`,
      );
    }
    const vpcId = context.string(CONTEXT.vpcId);
    const subnetIds = context.list(CONTEXT.subnetIds);
    const securityGroupId = context.string(CONTEXT.securityGroupId);
    if ((vpcId === undefined) !== (subnetIds === undefined)) {
      context.problems.push(
        `${CONTEXT.vpcId} and ${CONTEXT.subnetIds}: give both to run the function in a VPC, or neither`,
      );
    }
    if (securityGroupId !== undefined && vpcId === undefined) {
      context.problems.push(
        `${CONTEXT.securityGroupId}: only used with ${CONTEXT.vpcId} and ${CONTEXT.subnetIds}`,
      );
    }
    const instanceRoleArn = context.string(CONTEXT.instanceRoleArn);
    if (instanceRoleArn !== undefined && !ARN.test(instanceRoleArn)) {
      context.problems.push(
        `${CONTEXT.instanceRoleArn}: expected an IAM role ARN such as arn:aws:iam::123456789012:role/registry-host, got ${JSON.stringify(instanceRoleArn)}`,
      );
    }
    const timeZone = context.string(CONTEXT.timeZone);
    const policy = context.object(CONTEXT.policy);
    if (policy === undefined && context.problems.every((p) => !p.startsWith(`${CONTEXT.policy}:`))) {
      context.problems.push(
        `${CONTEXT.policy}: required, e.g. {"defaults": {"keepLast": 10, "keepTags": ["^latest$"]}} (policy.schema.json)`,
      );
    }
    const settings: Omit<RegistryJanitorProps, 'registryUrl' | 'instanceId' | 'policy'> = {
      schedule: context.string(CONTEXT.schedule),
      timeZone: timeZone === undefined ? undefined : TimeZone.of(timeZone),
      diskAlarmThresholdPercent: context.number(CONTEXT.diskThresholdPercent),
      diskMetric: {
        path: context.string(CONTEXT.diskPath) ?? '/',
        device: context.string(CONTEXT.diskDevice),
        fstype: context.string(CONTEXT.diskFstype),
      },
      notificationEmail: context.string(CONTEXT.notificationEmail),
      emergencyPolicy: context.object(CONTEXT.emergencyPolicy),
      gcMode: gcMode as RegistryJanitorProps['gcMode'],
      container: context.string(CONTEXT.container),
      registryConfigPath: context.string(CONTEXT.registryConfigPath),
      storageRoot: context.string(CONTEXT.storageRoot),
      dryRun: context.boolean(CONTEXT.dryRun),
      maxDelete: context.number(CONTEXT.maxDelete),
      logRetention: logRetentionDays as logs.RetentionDays | undefined,
    };
    if (context.problems.length > 0) throw new ContextError(context.problems);

    const registrySecret = secret === undefined ? undefined : this.registrySecret(secret);
    this.janitor = new RegistryJanitor(this, 'Janitor', {
      ...settings,
      registryUrl,
      instanceId,
      policy: policy ?? {},
      registrySecret,
      instanceRole:
        instanceRoleArn === undefined
          ? undefined
          : iam.Role.fromRoleArn(this, 'InstanceRole', instanceRoleArn, { mutable: true }),
      ...(vpcId !== undefined && subnetIds !== undefined
        ? this.network(vpcId, subnetIds, securityGroupId)
        : {}),
    });
    if (registrySecret !== undefined && registrySecret.secretFullArn === undefined) {
      Validations.of(this.janitor.function.role ?? this).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${renderForNag(this.resolve(registrySecret.secretArn))}-??????]`,
        reason:
          'Secrets Manager appends six random characters to a secret ARN, which a policy for a secret given by name can only match with -??????. Give the complete ARN to grant exactly one secret.',
      });
    }

    new CfnOutput(this, 'OutputBucketName', {
      description: `Command output and run history. The registry instance's role needs s3:PutObject on arn:aws:s3:::<this bucket>/${SSM_OUTPUT_PREFIX}/* and s3:GetEncryptionConfiguration on the bucket (set ${CONTEXT.instanceRoleArn} to have it granted).`,
      value: this.janitor.outputBucket.bucketName,
    });
    new CfnOutput(this, 'DocumentName', {
      description: 'The SSM Command document that runs the host script on the registry instance',
      value: this.janitor.documentName,
    });
    new CfnOutput(this, 'FunctionName', {
      description: 'Invoke it with {"trigger":"schedule"} or an override to run now',
      value: this.janitor.function.functionName,
    });
    new CfnOutput(this, 'TopicArn', {
      description: 'Run summaries, failures and alarms',
      value: this.janitor.topic.topicArn,
    });
  }

  /** A complete ARN grants exactly that secret; a name or partial ARN needs the `-??????` suffix in the policy. */
  private registrySecret(value: string): secretsmanager.ISecret {
    if (SECRET_COMPLETE_ARN.test(value)) {
      return secretsmanager.Secret.fromSecretCompleteArn(this, 'RegistrySecret', value);
    }
    return ARN.test(value)
      ? secretsmanager.Secret.fromSecretPartialArn(this, 'RegistrySecret', value)
      : secretsmanager.Secret.fromSecretNameV2(this, 'RegistrySecret', value);
  }

  private network(
    vpcId: string,
    subnetIds: string[],
    securityGroupId: string | undefined,
  ): Pick<RegistryJanitorProps, 'vpc' | 'vpcSubnets' | 'securityGroups'> {
    // The subnets are selected by id below, so the availability zones are never consulted.
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId, availabilityZones: Fn.getAzs() });
    return {
      vpc,
      vpcSubnets: {
        subnets: subnetIds.map((subnetId, index) =>
          ec2.Subnet.fromSubnetId(this, `Subnet${index}`, subnetId),
        ),
      },
      securityGroups:
        securityGroupId === undefined
          ? undefined
          : [
              ec2.SecurityGroup.fromSecurityGroupId(this, 'SecurityGroup', securityGroupId, {
                mutable: false,
              }),
            ],
    };
  }
}

/** A resolved value as cdk-nag names it in a finding: pseudo parameters as `<AWS::Region>`. */
function renderForNag(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record.Ref === 'string') return `<${record.Ref}>`;
    const join = record['Fn::Join'];
    if (Array.isArray(join) && Array.isArray(join[1])) {
      return (join[1] as unknown[]).map(renderForNag).join(String(join[0]));
    }
  }
  return JSON.stringify(value);
}
