import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArnFormat, Duration, Names, Stack, TimeZone, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { ConfigurationError, ENV, readFunctionConfig } from '../lambda/aws/function-config.js';
import { PENDING_KEY, RUNS_PREFIX } from '../lambda/aws/history.js';
import { SSM_OUTPUT_PREFIX } from '../lambda/aws/host-commands.js';
import { LEASE_KEY } from '../lambda/aws/lease.js';
import { METRICS, REGISTRY_DIMENSION, registryDimension } from '../lambda/aws/metrics.js';
import type { PolicyFile } from '../lambda/domain/policy.js';
import { type HostSetting, hostSettings } from '../lambda/host/script.js';
import {
  DEFAULT_STEP_NAME,
  documentContent,
  EXECUTION_TIMEOUT_SECONDS,
  shellQuote,
} from '../lambda/host/ssm-runner.js';
import { redactText } from '../lambda/redact.js';
import { withoutCredentials } from '../lambda/registry/address.js';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const HANDLER_ENTRY = fileURLToPath(new URL('../lambda/handler.ts', import.meta.url));
const LOCK_FILE = fileURLToPath(new URL('../package-lock.json', import.meta.url));

/** Makes `require` exist in the ESM bundle, for the CommonJS modules bundled into it (undici among them). */
export const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'node:module';const require = createRequire(import.meta.url);";

export const DEFAULT_METRICS_NAMESPACE = 'RegistryJanitor';

/** Statuses after which an SSM command does not change any more. */
export const TERMINAL_COMMAND_STATUSES = ['Success', 'Failed', 'TimedOut', 'Cancelled'];

/** The registry volume's `disk_used_percent` as the CloudWatch agent reports it. */
export interface DiskMetricDimensions {
  /** The mount point of the registry's storage on the host, the agent's `path` dimension, e.g. `/srv/registry`. */
  readonly path: string;
  /**
   * The agent's `device` dimension, e.g. `nvme1n1`.
   * @default - any device
   */
  readonly device?: string;
  /**
   * The agent's `fstype` dimension, e.g. `xfs`.
   * @default - any file system type
   */
  readonly fstype?: string;
  /**
   * The namespace the agent publishes to.
   * @default 'CWAgent'
   */
  readonly namespace?: string;
}

