import 'aws-sdk-client-mock-vitest/extend';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { PublishCommand } from '@aws-sdk/client-sns';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/aws/function-config.js';
import { METRICS } from '../../lambda/aws/metrics.js';
import { headManifest } from '../support/images.js';
import { skopeoPull } from '../support/skopeo.js';
import { blobSizes, freedBytes } from '../support/storage.js';
import { alarmEvent, lambdaContext, sampleEvent } from './events.js';
import {
  BUCKET,
  DISK_ALARM,
  type HandlerFixture,
  NAMESPACE,
  savedReport,
  startHandlerFixture,
  TOPIC,
} from './fixture.js';

describe('the function runs the whole cycle', () => {
  let fixture: HandlerFixture;
  afterEach(async () => {
    await fixture?.close();
  });

  /** web/app: v1..v4, 40 to 10 days old (the configured policy keeps the last 2); base/os: one image. */
  async function seed(f: HandlerFixture) {
    for (const [n, days] of [40, 30, 20, 10].entries())
      await f.pushOld('web/app', `v${n + 1}`, days, [3000 + n]);
    await f.pushOld('base/os', 'stable', 50);
  }

  const actions = (f: HandlerFixture) => f.fake.commands().map((c) => c.ssmEnvironment.SSM_action);

  it('on schedule: deletes what the policy says, collects, verifies, and reports the measured bytes everywhere', async () => {
    // Prepare
    fixture = await startHandlerFixture();
    await seed(fixture);
    const before = await blobSizes(fixture.reg);

    // Act
    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-schedule'));

    // Assess: the registry
    const freed = freedBytes(before, await blobSizes(fixture.reg));
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeUndefined();
    expect(await headManifest(fixture.reg, 'web/app', 'v2')).toBeUndefined();
    for (const [repository, tag] of [
      ['web/app', 'v3'],
      ['web/app', 'v4'],
      ['base/os', 'stable'],
    ] as const) {
      expect(await skopeoPull(fixture.reg, repository, tag)).toEqual({ ok: true });
    }
    expect(actions(fixture)).toEqual(['inventory', 'collect']);

    // Assess: the report
    expect(report).toMatchObject({
      requestId: 'req-schedule',
      trigger: { kind: 'schedule' },
      outcome: 'succeeded',
      policy: 'configured',
      problems: [],
      figures: {
        manifestsDeleted: 2,
        bytesReclaimed: freed,
        bytesEstimated: freed,
        tagsVerified: 3,
        integrityFailures: 0,
      },
      cleanup: {
        garbageCollection: { ran: true, state: 'finished', summary: { status: 'done', restarted: true } },
      },
    });
    expect(freed).toBeGreaterThan(6000);
    expect(report.headline).toMatch(/^freed \d+\.\d+ KiB, deleted 2 manifests$/);

    // Assess: the metrics line
    const [emf] = fixture.emf();
    expect(emf).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: NAMESPACE, Dimensions: [['Registry']] }] },
      Registry: fixture.reg.host,
      [METRICS.manifestsDeleted]: 2,
      [METRICS.bytesReclaimed]: freed,
      [METRICS.integrityFailures]: 0,
      [METRICS.runFailed]: 0,
      [METRICS.runSucceeded]: 1,
      [METRICS.durationSeconds]: report.durationSeconds,
      [METRICS.diskUsedPercentBefore]: expect.any(Number),
      [METRICS.diskUsedPercentAfter]: expect.any(Number),
    });

    // Assess: the notification
    expect(fixture.published()).toEqual([
      { TopicArn: TOPIC, Subject: `registry-janitor: ${report.headline}`, Message: expect.any(String) },
    ]);
    const message = fixture.published()[0]?.Message ?? '';
    expect(message).toContain('Outcome: succeeded (scheduled run, configured policy)\n');
    expect(message).toContain('Deleted: 2 manifests (0 skipped, 0 failed)\n');
    expect(message).toContain(`(${freed} bytes) measured; plan estimate `);
    expect(message).toContain('Verification: all 3 kept tags resolve completely\n');
    expect(message).toContain(`Full report: ${report.historyLocation}\n`);
    expect(message).toContain(`Report page: ${report.reportPage}\n`);

    // Assess: the run history
    expect(report.historyLocation).toMatch(
      new RegExp(
        `^s3://${BUCKET}/runs/\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z-req-schedule\\.json$`,
      ),
    );
    const { historyLocation: _, reportPage: __, ...saved } = report;
    expect(savedReport(fixture, report)).toEqual(JSON.parse(JSON.stringify(saved)));

    // Assess: the report's page, beside it
    expect(report.reportPage).toBe(report.historyLocation?.replace(/\.json$/, '.html'));
    const page = fixture.fake.objects.get((report.reportPage ?? '').replace('s3://', '')) ?? '';
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<h1>registry-janitor function run (schedule)</h1>');
    expect(page).toContain(`<p class="headline">${report.headline}</p>`);
    expect(page).toContain('<g class="bar" data-label="web/app">');
    expect(page).toContain('<g class="bar" data-label="base/os">');
    expect(page).toMatch(/<tr class="delete"><td class="what" title="v1">v1<\/td>.*stale: pushed 40d ago/);
    expect(page).toContain(`${(freed).toLocaleString('en-US')} bytes freed`);
    expect(
      fixture.fake.s3Mock.commandCalls(PutObjectCommand).map((call) => call.args[0].input),
    ).toContainEqual(
      expect.objectContaining({
        Bucket: BUCKET,
        Key: (report.reportPage ?? '').replace(`s3://${BUCKET}/`, ''),
        ContentType: 'text/html; charset=utf-8',
      }),
    );
    expect(fixture.pending()).toBeUndefined();
    expect(fixture.secretsMock).toHaveReceivedCommandTimes(GetSecretValueCommand, 1);
  });

  it('dry run: says what it would delete and changes nothing', async () => {
    fixture = await startHandlerFixture();
    await seed(fixture);
    const before = await blobSizes(fixture.reg);

    const report = await fixture.handler()(sampleEvent('dry-run'), lambdaContext('req-dry'));

    expect(await blobSizes(fixture.reg)).toEqual(before);
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeDefined();
    expect(actions(fixture)).toEqual(['inventory']);
    expect(report).toMatchObject({
      outcome: 'succeeded',
      dryRun: true,
      plan: {
        totals: { manifestsDeleted: 2, tagsDeleted: 2 },
        deletions: [{ repository: 'web/app', tags: ['v1', 'v2'], manifests: 2 }],
      },
    });
    expect(report.cleanup).toBeUndefined();
    expect(report.headline).toMatch(/^dry run: would delete 2 manifests, freeing \d+\.\d+ KiB$/);
    expect(fixture.emf()[0]).toMatchObject({ [METRICS.manifestsDeleted]: 0, [METRICS.runSucceeded]: 1 });
    expect(fixture.published()[0]?.Subject).toBe(`registry-janitor: ${report.headline}`);
  });

  it('for one repository: leaves every other repository alone', async () => {
    fixture = await startHandlerFixture();
    await seed(fixture);
    await fixture.pushOld('base/os', 'old-1', 90);
    await fixture.pushOld('base/os', 'old-2', 80);

    const report = await fixture.handler()(sampleEvent('one-repository'), lambdaContext('req-one'));

    expect(report).toMatchObject({ outcome: 'succeeded', figures: { manifestsDeleted: 2 } });
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeUndefined();
    expect(await headManifest(fixture.reg, 'base/os', 'old-1')).toBeDefined();
    expect(report.cleanup?.plan.totals.repositories).toBe(1);
  });

  it('with keepLast: replaces the configured default for this run only', async () => {
    fixture = await startHandlerFixture();
    for (let n = 1; n <= 6; n += 1) await fixture.pushOld('web/app', `v${n}`, 60 - n);
    const handler = fixture.handler();

    const report = await handler(sampleEvent('keep-last'), lambdaContext('req-keep'));

    expect(report).toMatchObject({
      outcome: 'succeeded',
      policy: 'configured with overrides',
      trigger: { kind: 'manual', overrides: { keepLast: 5 } },
      figures: { manifestsDeleted: 1 },
    });
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeUndefined();
    expect(await headManifest(fixture.reg, 'web/app', 'v2')).toBeDefined();

    const next = await handler(sampleEvent('schedule'), lambdaContext('req-next'));

    expect(next).toMatchObject({ policy: 'configured', figures: { manifestsDeleted: 3 } });
    expect(await headManifest(fixture.reg, 'web/app', 'v4')).toBeUndefined();
    expect(await headManifest(fixture.reg, 'web/app', 'v5')).toBeDefined();
  });

  it('with untaggedOnly: deletes only the untagged revision, and every tag the policy would delete still pulls', async () => {
    // Prepare: web/app's v1 pushed twice leaves one untagged revision; the configured policy keeps the last 2
    fixture = await startHandlerFixture();
    const replaced = await fixture.pushOld('web/app', 'v1', 45);
    await seed(fixture);
    const before = await blobSizes(fixture.reg);

    // Act
    const report = await fixture.handler()(sampleEvent('untagged-only'), lambdaContext('req-untagged'));

    // Assess
    expect(report).toMatchObject({
      outcome: 'succeeded',
      policy: 'configured with overrides',
      trigger: { kind: 'manual', overrides: { untaggedOnly: true } },
      figures: { manifestsDeleted: 1, tagsVerified: 5, integrityFailures: 0 },
    });
    expect(await headManifest(fixture.reg, 'web/app', replaced.digest)).toBeUndefined();
    for (const [repository, tag] of [
      ['web/app', 'v1'],
      ['web/app', 'v2'],
      ['web/app', 'v3'],
      ['web/app', 'v4'],
      ['base/os', 'stable'],
    ] as const) {
      expect({ tag, ...(await skopeoPull(fixture.reg, repository, tag)) }).toEqual({ tag, ok: true });
    }
    expect(freedBytes(before, await blobSizes(fixture.reg))).toBeGreaterThan(0);
  });

  it('without garbage collection: deletes, verifies, and says the space frees at the next collection', async () => {
    fixture = await startHandlerFixture();
    await seed(fixture);
    const before = await blobSizes(fixture.reg);

    const report = await fixture.handler()(sampleEvent('no-gc'), lambdaContext('req-nogc'));

    expect(actions(fixture)).toEqual(['inventory']);
    expect(freedBytes(before, await blobSizes(fixture.reg))).toBe(0);
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeUndefined();
    expect(report).toMatchObject({
      outcome: 'succeeded',
      notes: ['garbage collection was turned off for this run'],
      figures: { manifestsDeleted: 2, tagsVerified: 3, integrityFailures: 0 },
      cleanup: { garbageCollection: { ran: false } },
    });
    expect(report.figures.bytesReclaimed).toBeUndefined();
    expect(report.headline).toMatch(
      /^deleted 2 manifests; \d+\.\d+ KiB frees at the next garbage collection$/,
    );
    expect(fixture.emf()[0]).toMatchObject({ [METRICS.bytesReclaimed]: 0, [METRICS.manifestsDeleted]: 2 });
  });
});

