import { describe, expect, it } from 'vitest';
import { synthStack } from './stacks.js';

/*
 * CloudFormation knows a resource by its logical ID, which CDK derives from the construct path. Rename a
 * construct, or move it under another parent, and the next deploy creates a new resource and deletes the old
 * one: the output bucket with the run reports, the log group with the function's logs, the queues with failed
 * invocations and undelivered events, the topic and its confirmed e-mail subscription, the SSM document the host
 * runs by name, the security group the registry host lets in, the alarms and the dashboard people have
 * bookmarked. The lists below are that contract, written out on purpose: a change to them is a change to every
 * deployed stack, to be made knowingly (with `overrideLogicalId` to keep the old ID, or a migration in the
 * release notes), never as a side effect of tidying the construct.
 *
 * Policies, permissions and invoke configs are left out: CloudFormation replaces them in place without
 * losing anything.
 */
const PINNED_TYPES = new Set([
  'AWS::CloudWatch::Alarm',
  'AWS::CloudWatch::Dashboard',
  'AWS::EC2::SecurityGroup',
  'AWS::Events::Rule',
  'AWS::IAM::Role',
  'AWS::Lambda::Function',
  'AWS::Logs::LogGroup',
  'AWS::S3::Bucket',
  'AWS::SNS::Subscription',
  'AWS::SNS::Topic',
  'AWS::SQS::Queue',
  'AWS::SSM::Document',
  'AWS::Scheduler::Schedule',
]);

interface SynthesizedTemplate {
  readonly Resources: Record<string, { readonly Type: string }>;
  readonly Outputs: Record<string, unknown>;
}

/** `Type LogicalId` of every pinned resource in the template, sorted. */
function pinnedResources(template: SynthesizedTemplate): string[] {
  return Object.entries(template.Resources)
    .filter(([, resource]) => PINNED_TYPES.has(resource.Type))
    .map(([logicalId, resource]) => `${resource.Type} ${logicalId}`)
    .sort();
}

const ALWAYS = [
  'AWS::CloudWatch::Alarm JanitorDeliveryDeadLetterAlarmE9212381',
  'AWS::CloudWatch::Alarm JanitorDiskAlarm6BEFCD39',
  'AWS::CloudWatch::Alarm JanitorFailedInvocationAlarm7BF73BB0',
  'AWS::CloudWatch::Alarm JanitorIntegrityFailureAlarmAA16F81E',
  'AWS::CloudWatch::Alarm JanitorRunFailedAlarm01E656DE',
  'AWS::CloudWatch::Dashboard JanitorDashboard4DA30C37',
  'AWS::Events::Rule JanitorCommandStatusRule88505AD8',
  'AWS::Events::Rule JanitorDiskAlarmRuleCF0B935D',
  'AWS::IAM::Role JanitorFunctionRole6B7695E8',
  'AWS::IAM::Role JanitorScheduleRole64355D11',
  'AWS::Lambda::Function JanitorFunction820277F8',
  'AWS::Logs::LogGroup JanitorFunctionLogGroupDF3BA9EA',
  'AWS::S3::Bucket JanitorOutputBucket6952987F',
  'AWS::SNS::Topic JanitorTopic885BB9B8',
  'AWS::SQS::Queue JanitorDeliveryDeadLetterQueue378FE6B2',
  'AWS::SQS::Queue JanitorFailedInvocationQueueFD635C5C',
  'AWS::SSM::Document JanitorHostDocumentE0E8E364',
  'AWS::Scheduler::Schedule JanitorSchedule75A09F22',
];

describe('logical IDs of the deployed stack', () => {
  it('keeps the stateful and user-visible resources of a default deployment under their IDs', () => {
    // Prepare / Act
    const { template } = synthStack();

    // Assess
    expect(pinnedResources(template.toJSON() as SynthesizedTemplate)).toEqual(ALWAYS);
  });

  it('keeps the security group of a function in a VPC and the e-mail subscription under their IDs', () => {
    // Prepare / Act
    const { template } = synthStack({
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: 'subnet-0aaaaaaaaaaaaaaaa',
      notificationEmail: 'ops@example.com',
    });

    // Assess
    expect(pinnedResources(template.toJSON() as SynthesizedTemplate)).toEqual(
      [
        ...ALWAYS,
        'AWS::EC2::SecurityGroup JanitorFunctionSecurityGroup2E28573B',
        'AWS::SNS::Subscription JanitorTopicopsexamplecom488F2941',
      ].sort(),
    );
  });

  it('keeps the outputs that scripts read under their names', () => {
    // Prepare / Act
    const { template } = synthStack();

    // Assess
    expect(Object.keys((template.toJSON() as SynthesizedTemplate).Outputs).sort()).toEqual([
      'DiskAlarmName',
      'DocumentName',
      'FunctionName',
      'OutputBucketName',
      'TopicArn',
    ]);
  });
});