export interface RegistryJanitorProps {
  /** The registry's address as the function reaches it, e.g. `https://registry.internal:5000`. */
  readonly registryUrl: string;
  /** The EC2 instance that runs the registry container; it must be a managed node of SSM. */
  readonly instanceId: string;
  /**
   * The registry's credentials: JSON `{"username": …, "password": …}` or `{"token": …}`.
   * @default - the registry is used without credentials
   */
  readonly registrySecret?: secretsmanager.ISecret;
  /**
   * The customer-managed KMS key `registrySecret` is encrypted with. The function is allowed kms:Decrypt on it
   * through Secrets Manager only; the key's policy must let the account's IAM policies grant it (the default key
   * policy does).
   * @default - the secret is encrypted with the AWS managed key aws/secretsmanager, which needs no grant
   */
  readonly registrySecretKey?: kms.IKey;
  /**
   * The path of a PEM file with the CA certificates that sign the registry's TLS certificate, for a registry behind
   * a private CA. It is read at synthesis, shipped in the function's bundle and trusted through
   * `NODE_EXTRA_CA_CERTS`, beside the public CAs.
   * @default - only the public CAs Node.js trusts
   */
  readonly registryCaPem?: string;
  /**
   * When the nightly run starts, as an EventBridge Scheduler cron expression.
   * @default 'cron(0 3 * * ? *)'
   */
  readonly schedule?: string;
  /**
   * The time zone of `schedule`.
   * @default TimeZone.ETC_UTC
   */
  readonly timeZone?: TimeZone;
  /** The retention policy, as an object or JSON text (policy.schema.json); it needs at least one keep rule. */
  readonly policy: PolicyFile | string;
  /**
   * A stricter policy for the runs the disk alarm starts.
   * @default - the disk alarm's runs use `policy`
   */
  readonly emergencyPolicy?: PolicyFile | string;
  /**
   * How garbage collection runs: `online` (registry up, then restarted) or `stopped` (registry stopped meanwhile).
   * @default 'online'
   */
  readonly gcMode?: 'online' | 'stopped';
  /**
   * The registry container's name or id on the host.
   * @default 'registry'
   */
  readonly container?: string;
  /**
   * The registry configuration file inside the container.
   * @default - chosen by the host script from the registry version
   */
  readonly registryConfigPath?: string;
  /**
   * The storage root inside the container.
   * @default '/var/lib/registry'
   */
  readonly storageRoot?: string;
  /**
   * The host script's lock file on the registry host.
   * @default '/var/lock/registry-janitor.lock'
   */
  readonly hostLockFile?: string;
  /**
   * Where the host script keeps garbage-collection logs on the registry host.
   * @default '/var/log/registry-janitor'
   */
  readonly hostLogDir?: string;
  /**
   * Plan and report without deleting anything.
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * The most manifests one run may delete: a run whose plan deletes more deletes none and fails, naming the
   * count. An on-demand run may raise it with `{"maxDelete": N}`.
   * @default - no cap
   */
  readonly maxDelete?: number;
  /**
   * Repository globs to clean.
   * @default - every repository
   */
  readonly repositories?: string[];
  /**
   * Repository globs never to clean.
   * @default - none
   */
  readonly excludeRepositories?: string[];
  /**
   * The disk usage of the registry volume, in percent, that starts an emergency run.
   * @default 85
   */
  readonly diskAlarmThresholdPercent?: number;
  /**
   * The disk alarm's name, as its state-change events carry it.
   * @default - a name CloudFormation makes up
   */
  readonly diskAlarmName?: string;
  /** Where the CloudWatch agent reports the registry volume's `disk_used_percent`. */
  readonly diskMetric: DiskMetricDimensions;
  /**
   * The namespace of the function's metrics.
   * @default 'RegistryJanitor'
   */
  readonly metricsNamespace?: string;
  /**
   * An address that receives run summaries, failures and alarms.
   * @default - no subscription
   */
  readonly notificationEmail?: string;
  /**
   * The VPC to run the function in, for a registry only reachable there. The subnets need a route to SSM,
   * S3, SNS, Secrets Manager and CloudWatch: a NAT gateway or VPC endpoints.
   * @default - the function runs outside any VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * @default - the VPC's private subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * @default - a new security group that allows all outbound traffic
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * The role of the registry instance's profile. SSM writes each command's complete output to the bucket with it,
   * so it is granted s3:PutObject under `ssm/` of the bucket; without that grant an output longer than the 24,000
   * characters SSM keeps is lost, and with it the host script's summary. A role imported with `mutable: false` is
   * not changed: grant it yourself then.
   */
  readonly instanceRole: iam.IRole;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * How long command output and run history are kept in the bucket.
   * @default Duration.days(90)
   */
  readonly outputRetention?: Duration;
  /**
   * Memory of the function, MB. The default plans some 100,000 tags with room for the scan's buffers.
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * Executions reserved for the function; 0 reserves none. One reserved execution keeps runs from overlapping, but
   * Lambda refuses a reservation that leaves the account fewer than 10 unreserved executions, which is all a new
   * account's quota of 10 has. Without a reservation the function keeps runs apart itself with a lease in the output
   * bucket: a run that starts while another holds it is skipped, and a lease a stopped invocation left behind
   * expires with that invocation's timeout.
   * @default 1
   */
  readonly reservedConcurrency?: number;
  /**
   * Registry requests the function makes at once.
   * @default - the function's default
   */
  readonly concurrency?: number;
  /**
   * How long one invocation waits for garbage collection before the SSM status event takes over.
   * @default - the function's default
   */
  readonly gcWaitSeconds?: number;
  /**
   * How long SSM lets the host script run (5 to 172800 seconds; the SSM Agent silently runs anything outside that for
   * 3600). When SSM stops a collection at this timeout, the collection's detached watchdog stops the collector and
   * brings the registry back, and the function then runs the script's `recover`: the timeout bounds how long the
   * registry is down in `stopped` mode.
   * @default 3600
   */
  readonly executionTimeoutSeconds?: number;
  /**
   * The SSM document's name.
   * @default - `RegistryJanitor-HostMaintenance-` and a hash of this construct's path
   */
  readonly documentName?: string;
}

/** Props the construct cannot build from; the message names the prop, the value received and what fits. */
export class RegistryJanitorPropsError extends Error {
  override readonly name = 'RegistryJanitorPropsError';
  constructor(scope: Construct, message: string) {
    super(redactText(`${scope.node.path}: ${message}`));
  }
}

