import 'aws-sdk-client-mock-vitest/extend';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/aws/function-config.js';
import { METRICS } from '../../lambda/aws/metrics.js';
import { headManifest } from '../support/images.js';
import { blobSizes } from '../support/storage.js';
import { lambdaContext, sampleEvent } from './events.js';
import { type HandlerFixture, startHandlerFixture } from './fixture.js';

const OVER_THE_CAP =
  'the plan deletes 2 manifests, more than maxDelete 1: check the policy, or raise maxDelete';

describe('the function with a cap on deletes (MAX_DELETE)', () => {
  let fixture: HandlerFixture;
  afterEach(async () => {
    await fixture?.close();
  });

  /** web/app: v1..v4, 40 to 10 days old; the configured policy keeps the last 2, so a run deletes 2. */
  async function seed(): Promise<void> {
    fixture = await startHandlerFixture({ env: { [ENV.maxDelete]: '1' } });
    for (const [n, days] of [40, 30, 20, 10].entries()) await fixture.pushOld('web/app', `v${n + 1}`, days);
  }
  const tagsLeft = async () => {
    const left: string[] = [];
    for (const tag of ['v1', 'v2', 'v3', 'v4'])
      if (await headManifest(fixture.reg, 'web/app', tag)) left.push(tag);
    return left;
  };
  const actions = () => fixture.fake.commands().map((c) => c.ssmEnvironment.SSM_action);

  it('a scheduled run over the cap deletes nothing, collects nothing, fails, and says why everywhere', async () => {
    // Prepare
    await seed();
    const before = await blobSizes(fixture.reg);

    // Act
    const report = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-capped'));

    // Assess: the registry
    expect(await tagsLeft()).toEqual(['v1', 'v2', 'v3', 'v4']);
    expect(await blobSizes(fixture.reg)).toEqual(before);
    expect(actions()).toEqual(['inventory']);

    // Assess: the report, the metrics and the notification
    expect(report).toMatchObject({
      outcome: 'failed',
      problems: [OVER_THE_CAP],
      headline: `FAILED - ${OVER_THE_CAP}`,
      figures: { manifestsDeleted: 0 },
      cleanup: {
        plan: { totals: { manifestsDeleted: 2 }, maxDelete: { limit: 1, setting: 'maxDelete' } },
        deletions: { deleted: [], stoppedBy: { message: OVER_THE_CAP } },
        garbageCollection: { ran: false },
      },
    });
    expect(fixture.emf()[0]).toMatchObject({ [METRICS.runFailed]: 1, [METRICS.manifestsDeleted]: 0 });
    expect(fixture.published()[0]?.Message).toContain(`Problems:\n- ${OVER_THE_CAP}\n`);
  });

  it('an on-demand run may raise the cap for itself', async () => {
    await seed();

    const report = await fixture.handler()({ maxDelete: 2 }, lambdaContext('req-raised'));

    expect(report).toMatchObject({
      outcome: 'succeeded',
      figures: { manifestsDeleted: 2 },
      cleanup: { plan: { maxDelete: { limit: 2, setting: 'maxDelete' } } },
    });
    expect(await tagsLeft()).toEqual(['v3', 'v4']);
  });

  it('a dry run shows the cap and that a real run would stop', async () => {
    await seed();

    const report = await fixture.handler()(sampleEvent('dry-run'), lambdaContext('req-dry-capped'));

    expect(report).toMatchObject({
      outcome: 'succeeded',
      dryRun: true,
      plan: { totals: { manifestsDeleted: 2 }, maxDelete: 1 },
      notes: [`a run that deletes would stop before deleting anything: ${OVER_THE_CAP}`],
    });
    expect(await tagsLeft()).toEqual(['v1', 'v2', 'v3', 'v4']);
    expect(fixture.published()[0]?.Message).toContain('Would delete: 2 manifests, 2 tags (maxDelete 1)\n');
  });
});
