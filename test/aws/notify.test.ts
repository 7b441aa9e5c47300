import 'aws-sdk-client-mock-vitest/extend';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { notificationBody, SnsNotifier, snsSubject } from '../../lambda/aws/notify.js';
import { succeededReport } from './report-fixtures.js';

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:registry-janitor';

describe('the notification', () => {
  const sns = new SNSClient({ region: 'eu-west-1' });
  const mock = mockClient(sns);
  afterEach(() => mock.reset());

  it('publishes the headline as the subject and a few lines a person reads at a glance', async () => {
    mock.on(PublishCommand).resolves({ MessageId: 'm-1' });

    await new SnsNotifier({ sns, topicArn: TOPIC }).notify(
      succeededReport({
        historyLocation: 's3://janitor/runs/2026-01-01T03:00:00.000Z-req-1.json',
        reportPage: 's3://janitor/runs/2026-01-01T03:00:00.000Z-req-1.html',
      }),
    );

    expect(mock).toHaveReceivedCommandWith(PublishCommand, {
      TopicArn: TOPIC,
      Subject: 'registry-janitor: freed 1.50 MiB, deleted 3 manifests',
      Message: [
        'Outcome: succeeded (scheduled run, configured policy)',
        'Registry: https://registry.internal:5000',
        'Reclaimed: 1.50 MiB (1572864 bytes) measured; plan estimate 1.50 MiB (1572864 bytes)',
        'Disk used: 91% before, 64% after',
        'Verification: all 12 kept tags resolve completely',
        'Full report: s3://janitor/runs/2026-01-01T03:00:00.000Z-req-1.json',
        'Report page: s3://janitor/runs/2026-01-01T03:00:00.000Z-req-1.html',
        '',
      ].join('\n'),
    });
  });

  it('puts the problems of a failed run first in the subject and lists them all', () => {
    const report = succeededReport({
      outcome: 'failed',
      headline: 'FAILED - 1 kept image broken',
      problems: ['BROKEN kept image web/app:v3: blob sha256:ab… is missing', '1 deletions failed'],
      figures: { manifestsDeleted: 2, tagsVerified: 5, integrityFailures: 1 },
      trigger: { kind: 'manual', overrides: { keepLast: 2 } },
    });

    expect(snsSubject(report.headline)).toBe('registry-janitor: FAILED - 1 kept image broken');
    expect(notificationBody(report)).toBe(
      [
        'Outcome: failed (on-demand run {"keepLast":2}, configured policy)',
        'Registry: https://registry.internal:5000',
        'Verification: 1 of 5 kept tags BROKEN',
        'Problems:',
        '- BROKEN kept image web/app:v3: blob sha256:ab… is missing',
        '- 1 deletions failed',
        '',
      ].join('\n'),
    );
  });

  it.each([
    ['FAILED — a dash SNS refuses', 'registry-janitor: FAILED - a dash SNS refuses'],
    ['two\nlines', 'registry-janitor: two lines'],
    ['naïve', 'registry-janitor: na?ve'],
    ['x'.repeat(200), `registry-janitor: ${'x'.repeat(99 - 18 - 3)}...`],
  ])('makes a subject SNS accepts of %j', (headline, subject) => {
    const made = snsSubject(headline);

    expect(made).toBe(subject);
    expect(made.length).toBeLessThan(100);
    expect(made).toMatch(/^[\x20-\x7e]+$/);
  });

  it('says which permission is missing when publishing is denied, and keeps the cause', async () => {
    const denied = Object.assign(new Error('User is not authorized to perform: SNS:Publish'), {
      name: 'AuthorizationErrorException',
    });
    mock.on(PublishCommand).rejects(denied);

    const error = (await new SnsNotifier({ sns, topicArn: TOPIC })
      .notify(succeededReport())
      .catch((e: unknown) => e)) as Error;

    expect(error).toMatchObject({
      name: 'NotifyError',
      code: 'RJ_NOTIFY',
      message: `publishing to ${TOPIC} failed (AuthorizationErrorException: User is not authorized to perform: SNS:Publish): the function role needs sns:Publish on the topic`,
    });
    expect(error.cause).toBe(denied);
  });
});