const RESERVED_DOCUMENT_PREFIXES = ['aws', 'amazon', 'amzn'];
const DOCUMENT_NAME = /^[a-zA-Z0-9_.-]{3,128}$/;
const INSIGHTS_VALUE = /^[^'\\]{1,255}$/;
const INSIGHTS_NAMESPACE = /^[A-Za-z0-9_]{1,255}$/;
const LAMBDA_ENVIRONMENT_LIMIT = 4096;
const ALARM_NAME = /^[\x20-\x7e]{1,255}$/;
const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';
const LAMBDA_TASK_ROOT = '/var/task';
/** The registry's CA certificates in the function's bundle. */
export const REGISTRY_CA_FILE = 'registry-ca.pem';
/** The network-interface actions Lambda takes with the function's role to attach it to a VPC. */
export const VPC_NETWORK_INTERFACE_ACTIONS = [
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
];
const TOKEN_LENGTH_ESTIMATE = 128;

/**
 * registry-janitor in an AWS account: a function that cleans the registry every night and when its disk fills
 * up, garbage-collects on the registry host through an SSM document, and reports to a topic and a dashboard.
 */
export class RegistryJanitor extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: logs.LogGroup;
  readonly topic: sns.Topic;
  readonly outputBucket: s3.Bucket;
  readonly document: ssm.CfnDocument;
  /** The SSM document's name. */
  readonly documentName: string;
  readonly schedule: scheduler.Schedule;
  readonly diskAlarm: cloudwatch.Alarm;
  /** Invocations that failed or expired: one message each. */
  readonly failedInvocationQueue: sqs.Queue;
  /** Schedule and rule events that could not be delivered to the function. */
  readonly deliveryDeadLetterQueue: sqs.Queue;
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: RegistryJanitorProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const namespace = props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE;
    const registryHost = this.registryHost(props.registryUrl);

    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'registry-janitor',
      enforceSSL: true,
    });
    // The TLS-only topic policy replaces SNS's default one, so the alarms need their own allowance to publish.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    if (props.notificationEmail !== undefined) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.notificationEmail));
    }
    const notify = new cloudwatchActions.SnsAction(this.topic);

    this.outputBucket = new s3.Bucket(this, 'OutputBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          id: 'ExpireOutput',
          expiration: props.outputRetention ?? Duration.days(90),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
    acknowledge(
      this.outputBucket,
      'AwsSolutions-S1',
      'The bucket holds only SSM command output and run history, written by the registry host and the function; CloudTrail data events audit object access where that is needed.',
    );
    this.grantCommandOutput(props.instanceRole);

    this.documentName = props.documentName ?? this.defaultDocumentName();
    this.checkDocumentName(this.documentName);
    const executionTimeoutSeconds = this.executionTimeout(props.executionTimeoutSeconds);
    this.document = new ssm.CfnDocument(this, 'HostDocument', {
      name: this.documentName,
      documentType: 'Command',
      documentFormat: 'JSON',
      targetType: '/AWS::EC2::Instance',
      updateMethod: 'NewVersion',
      content: documentContent({ stepName: DEFAULT_STEP_NAME, executionTimeoutSeconds }),
    });

    this.failedInvocationQueue = new sqs.Queue(this, 'FailedInvocationQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.deliveryDeadLetterQueue = new sqs.Queue(this, 'DeliveryDeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.failedInvocationQueue,
      'AwsSolutions-SQS3',
      "This queue is the function's on-failure destination: it is where failed events end, so it has no dead-letter queue of its own.",
    );
    acknowledge(
      this.deliveryDeadLetterQueue,
      'AwsSolutions-SQS3',
      'This queue is the dead-letter queue of the schedule and the rules: it is where undeliverable events end.',
    );

    const diskMetric = props.diskMetric;
    const diskUsed = new cloudwatch.MathExpression({
      expression: this.diskQuery(props.instanceId, diskMetric),
      period: Duration.minutes(5),
      label: `disk used % (${diskMetric.path})`,
    });
    const threshold = props.diskAlarmThresholdPercent ?? 85;
    if (!(threshold > 0 && threshold < 100)) {
      throw new RegistryJanitorPropsError(
        this,
        `diskAlarmThresholdPercent must be between 0 and 100 (exclusive), got ${threshold}`,
      );
    }
    this.diskAlarm = new cloudwatch.Alarm(this, 'DiskAlarm', {
      ...(props.diskAlarmName !== undefined ? { alarmName: this.alarmName(props.diskAlarmName) } : {}),
      alarmDescription: `The registry volume ${diskMetric.path} on ${props.instanceId} is at least ${threshold}% full: registry-janitor starts an emergency run.`,
      metric: diskUsed,
      threshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.MISSING,
    });
    this.diskAlarm.addAlarmAction(notify);

    const role = new iam.Role(this, 'FunctionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'registry-janitor function',
    });
    if (props.vpc !== undefined) {
      // What AWSLambdaVPCAccessExecutionRole grants, without its logs actions on *: the log group is granted below.
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ManageNetworkInterfacesInVpc',
          actions: VPC_NETWORK_INTERFACE_ACTIONS,
          resources: ['*'],
        }),
      );
    }
    this.logGroup = new logs.LogGroup(this, 'FunctionLogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
    });
    this.logGroup.grantWrite(role);

    const environment = this.functionEnvironment(props, namespace, executionTimeoutSeconds);
    const caPem = props.registryCaPem === undefined ? undefined : this.caPem(props.registryCaPem);
    this.function = new NodejsFunction(this, 'Function', {
      description: `registry-janitor for ${registryHost}`,
      entry: HANDLER_ENTRY,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: LOCK_FILE,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      // `npm run bench` plans 100,000 tags (300,000 manifests) in a peak of about 400 MiB RSS, growing some
      // 2.9 MiB per 1,000 tags; 1024 MB leaves the other half for the scan's HTTP buffers and the host
      // inventory's output, and more memory would buy CPU time, not room.
      memorySize: props.memorySize ?? 1024,
      timeout: Duration.minutes(15),
      reservedConcurrentExecutions: this.reservedConcurrency(props.reservedConcurrency ?? 1),
      retryAttempts: 0,
      maxEventAge: Duration.hours(1),
      onFailure: new destinations.SqsDestination(this.failedInvocationQueue),
      role,
      logGroup: this.logGroup,
      environment: {
        ...environment,
        NODE_OPTIONS: '--enable-source-maps',
        ...(caPem !== undefined ? { NODE_EXTRA_CA_CERTS: `${LAMBDA_TASK_ROOT}/${REGISTRY_CA_FILE}` } : {}),
      },
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        externalModules: [],
        minify: true,
        keepNames: true,
        sourceMap: true,
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [
            `cp "${inputDir}/lambda/host/maintenance.sh" "${outputDir}/maintenance.sh"`,
            ...(caPem !== undefined
              ? [`cp ${shellQuote(caPem)} ${shellQuote(`${outputDir}/${REGISTRY_CA_FILE}`)}`]
              : []),
          ],
        },
      },
    });

    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'SendCommandToRegistryHost',
        actions: ['ssm:SendCommand'],
        resources: [
          stack.formatArn({ service: 'ssm', resource: 'document', resourceName: this.document.ref }),
          stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: props.instanceId }),
          // Every command sets OutputS3BucketName, and IAM then authorizes SendCommand against the bucket too.
          this.outputBucket.bucketArn,
        ],
      }),
    );
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadCommandInvocations',
        actions: ['ssm:GetCommandInvocation'],
        resources: ['*'],
      }),
    );
    const onEverything = [
      'ssm:GetCommandInvocation supports no resource-level permissions, so IAM only accepts * for it. It reads the status and output of commands; which commands run is limited by ssm:SendCommand, allowed only for this document on this instance, with output to the output bucket of this stack.',
      ...(props.vpc !== undefined
        ? [
            "In a VPC, Lambda attaches the function through network interfaces it creates and deletes with the function's role: their ids are not known in advance, ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets take no resource, and Lambda's documentation gives these actions on * (as AWSLambdaVPCAccessExecutionRole does, which also grants logs actions on * that this role does not get).",
          ]
        : []),
    ];
    acknowledge(role, 'AwsSolutions-IAM5[Resource::*]', onEverything.join(' '));
    props.registrySecret?.grantRead(this.function);
    if (props.registrySecretKey !== undefined) this.grantSecretDecryption(props, props.registrySecretKey);
    this.grantRunStorage();
    this.topic.grantPublish(this.function);

    const invoke = () =>
      new eventTargets.LambdaFunction(this.function, {
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
        deadLetterQueue: this.deliveryDeadLetterQueue,
      });

    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: "registry-janitor's schedule: invokes the function",
    });
    acknowledge(
      scheduleRole,
      `AwsSolutions-IAM5[Resource::${this.resolveForNag(this.function.functionArn)}:*]`,
      "lambda:InvokeFunction on the function's versions and aliases as well as on the function itself, as CDK's grantInvoke writes it; nothing else can be invoked.",
    );
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: `registry-janitor's nightly run for ${registryHost}`,
      schedule: scheduler.ScheduleExpression.expression(
        this.cron(props.schedule ?? 'cron(0 3 * * ? *)'),
        props.timeZone ?? TimeZone.ETC_UTC,
      ),
      timeWindow: scheduler.TimeWindow.off(),
      target: new schedulerTargets.LambdaInvoke(this.function, {
        role: scheduleRole,
        input: scheduler.ScheduleTargetInput.fromObject({ trigger: 'schedule' }),
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
        deadLetterQueue: this.deliveryDeadLetterQueue,
      }),
    });

    new events.Rule(this, 'DiskAlarmRule', {
      description: 'Starts an emergency run when the registry volume fills up',
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        detail: {
          alarmName: [this.diskAlarm.alarmName],
          state: { value: ['ALARM'] },
        },
      },
      targets: [invoke()],
    });

    new events.Rule(this, 'CommandStatusRule', {
      description: 'Tells the function when a garbage collection on the registry host has ended',
      eventPattern: {
        source: ['aws.ssm'],
        detailType: ['EC2 Command Status-change Notification'],
        resources: [
          stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: props.instanceId }),
        ],
        detail: {
          'document-name': [this.document.ref],
          status: TERMINAL_COMMAND_STATUSES,
          // Only collections: an inventory ends inside the invocation that sent it.
          parameters: { action: ['collect'] },
        },
      },
      targets: [invoke()],
    });

    const metric = (metricName: string, statistic: string, label?: string) =>
      new cloudwatch.Metric({
        namespace,
        metricName,
        dimensionsMap: { [REGISTRY_DIMENSION]: registryHost },
        statistic,
        period: label === undefined ? Duration.minutes(5) : Duration.hours(1),
        label,
      });
    const integrityFailures = metric(METRICS.integrityFailures, cloudwatch.Stats.SUM, 'integrity failures');
    const runFailed = metric(METRICS.runFailed, cloudwatch.Stats.SUM, 'failed runs');

    new cloudwatch.Alarm(this, 'IntegrityFailureAlarm', {
      alarmDescription: `A kept image in ${registryHost} failed verification after a run: see the run summary in the topic and the function's log.`,
      metric: metric(METRICS.integrityFailures, cloudwatch.Stats.SUM),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(notify);
    new cloudwatch.Alarm(this, 'RunFailedAlarm', {
      alarmDescription: `A registry-janitor run for ${registryHost} failed: see the run summary in the topic and the function's log.`,
      metric: metric(METRICS.runFailed, cloudwatch.Stats.SUM),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(notify);
    this.queueAlarm(
      'FailedInvocationAlarm',
      this.failedInvocationQueue,
      'An invocation of the registry-janitor function failed or expired before it ran: the queue holds the event.',
    ).addAlarmAction(notify);
    this.queueAlarm(
      'DeliveryDeadLetterAlarm',
      this.deliveryDeadLetterQueue,
      'A schedule or rule could not invoke the registry-janitor function: the queue holds the event and the error.',
    ).addAlarmAction(notify);

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(14),
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Registry disk used %',
        left: [
          diskUsed,
          metric(METRICS.diskUsedPercentBefore, cloudwatch.Stats.MAXIMUM, 'before a run'),
          metric(METRICS.diskUsedPercentAfter, cloudwatch.Stats.MAXIMUM, 'after a run'),
        ],
        leftYAxis: { min: 0, max: 100 },
        leftAnnotations: [{ value: threshold, label: 'emergency run' }],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Run outcome',
        left: [metric(METRICS.runSucceeded, cloudwatch.Stats.SUM, 'succeeded runs'), runFailed],
        right: [metric(METRICS.durationSeconds, cloudwatch.Stats.MAXIMUM, 'duration (s)')],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Bytes reclaimed per run',
        left: [metric(METRICS.bytesReclaimed, cloudwatch.Stats.SUM, 'bytes reclaimed')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Manifests deleted per run',
        left: [metric(METRICS.manifestsDeleted, cloudwatch.Stats.SUM, 'manifests deleted')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Integrity failures',
        left: [integrityFailures],
        width: 8,
      }),
    );
  }

  private registryHost(registryUrl: string): string {
    if (Token.isUnresolved(registryUrl) || !URL.canParse(registryUrl)) {
      throw new RegistryJanitorPropsError(
        this,
        `registryUrl must be an http:// or https:// address such as https://registry.internal:5000, got ${JSON.stringify(registryUrl)}`,
      );
    }
    const bare = withoutCredentials(registryUrl);
    if (bare !== undefined) {
      throw new RegistryJanitorPropsError(
        this,
        `registryUrl must not hold credentials, got ${JSON.stringify(registryUrl)}: give ${bare} and the user name and password as registrySecret`,
      );
    }
    return registryDimension(registryUrl);
  }

  /**
   * The function reads command output, keeps run reports, the record of a collection left running and the run
   * lease. ListBucket makes S3 answer NoSuchKey rather than AccessDenied for an object not written yet, which the
   * readers expect; giving the lease back is a delete conditional on its ETag, which S3 allows with GetObject.
   */
  private grantRunStorage(): void {
    const bucket = this.outputBucket;
    const grant = (actions: string[], resourceArns: string[]) =>
      iam.Grant.addToPrincipal({ grantee: this.function, actions, resourceArns });
    grant(['s3:ListBucket'], [bucket.bucketArn]);
    grant(
      ['s3:GetObject'],
      [
        bucket.arnForObjects(`${SSM_OUTPUT_PREFIX}/*`),
        bucket.arnForObjects(PENDING_KEY),
        bucket.arnForObjects(LEASE_KEY),
      ],
    );
    grant(['s3:PutObject'], [bucket.arnForObjects(`${RUNS_PREFIX}*`)]);
    grant(['s3:DeleteObject'], [bucket.arnForObjects(PENDING_KEY), bucket.arnForObjects(LEASE_KEY)]);
    const role = this.function.role as iam.IRole;
    const bucketArn = this.resolveForNag(bucket.bucketArn);
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${bucketArn}/${SSM_OUTPUT_PREFIX}/*]`,
      "SSM names each output object after its command id, unknown in advance: the function reads any object under the prefix SSM writes command output to, in the stack's own bucket.",
    );
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::${bucketArn}/${RUNS_PREFIX}*]`,
      "Each run report is named after its run: the function writes (but cannot read or delete) any object under the run-history prefix, in the stack's own bucket.",
    );
  }

  /**
   * kms:Decrypt on the secret's key, for Secrets Manager to use on the function's behalf. Written out because a
   * secret's grantRead cannot add it for a key imported by ARN: there is no key policy to add to, and the grant it
   * makes through Secrets Manager's service principal goes nowhere.
   */
  private grantSecretDecryption(props: RegistryJanitorProps, key: kms.IKey): void {
    if (props.registrySecret === undefined) {
      throw new RegistryJanitorPropsError(
        this,
        'registrySecretKey is the key of registrySecret: give the secret too',
      );
    }
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'DecryptRegistrySecret',
        actions: ['kms:Decrypt'],
        resources: [key.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
        },
      }),
    );
  }

  /** What the registry instance's role needs for SSM to write command output to the bucket. */
  private grantCommandOutput(instanceRole: iam.IRole): void {
    iam.Grant.addToPrincipal({
      grantee: instanceRole,
      actions: ['s3:PutObject'],
      resourceArns: [this.outputBucket.arnForObjects(`${SSM_OUTPUT_PREFIX}/*`)],
    });
    iam.Grant.addToPrincipal({
      grantee: instanceRole,
      actions: ['s3:GetEncryptionConfiguration'],
      resourceArns: [this.outputBucket.bucketArn],
    });
    acknowledge(
      instanceRole,
      `AwsSolutions-IAM5[Resource::${this.resolveForNag(this.outputBucket.bucketArn)}/${SSM_OUTPUT_PREFIX}/*]`,
      "SSM writes each command's output under a key made of its command id, unknown in advance: the registry host may write only under the command-output prefix of this bucket.",
    );
  }

  /** A value as cdk-nag names it in a finding: `<LogicalId.Attribute>` for an attribute of a resource. */
  private resolveForNag(value: string): string {
    const resolved = Stack.of(this).resolve(value) as unknown;
    if (typeof resolved === 'object' && resolved !== null && 'Fn::GetAtt' in resolved) {
      const [logicalId, attribute] = (resolved as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'];
      return `<${logicalId}.${attribute}>`;
    }
    return String(resolved);
  }

  private diskQuery(instanceId: string, disk: DiskMetricDimensions): string {
    try {
      return diskUsedQuery(instanceId, disk);
    } catch (error) {
      if (error instanceof RangeError) throw new RegistryJanitorPropsError(this, error.message);
      throw error;
    }
  }

  private cron(expression: string): string {
    if (!/^cron\([^()]+\)$/.test(expression.trim())) {
      throw new RegistryJanitorPropsError(
        this,
        `schedule must be an EventBridge Scheduler cron expression such as cron(0 3 * * ? *), got ${JSON.stringify(expression)}`,
      );
    }
    return expression.trim();
  }

  /** The absolute path of a readable PEM file holding at least one certificate. */
  private caPem(path: string): string {
    const absolute = resolve(path);
    let text: string;
    try {
      text = readFileSync(absolute, 'utf8');
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new RegistryJanitorPropsError(
        this,
        `registryCaPem: ${JSON.stringify(path)} cannot be read (${typeof code === 'string' ? code : (error as Error).message}): give the path of a PEM file of CA certificates`,
      );
    }
    if (!text.includes(PEM_CERTIFICATE)) {
      throw new RegistryJanitorPropsError(
        this,
        `registryCaPem: ${JSON.stringify(path)} holds no PEM certificate (${PEM_CERTIFICATE})`,
      );
    }
    return absolute;
  }

  private alarmName(name: string): string {
    if (!Token.isUnresolved(name) && !ALARM_NAME.test(name)) {
      throw new RegistryJanitorPropsError(
        this,
        `diskAlarmName must be 1 to 255 printable ASCII characters, got ${JSON.stringify(name)}`,
      );
    }
    return name;
  }

  private executionTimeout(value: number | undefined): number {
    const { min, max, default: fallback } = EXECUTION_TIMEOUT_SECONDS;
    if (value === undefined) return fallback;
    if (Token.isUnresolved(value) || !Number.isInteger(value) || value < min || value > max) {
      throw new RegistryJanitorPropsError(
        this,
        `executionTimeoutSeconds must be a whole number of seconds from ${min} to ${max} (the SSM Agent runs a script for ${fallback} seconds whatever else it is given), got ${value}`,
      );
    }
    return value;
  }

  private reservedConcurrency(value: number): number | undefined {
    if (!Number.isInteger(value) || value < 0) {
      throw new RegistryJanitorPropsError(
        this,
        `reservedConcurrency must be 0 (no reservation) or a whole number of executions to reserve, got ${value}`,
      );
    }
    return value === 0 ? undefined : value;
  }

  private defaultDocumentName(): string {
    return `RegistryJanitor-HostMaintenance-${Names.nodeUniqueId(this.node).slice(-8)}`;
  }

  private checkDocumentName(name: string): void {
    if (Token.isUnresolved(name)) return;
    const lower = name.toLowerCase();
    if (!DOCUMENT_NAME.test(name) || RESERVED_DOCUMENT_PREFIXES.some((prefix) => lower.startsWith(prefix))) {
      throw new RegistryJanitorPropsError(
        this,
        `documentName must be 3 to 128 letters, digits, '_', '.' or '-' and not start with aws, amazon or amzn, got ${JSON.stringify(name)}`,
      );
    }
  }

  /** The variables the handler reads; what is known at synthesis is checked as the handler will check it. */
  private functionEnvironment(
    props: RegistryJanitorProps,
    namespace: string,
    executionTimeoutSeconds: number,
  ): Record<string, string> {
    const asJson = (value: PolicyFile | string | undefined) =>
      value === undefined ? undefined : typeof value === 'string' ? value : JSON.stringify(value);
    const globs = (value: string[] | undefined) => (value === undefined ? undefined : JSON.stringify(value));
    const entries: Record<string, string | undefined> = {
      [ENV.registryUrl]: props.registryUrl,
      [ENV.registrySecretArn]: props.registrySecret?.secretArn,
      [ENV.instanceId]: props.instanceId,
      [ENV.ssmDocument]: this.document.ref,
      [ENV.bucket]: this.outputBucket.bucketName,
      ...hostVariables(props),
      [ENV.policy]: asJson(props.policy),
      [ENV.emergencyPolicy]: asJson(props.emergencyPolicy),
      [ENV.dryRun]: String(props.dryRun ?? false),
      [ENV.maxDelete]: props.maxDelete?.toString(),
      [ENV.repositories]: globs(props.repositories),
      [ENV.excludeRepositories]: globs(props.excludeRepositories),
      [ENV.topicArn]: this.topic.topicArn,
      [ENV.diskAlarmName]: this.diskAlarm.alarmName,
      [ENV.metricsNamespace]: namespace,
      [ENV.concurrency]: props.concurrency?.toString(),
      [ENV.gcWaitSeconds]: props.gcWaitSeconds?.toString(),
      [ENV.executionTimeoutSeconds]: String(executionTimeoutSeconds),
    };
    const environment: Record<string, string> = {};
    for (const [name, value] of Object.entries(entries)) {
      if (value !== undefined) environment[name] = value;
    }
    this.checkEnvironment(environment);
    return environment;
  }

  private checkEnvironment(environment: Record<string, string>): void {
    const deferred = Object.keys(environment).filter((name) => Token.isUnresolved(environment[name]));
    const known = Object.fromEntries(
      Object.entries(environment).filter(([name]) => !deferred.includes(name)),
    );
    let problems: readonly string[] = [];
    try {
      readFunctionConfig(known);
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error;
      problems = error.problems.filter((problem) => !deferred.some((name) => problem.startsWith(`${name}:`)));
    }
    if (problems.length > 0) {
      throw new RegistryJanitorPropsError(
        this,
        `the function would refuse its configuration:\n${problems.map((p) => `- ${p}`).join('\n')}`,
      );
    }
    const size = Object.entries(environment).reduce(
      (total, [name, value]) =>
        total + name.length + (Token.isUnresolved(value) ? TOKEN_LENGTH_ESTIMATE : value.length),
      0,
    );
    if (size > LAMBDA_ENVIRONMENT_LIMIT - 512) {
      throw new RegistryJanitorPropsError(
        this,
        `the function's environment would be about ${size} bytes, near or over Lambda's limit of ${LAMBDA_ENVIRONMENT_LIMIT}: shorten the policy or the emergency policy`,
      );
    }
  }

  private queueAlarm(id: string, queue: sqs.Queue, description: string): cloudwatch.Alarm {
    return new cloudwatch.Alarm(this, id, {
      alarmDescription: description,
      metric: queue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}

/** The function's variables for the host script's settings, from the props the parameter table names. */
function hostVariables(props: RegistryJanitorProps): Record<string, string | undefined> {
  const given: Readonly<Record<string, unknown>> = { ...props };
  return Object.fromEntries(
    hostSettings('prop')
      .filter((setting): setting is HostSetting<'prop' | 'variable'> => setting.variable !== undefined)
      .map((setting) => {
        const value = given[setting.prop.name] ?? (setting.prop.showsDefault ? setting.default : undefined);
        return [setting.variable, value === undefined ? undefined : String(value)];
      }),
  );
}

/** Acknowledges one cdk-nag finding on one construct, with the reason it is acceptable. */
function acknowledge(scope: Construct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * A Metrics Insights query for the registry volume's disk usage. FROM the namespace, not SCHEMA(…), matches the
 * metric whatever other dimensions the agent adds (ImageId, InstanceType, device, fstype…).
 */
export function diskUsedQuery(instanceId: string, disk: DiskMetricDimensions): string {
  const namespace = disk.namespace ?? 'CWAgent';
  if (!INSIGHTS_NAMESPACE.test(namespace)) {
    throw new RangeError(
      `diskMetric.namespace must be letters, digits and '_', got ${JSON.stringify(namespace)}`,
    );
  }
  const filters: [string, string | undefined][] = [
    ['InstanceId', instanceId],
    ['path', disk.path],
    ['device', disk.device],
    ['fstype', disk.fstype],
  ];
  const conditions = filters.flatMap(([dimension, value]) => {
    if (value === undefined) return [];
    if (!INSIGHTS_VALUE.test(value)) {
      throw new RangeError(
        `diskMetric: the ${dimension} dimension must be 1 to 255 characters without ' or \\, got ${JSON.stringify(value)}`,
      );
    }
    return [`${dimension} = '${value}'`];
  });
  return `SELECT MAX(disk_used_percent) FROM ${namespace} WHERE ${conditions.join(' AND ')}`;
}
