import 'aws-sdk-client-mock-vitest/extend';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { AccessDeniedException, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/aws/function-config.js';
import { METRICS } from '../../lambda/aws/metrics.js';
import { createHandler } from '../../lambda/handler.js';
import { headManifest } from '../support/images.js';
import { blobHead, startStallingProxy } from '../support/stalling-proxy.js';
import { alarmEvent, commandStatusEvent, lambdaContext, sampleEvent } from './events.js';
import { type HandlerFixture, NAMESPACE, SECRET, startHandlerFixture, TOPIC } from './fixture.js';

const REGION = { region: 'eu-west-1', credentials: { accessKeyId: 'fake', secretAccessKey: 'fake' } };

/** A handler over mocked clients that answer nothing: the event is refused before any is used. */
function bareHandler() {
  const ssm = new SSMClient(REGION);
  const sns = new SNSClient(REGION);
  const secretsManager = new SecretsManagerClient(REGION);
  const mocks = { ssm: mockClient(ssm), sns: mockClient(sns), secrets: mockClient(secretsManager) };
  const lines: string[] = [];
  const handler = createHandler({
    env: {
      [ENV.registryUrl]: 'http://127.0.0.1:9',
      [ENV.instanceId]: 'i-0123456789abcdef0',
      [ENV.topicArn]: TOPIC,
    },
    ssm,
    sns,
    secretsManager,
    writeLine: (line) => lines.push(line),
  });
  return {
    handler,
    mocks,
    lines,
    restore: () => {
      for (const mock of Object.values(mocks)) mock.restore();
    },
  };
}

describe('an event the function does not accept', () => {
  const ACCEPTED = 'Accepted events: {"trigger":"schedule"}; an object of overrides';

  it.each<[string, unknown, string]>([
    [
      'a number given as text',
      { keepLast: '5' },
      'keepLast: expected a whole number ≥ 0 such as 10, got "5"',
    ],
    ['a negative count', { keepLast: -1 }, 'keepLast: expected a whole number ≥ 0 such as 10, got -1'],
    [
      'days in hexadecimal',
      { keepDays: '0x10' },
      'keepDays: expected a number of days or a duration such as 30, 36h or 2w, got "0x10"',
    ],
    [
      'a fractional cap on deletes',
      { maxDelete: 2.5 },
      'maxDelete: expected a whole number ≥ 0: the most manifests this run may delete, e.g. 500, got 2.5',
    ],
    [
      'a misspelt field',
      { dryrun: true },
      'unknown field "dryrun": an on-demand run accepts dryRun, gc, repositories, excludeRepositories, keepLast, keepDays, keepTags, untaggedGrace, groups, untaggedOnly, maxDelete',
    ],
    [
      'a group pattern RE2 cannot run',
      {
        groups: [
          { tags: '^rc-', keepLast: 5 },
          { tags: '^(?!pr-)', keepLast: 3 },
        ],
      },
      'groups[1].tags: "^(?!pr-)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?!` (RE2 has no lookahead or lookbehind)',
    ],
    [
      'a group that keeps nothing',
      { groups: [{ tags: '^rc-' }] },
      'groups[0]: a group keeps its images by keepLast or keepDays: give one (keepLast 0 keeps none of them by count)',
    ],
    [
      "a group's days in words",
      { groups: [{ tags: '^pr-', keepDays: '2 days' }] },
      'groups[0].keepDays: expected a number of days or a duration such as 30, 36h or 2w, got "2 days"',
    ],
    [
      "a group's count as text",
      { groups: [{ tags: '^pr-', keepLast: 'three' }] },
      'groups[0].keepLast: expected a whole number ≥ 0 such as 10, got "three"',
    ],
    [
      'a misspelt group field',
      { groups: [{ tags: '^pr-', keepLats: 3, keepDays: 2 }] },
      'groups[0]: unknown field "keepLats": a group takes tags, keepLast, keepDays',
    ],
    [
      'untagged only with a count',
      { untaggedOnly: true, keepLast: 5 },
      'keepLast: does nothing with untaggedOnly: true, which keeps every tagged image: give one of them',
    ],
    [
      'a glob where a list belongs',
      { repositories: 'web/*' },
      'repositories: expected an array of up to 100 repository globs, e.g. ["web/*"], got "web/*"',
    ],
    [
      'a pattern RE2 cannot run',
      { keepTags: ['^v', '(?=x)'] },
      'keepTags[1]: "(?=x)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?=` (RE2 has no lookahead or lookbehind)',
    ],
    [
      'a duration in words',
      { untaggedGrace: '1 day' },
      'untaggedGrace: expected a duration such as 0, 90m, 2h or 7d, got "1 day"',
    ],
    ['another trigger', { trigger: 'hourly' }, 'trigger: expected "schedule", got "hourly"'],
    [
      'overrides beside the trigger',
      { trigger: 'schedule', dryRun: true },
      'unknown field "dryRun": a scheduled event is exactly {"trigger":"schedule"}; give overrides without "trigger"',
    ],
    [
      'the console’s template event',
      { key1: 'value1', key2: 'value2', key3: 'value3' },
      'unknown field "key1": an on-demand run accepts',
    ],
    [
      'an alarm event without a state',
      { ...alarmEvent('ALARM'), detail: { alarmName: 'disk' } },
      'detail.state: expected an object with value, got nothing',
    ],
    [
      'an alarm state CloudWatch does not have',
      alarmEvent('FIRING'),
      'detail.state.value: expected ALARM, OK, INSUFFICIENT_DATA, got "FIRING"',
    ],
    [
      'a command id that is not one',
      commandStatusEvent('$(reboot)'),
      'detail.command-id: expected an SSM command id such as 0b5f2c1e-1111-2222-3333-444455556666, got "$(reboot)"',
    ],
    [
      'an EventBridge event of another kind',
      { source: 'aws.ec2', 'detail-type': 'EC2 Instance State-change Notification', detail: {} },
      'source and detail-type: "aws.ec2" "EC2 Instance State-change Notification" is not an event this function handles',
    ],
    ['no object', null, 'the event must be a JSON object, got null'],
    ['a bare word', 'schedule', 'the event must be a JSON object, got "schedule"'],
    ['a list', [{ trigger: 'schedule' }], 'the event must be a JSON object, got [{"trigger":"schedule"}]'],
  ])('%s: throws naming the field and the accepted forms, and touches nothing', async (_, event, problem) => {
    const bare = bareHandler();
    try {
      const invocation = bare.handler(event, lambdaContext('req-bad'));

      await expect(invocation).rejects.toMatchObject({ name: 'EventError', code: 'RJ_EVENT' });
      const error = (await invocation.catch((e: unknown) => e)) as Error;
      expect(error.message).toContain(problem);
      expect(error.message).toContain(ACCEPTED);
      expect(bare.lines).toEqual([]);
      for (const mock of Object.values(bare.mocks)) expect(mock.calls()).toEqual([]);
    } finally {
      bare.restore();
    }
  });
});

describe('a run that cannot do its work', () => {
  let fixture: HandlerFixture;
  afterEach(async () => {
    await fixture?.close();
  });

  it('misconfigured: reports every problem by variable, counts a failed run, notifies, and touches nothing', async () => {
    fixture = await startHandlerFixture();
    await fixture.pushOld('web/app', 'v1', 30);
    const env: Record<string, string> = { ...fixture.env, [ENV.policy]: '{"defaults":' };
    delete env[ENV.registryUrl];
    const handler = fixture.handler({ env });

    const report = await handler(sampleEvent('schedule'), lambdaContext('req-config'));
    env[ENV.registryUrl] = fixture.reg.url;
    env[ENV.policy] = fixture.env[ENV.policy] ?? '';
    const again = await handler(sampleEvent('schedule'), lambdaContext('req-config-2'));

    expect(report).toMatchObject({
      outcome: 'failed',
      headline: 'FAILED - misconfigured: REGISTRY_URL: required, e.g. https://registry.internal:5000',
      problems: [
        'configuration: REGISTRY_URL: required, e.g. https://registry.internal:5000',
        expect.stringMatching(/^configuration: POLICY_JSON: not valid JSON \(/),
      ],
    });
    expect(again).toMatchObject({ outcome: 'failed', problems: report.problems });
    expect(fixture.emf()[0]).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: NAMESPACE }] },
      Registry: 'unknown',
      [METRICS.runFailed]: 1,
      [METRICS.runSucceeded]: 0,
    });
    const [notification] = fixture.published();
    expect(notification).toMatchObject({
      TopicArn: TOPIC,
      Subject: expect.stringMatching(/^registry-janitor: FAILED - misconfigured: REGISTRY_URL: required/),
    });
    expect(notification?.Message).toContain('- configuration: REGISTRY_URL: required');
    expect(notification?.Message).not.toMatch(/^\s+at /m);
    expect(fixture.fake.commands()).toEqual([]);
    expect(fixture.secretsMock).not.toHaveReceivedCommand(GetSecretValueCommand);
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeDefined();
  });

  it('with a secret of the wrong shape: names the secret and the accepted shapes, never its values', async () => {
    fixture = await startHandlerFixture();
    fixture.secretsMock
      .on(GetSecretValueCommand, { SecretId: SECRET })
      .resolves({ SecretString: JSON.stringify({ user: 'janitor', pass: 'hunter2-secret' }) });

    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-secret'));

    expect(report).toMatchObject({
      outcome: 'failed',
      problems: [
        `the secret ${SECRET} has the fields "user", "pass": expected {"username":"…","password":"…"} or {"token":"…"}`,
      ],
    });
    expect(JSON.stringify(report)).not.toContain('hunter2-secret');
    expect(fixture.published()[0]?.Message).not.toContain('hunter2-secret');
    expect(fixture.emf()[0]).toMatchObject({ [METRICS.runFailed]: 1 });
    expect(fixture.fake.commands()).toEqual([]);
  });

  it('when the registry does not answer: a failed report, a failed-run metric and a notification', async () => {
    const port = await closedPort();
    fixture = await startHandlerFixture({ env: { [ENV.registryUrl]: `http://127.0.0.1:${port}` } });

    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-down'));

    expect(report.outcome).toBe('failed');
    expect(report.problems).toEqual([
      expect.stringMatching(
        new RegExp(
          `^GET http://127\\.0\\.0\\.1:${port}/v2/_catalog.* failed \\(ECONNREFUSED\\): is the registry running at that address\\?$`,
        ),
      ),
    ]);
    expect(fixture.emf()[0]).toMatchObject({
      Registry: `127.0.0.1:${port}`,
      [METRICS.runFailed]: 1,
      [METRICS.manifestsDeleted]: 0,
    });
    expect(fixture.published()[0]?.Subject).toMatch(/^registry-janitor: FAILED - GET http:\/\/127\.0\.0\.1/);
    expect(fixture.published()[0]?.Subject?.length).toBeLessThanOrEqual(99);
    expect(report.historyLocation).toMatch(/req-down\.json$/);
  }, 60_000);

  it('when the registry hangs: gives up before the function times out, and still reports', async () => {
    // Prepare: a server that accepts connections and never answers; 11.5 s left in the invocation
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      fixture = await startHandlerFixture({ env: { [ENV.registryUrl]: `http://127.0.0.1:${port}` } });

      // Act
      const started = Date.now();
      const report = await fixture.handler({ safetyMarginMs: 5_000 })(
        sampleEvent('schedule'),
        lambdaContext('req-hang', 11_500),
      );

      // Assess: about 1.5 s spent on the registry, then the report went out
      expect(Date.now() - started).toBeLessThan(11_500);
      expect(report.outcome).toBe('failed');
      expect(report.problems).toEqual([
        expect.stringMatching(/_catalog.* was cancelled: the deadline passed$/),
      ]);
      expect(fixture.emf()[0]).toMatchObject({ [METRICS.runFailed]: 1 });
      expect(fixture.published()).toHaveLength(1);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('when the deadline passes during verification: fails, and counts and tells of no broken image', async () => {
    // Prepare: the registry never answers for the layer of v3, a kept image; 3 s left for registry calls
    fixture = await startHandlerFixture();
    await fixture.pushOld('web/app', 'v1', 30);
    await fixture.pushOld('web/app', 'v2', 20);
    const held = await fixture.pushOld('web/app', 'v3', 10);
    const proxy = await startStallingProxy(fixture.reg, blobHead(held.layers[0]?.digest ?? ''));
    try {
      const handler = fixture.handler({
        env: { ...fixture.env, [ENV.registryUrl]: proxy.url },
        safetyMarginMs: 5_000,
      });

      // Act
      const report = await handler(sampleEvent('no-gc'), lambdaContext('req-deadline', 13_000));

      // Assess
      expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeUndefined();
      expect(report).toMatchObject({
        outcome: 'failed',
        headline: 'FAILED - 1 of 2 kept tags not verified before the deadline',
        problems: ['verification incomplete: 1 of 2 kept tags not verified before the deadline'],
        figures: { manifestsDeleted: 1, tagsVerified: 1, tagsUnverified: 1, integrityFailures: 0 },
        cleanup: { verification: { broken: [], unverified: [{ repository: 'web/app', tag: 'v3' }] } },
      });
      expect(fixture.emf()[0]).toMatchObject({ [METRICS.integrityFailures]: 0, [METRICS.runFailed]: 1 });
      const [notification] = fixture.published();
      expect(notification?.Subject).toBe(
        'registry-janitor: FAILED - 1 of 2 kept tags not verified before the deadline',
      );
      expect(notification?.Message).toContain(
        'Verification: 1 of 2 kept tags not verified (deadline passed)\n',
      );
      expect(notification?.Message).not.toMatch(/broken/i);
    } finally {
      await proxy.close();
    }
  });

  it('when SSM refuses the collection: the deletions stay reported and the run fails saying why', async () => {
    fixture = await startHandlerFixture();
    await fixture.pushOld('web/app', 'v1', 30);
    await fixture.pushOld('web/app', 'v2', 20);
    await fixture.pushOld('web/app', 'v3', 10);
    fixture.fake.ssmMock.on(SendCommandCommand, { Parameters: { action: ['collect'] } }).rejects(
      new AccessDeniedException({
        message: 'not authorized to perform: ssm:SendCommand',
        Message: 'not authorized to perform: ssm:SendCommand',
        $metadata: {},
      }),
    );

    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-denied'));

    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeUndefined();
    expect(report).toMatchObject({
      outcome: 'failed',
      figures: { manifestsDeleted: 1, tagsVerified: 2, integrityFailures: 0 },
      problems: [
        expect.stringMatching(
          /^garbage collection failed \(exit unknown\): it could not be started: SendCommand was denied \(AccessDeniedException: not authorized to perform: ssm:SendCommand\): the role needs ssm:SendCommand/,
        ),
      ],
    });
    expect(fixture.emf()[0]).toMatchObject({ [METRICS.runFailed]: 1, [METRICS.manifestsDeleted]: 1 });
  });

  it('when the registry is read-only: deletes and collects nothing, and fails saying how to fix it', async () => {
    fixture = await startHandlerFixture();
    await fixture.pushOld('web/app', 'v1', 30);
    await fixture.pushOld('web/app', 'v2', 20);
    await fixture.pushOld('web/app', 'v3', 10);
    await fixture.reg.restart({ readOnly: true });

    const preview = await fixture.handler()(sampleEvent('dry-run'), lambdaContext('req-read-only-dry'));
    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-read-only'));

    expect(preview).toMatchObject({
      outcome: 'succeeded',
      notes: [
        expect.stringMatching(
          /^a run that deletes would stop before deleting anything: the registry is in read-only maintenance mode/,
        ),
      ],
    });
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeDefined();
    expect(report).toMatchObject({
      outcome: 'failed',
      figures: { manifestsDeleted: 0, integrityFailures: 0 },
      problems: [
        expect.stringMatching(
          /^the registry is in read-only maintenance mode \(DELETE in web\/app answered 405\)\. Take it out of read-only mode .* and restart the registry\.$/,
        ),
      ],
      cleanup: { garbageCollection: { ran: false, reason: 'deletes were refused' } },
    });
    expect(fixture.published().at(-1)?.Subject).toMatch(
      /^registry-janitor: FAILED - the registry is in read-only/,
    );
  });

  it('when the notification cannot be sent: the run fails and says why', async () => {
    fixture = await startHandlerFixture();
    await fixture.pushOld('web/app', 'v1', 30);
    fixture.snsMock.on(PublishCommand).rejects(
      Object.assign(new Error('User is not authorized to perform: SNS:Publish'), {
        name: 'AuthorizationError',
      }),
    );

    const report = await fixture.handler()(sampleEvent('dry-run'), lambdaContext('req-sns'));

    expect(report).toMatchObject({
      outcome: 'failed',
      problems: [
        `the notification could not be sent: publishing to ${TOPIC} failed (AuthorizationError: User is not authorized to perform: SNS:Publish): the function role needs sns:Publish on the topic`,
      ],
    });
    expect(fixture.emf()[0]).toMatchObject({ [METRICS.runFailed]: 1 });
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}