describe('the disk alarm', () => {
  let fixture: HandlerFixture;
  afterEach(async () => {
    await fixture?.close();
  });

  it('in ALARM: runs the whole cycle with the emergency policy', async () => {
    fixture = await startHandlerFixture({
      env: { [ENV.emergencyPolicy]: JSON.stringify({ defaults: { keepLast: 1, untaggedGrace: '0' } }) },
    });
    for (let n = 1; n <= 3; n += 1) await fixture.pushOld('web/app', `v${n}`, 30 - n);
    const before = await blobSizes(fixture.reg);

    const report = await fixture.handler()(sampleEvent('disk-alarm'), lambdaContext('req-alarm'));

    expect(report).toMatchObject({
      outcome: 'succeeded',
      policy: 'emergency',
      trigger: { kind: 'alarm', alarmName: DISK_ALARM, state: 'ALARM' },
      figures: { manifestsDeleted: 2, bytesReclaimed: freedBytes(before, await blobSizes(fixture.reg)) },
    });
    expect(await headManifest(fixture.reg, 'web/app', 'v2')).toBeUndefined();
    expect(await skopeoPull(fixture.reg, 'web/app', 'v3')).toEqual({ ok: true });
    expect(fixture.published()[0]?.Message).toContain(
      `Outcome: succeeded (alarm ${DISK_ALARM} ALARM, emergency policy)`,
    );
  });

  it.each([
    ['back to OK', alarmEvent('OK'), `alarm ${DISK_ALARM} is OK`],
    ['with insufficient data', alarmEvent('INSUFFICIENT_DATA'), `alarm ${DISK_ALARM} is INSUFFICIENT_DATA`],
    [
      'of another alarm',
      alarmEvent('ALARM', 'cpu-high'),
      `alarm cpu-high is not the disk alarm ${DISK_ALARM}`,
    ],
  ])('%s: nothing to do, and the registry is not touched', async (_, event, reason) => {
    fixture = await startHandlerFixture();
    await fixture.pushOld('web/app', 'v1', 30);
    await fixture.pushOld('web/app', 'v2', 20);
    await fixture.pushOld('web/app', 'v3', 10);

    const report = await fixture.handler()(event, lambdaContext('req-ok'));

    expect(report).toMatchObject({
      outcome: 'nothing to do',
      notes: [reason],
      headline: `nothing to do: ${reason}`,
    });
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeDefined();
    expect(fixture.fake.commands()).toEqual([]);
    expect(fixture.secretsMock).not.toHaveReceivedCommand(GetSecretValueCommand);
    expect(fixture.snsMock).not.toHaveReceivedCommand(PublishCommand);
    expect(fixture.keys('runs/')).toEqual([]);
    expect(fixture.emf()[0]).toMatchObject({ [METRICS.runSucceeded]: 0, [METRICS.runFailed]: 0 });
  });
});

describe('the host script warns of something a person must do', () => {
  let fixture: HandlerFixture;
  afterEach(async () => {
    await fixture?.close();
  });

  it('puts the warning in the report and in the notification', async () => {
    // Prepare: the registry container keeps its blob descriptor cache in Redis
    fixture = await startHandlerFixture({
      docker: { containerEnv: ['REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR=redis'] },
    });
    await fixture.pushOld('web/app', 'v1', 40, [3000]);
    await fixture.pushOld('web/app', 'v2', 30, [3001]);
    await fixture.pushOld('web/app', 'v3', 20, [3002]);

    // Act
    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-redis'));

    // Assess
    const warning = expect.stringMatching(
      /^garbage collection: the registry caches blob descriptors in Redis/,
    );
    expect(report).toMatchObject({ outcome: 'succeeded', notes: expect.arrayContaining([warning]) });
    expect(fixture.snsMock).toHaveReceivedCommandWith(PublishCommand, {
      Message: expect.stringContaining('flush that Redis database after every garbage collection'),
    });
  });
});
