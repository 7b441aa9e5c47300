import 'aws-sdk-client-mock-vitest/extend';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/aws/function-config.js';
import { PENDING_KEY } from '../../lambda/aws/history.js';
import { LEASE_KEY } from '../../lambda/aws/lease.js';
import { METRICS } from '../../lambda/aws/metrics.js';
import { createHandler } from '../../lambda/handler.js';
import { headManifest } from '../support/images.js';
import { commandStatusEvent, lambdaContext, sampleEvent } from './events.js';
import { BUCKET, type HandlerFixture, SECRET, startHandlerFixture, TOPIC } from './fixture.js';

const COMMAND_ID = '0b5f2c1e-1111-2222-3333-444455556666';
const CLIENT = { region: 'eu-west-1', credentials: { accessKeyId: 'fake', secretAccessKey: 'fake' } };
const NOW = new Date('2026-01-01T03:05:00.000Z');
const HOLDER = {
  requestId: 'req-nightly',
  acquiredAt: '2026-01-01T03:00:00.000Z',
  expiresAt: '2026-01-01T03:15:00.000Z',
};

describe('an invocation while another run is in progress', () => {
  const clients = {
    s3: new S3Client(CLIENT),
    ssm: new SSMClient(CLIENT),
    sns: new SNSClient(CLIENT),
    secretsManager: new SecretsManagerClient(CLIENT),
  };
  const mocks = {
    s3: mockClient(clients.s3),
    ssm: mockClient(clients.ssm),
    sns: mockClient(clients.sns),
    secrets: mockClient(clients.secretsManager),
  };
  afterEach(() => {
    for (const mock of Object.values(mocks)) mock.reset();
  });

  it('is skipped before it touches the registry or the host, and says which run holds the lease', async () => {
    // Prepare: the lease exists, so S3 refuses to create it again
    mocks.s3.on(PutObjectCommand, { Key: LEASE_KEY, IfNoneMatch: '*' }).rejects(
      new S3ServiceException({
        name: 'PreconditionFailed',
        $fault: 'client',
        message: 'At least one of the pre-conditions you specified did not hold',
        $metadata: { httpStatusCode: 412 },
      }),
    );
    mocks.s3.on(GetObjectCommand, { Key: LEASE_KEY }).resolves({
      ETag: '"e0"',
      Body: Readable.from([Buffer.from(JSON.stringify(HOLDER))]) as unknown as GetObjectCommandOutput['Body'],
    });
    const lines: string[] = [];
    const handler = createHandler({
      env: {
        [ENV.registryUrl]: 'http://127.0.0.1:9',
        [ENV.registrySecretArn]: SECRET,
        [ENV.instanceId]: 'i-0123456789abcdef0',
        [ENV.ssmDocument]: 'RegistryJanitor-Maintenance',
        [ENV.bucket]: BUCKET,
        [ENV.topicArn]: TOPIC,
        [ENV.policy]: '{"defaults":{"keepLast":2}}',
      },
      ...clients,
      now: () => NOW,
      writeLine: (line) => lines.push(line),
    });

    // Act
    const report = await handler(sampleEvent('schedule'), lambdaContext('req-console', 900_000));

    // Assess
    expect(report).toMatchObject({
      requestId: 'req-console',
      outcome: 'nothing to do',
      headline:
        'skipped: another run is in progress (request req-nightly, since 2026-01-01T03:00:00.000Z; its lease ends by 2026-01-01T03:15:00.000Z)',
      problems: [],
    });
    expect(mocks.s3).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: BUCKET,
      Key: LEASE_KEY,
      IfNoneMatch: '*',
      Body: expect.stringContaining('"expiresAt":"2026-01-01T03:20:00.000Z"'),
    });
    expect(mocks.s3).toHaveReceivedCommandTimes(PutObjectCommand, 1);
    expect(mocks.s3).not.toHaveReceivedCommand(DeleteObjectCommand);
    expect(mocks.ssm).not.toHaveReceivedCommand(SendCommandCommand);
    expect(mocks.secrets).not.toHaveReceivedCommand(GetSecretValueCommand);
    expect(mocks.sns).not.toHaveReceivedCommand(PublishCommand);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      outcome: 'nothing to do',
      [METRICS.runFailed]: 0,
      [METRICS.runSucceeded]: 0,
    });
  });
});

describe('the run lease around a real run', () => {
  let fixture: HandlerFixture;
  afterEach(async () => {
    await fixture?.close();
  });

  it('is taken for the run and given back when it ends', async () => {
    fixture = await startHandlerFixture();
    await fixture.pushOld('web/app', 'v1', 30);

    const report = await fixture.handler()({ dryRun: true }, lambdaContext('req-dry'));

    expect(report.outcome).toBe('succeeded');
    expect(fixture.fake.s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Key: LEASE_KEY,
      IfNoneMatch: '*',
    });
    expect(fixture.fake.s3Mock).toHaveReceivedCommandWith(DeleteObjectCommand, { Key: LEASE_KEY });
    expect(fixture.keys('runs/')).not.toContain(LEASE_KEY);
  });

  it('keeps a second run, and a status event, from touching the registry while the first holds it', async () => {
    fixture = await startHandlerFixture();
    for (const [n, days] of [40, 30, 20].entries()) await fixture.pushOld('web/app', `v${n + 1}`, days);
    const pending = {
      commandId: COMMAND_ID,
      startedAt: new Date(Date.now() - 600_000).toISOString(),
      requestId: 'req-earlier',
      registry: fixture.reg.url,
      keptTags: [{ repository: 'web/app', tag: 'v3' }],
    };
    fixture.fake.objects.set(`${BUCKET}/${PENDING_KEY}`, JSON.stringify(pending));
    fixture.fake.objects.set(
      `${BUCKET}/${LEASE_KEY}`,
      JSON.stringify({ ...HOLDER, expiresAt: new Date(Date.now() + 600_000).toISOString() }),
    );

    const scheduled = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-second'));
    const status = await fixture.handler()(commandStatusEvent(COMMAND_ID), lambdaContext('req-event'));

    for (const report of [scheduled, status]) {
      expect(report.outcome).toBe('nothing to do');
      expect(report.headline).toMatch(/^skipped: another run is in progress \(request req-nightly, since /);
    }
    expect(status.headline).toMatch(`; the next run verifies the collection of command ${COMMAND_ID}`);
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeDefined();
    expect(fixture.fake.commands()).toEqual([]);
    expect(fixture.published()).toEqual([]);
    expect(fixture.object(LEASE_KEY)).toMatchObject({ requestId: 'req-nightly' });
    expect(fixture.pending()).toEqual(pending);
  });
});
