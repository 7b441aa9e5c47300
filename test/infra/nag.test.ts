import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { synthStack } from './stacks.js';

/** Every unacknowledged AwsSolutions finding, as `rule at construct path`. */
function findings(app: App): string[] {
  const report = new AwsSolutionsChecks().validateScope(app);
  return report.violations.flatMap((violation) =>
    violation.violatingResources.map(
      (resource) => `${violation.ruleName} at ${resource.resourceLogicalId || resource.templatePath}`,
    ),
  );
}

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in the stack as cdk.json configures it', () => {
    const { app } = synthStack();

    expect(findings(app)).toEqual([]);
  });

  it('finds nothing unacknowledged with a secret by name, a VPC, an instance role with a path and an email address', () => {
    const { app } = synthStack({
      registrySecret: 'registry/login',
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: ['subnet-0aaaaaaaaaaaaaaaa', 'subnet-0bbbbbbbbbbbbbbbb'],
      instanceRoleArn: 'arn:aws:iam::123456789012:role/hosts/registry-host',
      notificationEmail: 'ops@example.com',
    });

    expect(findings(app)).toEqual([]);
  });

  it('finds nothing unacknowledged with a secret by complete ARN and a security group', () => {
    const { app } = synthStack({
      registrySecret: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry/login-AbCdEf',
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: 'subnet-0aaaaaaaaaaaaaaaa',
      securityGroupId: 'sg-0123456789abcdef0',
    });

    expect(findings(app)).toEqual([]);
  });

  it('finds nothing unacknowledged with a secret under a customer-managed key, a private CA and no reserved concurrency', () => {
    const dir = mkdtempSync(join(tmpdir(), 'registry-janitor-nag-'));
    try {
      const ca = join(dir, 'ca.pem');
      writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      const { app } = synthStack({
        registrySecret: 'registry/login',
        registrySecretKmsKeyArn:
          'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        registryCaPem: ca,
        reservedConcurrency: 0,
      });

      expect(findings(app)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds nothing unacknowledged with a secret by partial ARN', () => {
    const { app } = synthStack({
      registrySecret: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry/login',
    });

    expect(findings(app)).toEqual([]);
  });

  it('does report what nobody acknowledged', () => {
    const { app, stack } = synthStack();
    new sqs.Queue(stack, 'Unencrypted', { encryption: sqs.QueueEncryption.UNENCRYPTED });

    expect(findings(app).join('\n')).toMatch(/AwsSolutions-SQS\d/);
  });
});
