import { CfnOutput, Fn, Stack, type StackProps, TimeZone, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { RUNS_PREFIX } from '../lambda/aws/history.js';
import { SSM_OUTPUT_PREFIX } from '../lambda/aws/host-commands.js';
import { CONTEXT, readSettings } from './context.js';
import { RegistryJanitor, type RegistryJanitorProps } from './registry-janitor.js';

export { CONTEXT, CONTEXT_KEYS, ContextError } from './context.js';

export const DEFAULT_STACK_NAME = 'RegistryJanitor';

/** The disk alarm is named after the stack, so its state-change events can be written down in advance. */
export const DISK_ALARM_SUFFIX = '-registry-disk-used';

const SECRET_COMPLETE_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/;

/**
 * registry-janitor for one registry, configured from the context: see CONTEXT for the keys. Synthesizes without
 * AWS credentials: nothing is looked up. A context it cannot use throws a ContextError listing every problem.
 */
export class RegistryJanitorStack extends Stack {
  readonly janitor: RegistryJanitor;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, {
      description: 'registry-janitor: cleans stale images out of a self-hosted Docker registry',
      ...props,
    });
    const settings = readSettings(this);
    const registrySecret =
      settings.registrySecret === undefined ? undefined : this.registrySecret(settings.registrySecret);

    this.janitor = new RegistryJanitor(this, 'Janitor', {
      registryUrl: settings.registryUrl,
      instanceId: settings.instanceId,
      instanceRole: iam.Role.fromRoleArn(this, 'InstanceRole', settings.instanceRoleArn, { mutable: true }),
      registrySecret,
      registrySecretKey:
        settings.registrySecretKmsKeyArn === undefined
          ? undefined
          : kms.Key.fromKeyArn(this, 'RegistrySecretKey', settings.registrySecretKmsKeyArn),
      registryCaPem: settings.registryCaPem,
      policy: settings.policy,
      emergencyPolicy: settings.emergencyPolicy,
      schedule: settings.schedule,
      timeZone: settings.timeZone === undefined ? undefined : TimeZone.of(settings.timeZone),
      diskMetric: { path: settings.diskPath, device: settings.diskDevice, fstype: settings.diskFstype },
      diskAlarmThresholdPercent: settings.diskThresholdPercent,
      diskAlarmName: `${this.stackName}${DISK_ALARM_SUFFIX}`,
      notificationEmail: settings.notificationEmail,
      ...settings.hostProps,
      dryRun: settings.dryRun,
      maxDelete: settings.maxDelete,
      logRetention: settings.logRetentionDays as logs.RetentionDays | undefined,
      reservedConcurrency: settings.reservedConcurrency,
      executionTimeoutSeconds: settings.executionTimeoutSeconds,
      ...(settings.network !== undefined
        ? this.network(settings.network.vpcId, settings.network.subnetIds, settings.network.securityGroupId)
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
      description: `Command output under ${SSM_OUTPUT_PREFIX}/ (written by the role ${CONTEXT.instanceRoleArn} names) and run reports under ${RUNS_PREFIX}`,
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
    new CfnOutput(this, 'DiskAlarmName', {
      description: 'The alarm that starts an emergency run, as its state-change events name it',
      value: this.janitor.diskAlarm.alarmName,
    });
  }

  /** A complete ARN grants exactly that secret; a name or partial ARN needs the `-??????` suffix in the policy. */
  private registrySecret(value: string): secretsmanager.ISecret {
    if (SECRET_COMPLETE_ARN.test(value)) {
      return secretsmanager.Secret.fromSecretCompleteArn(this, 'RegistrySecret', value);
    }
    return value.startsWith('arn:')
      ? secretsmanager.Secret.fromSecretPartialArn(this, 'RegistrySecret', value)
      : secretsmanager.Secret.fromSecretNameV2(this, 'RegistrySecret', value);
  }

  private network(
    vpcId: string,
    subnetIds: readonly string[],
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
