import { rm } from 'node:fs/promises';
import { SendCommandCommand } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/aws/function-config.js';
import type { RunnerTuning } from '../../lambda/aws/host-commands.js';
import { METRICS } from '../../lambda/aws/metrics.js';
import { lockReleased, readMarker } from '../host/host-fixture.js';
import { headManifest } from '../support/images.js';
import { skopeoPull } from '../support/skopeo.js';
import { blobDataPath, blobSizes, freedBytes } from '../support/storage.js';
import { commandStatusEvent, lambdaContext, sampleEvent } from './events.js';
import { type HandlerFixture, startHandlerFixture } from './fixture.js';

/**
 * The SSM runner's clock for these tests: time passes only when the runner sleeps. While `hold` is set, a sleep
 * during a held collection returns at once, so the runner reaches its deadline with the collection still
 * running; otherwise a sleep releases the collection and waits for every command to end.
 */
function runnerClock(f: HandlerFixture) {
  const gate = f.gate;
  if (!gate) throw new Error('the fixture needs gate: true');
  let time = 1_000_000;
  let waitedForCollection = 0;
  const state = { hold: true };
  const tuning: RunnerTuning = {
    now: () => time,
    sleep: async (ms) => {
      time += ms;
      if (f.fake.commands().at(-1)?.ssmEnvironment.SSM_action === 'collect') waitedForCollection += ms;
      if (state.hold) await Promise.race([f.fake.idle(), gate.reached]);
      else {
        gate.release();
        await f.fake.idle();
      }
    },
  };
  return { tuning, state, waited: () => waitedForCollection };
}

const collectCommands = (f: HandlerFixture) =>
  f.fake.commands().filter((c) => c.ssmEnvironment.SSM_action === 'collect');

describe('a garbage collection that outlasts the function', () => {
  let fixture: HandlerFixture;
  afterEach(async () => {
    await fixture?.close();
  });

  async function seed(f: HandlerFixture) {
    for (const [n, days] of [40, 30, 20, 10].entries())
      await f.pushOld('web/app', `v${n + 1}`, days, [4000 + n]);
    await f.pushOld('base/os', 'stable', 50);
  }

  it('is left running within the remaining time; its status-change event verifies and reports it', async () => {
    // Prepare: 75 s left, 60 s kept back: the collection may be waited for 15 s
    fixture = await startHandlerFixture({ gate: true });
    await seed(fixture);
    const before = await blobSizes(fixture.reg);
    const clock = runnerClock(fixture);

    // Act: the scheduled run
    const first = await fixture.handler({ ssmTuning: clock.tuning })(
      sampleEvent('schedule'),
      lambdaContext('req-first', 75_000),
    );

    // Assess: deleted, collection left running and recorded, nothing claimed about it yet
    const commandId = collectCommands(fixture)[0]?.commandId ?? '';
    expect(clock.waited()).toBe(15_000);
    expect(await headManifest(fixture.reg, 'web/app', 'v1')).toBeUndefined();
    expect(first).toMatchObject({
      outcome: 'pending',
      pendingCommandId: commandId,
      problems: [],
      headline: 'deleted 2 manifests; garbage collection still running',
      cleanup: { garbageCollection: { ran: true, state: 'running', commandId }, verificationDeferred: true },
    });
    expect(first.notes).toContain(
      `garbage collection is still running on the host (command ${commandId}); its status-change event, or the next run, verifies the kept images when it ends`,
    );
    expect(fixture.pending()).toEqual({
      commandId,
      startedAt: first.startedAt,
      requestId: 'req-first',
      registry: fixture.reg.url,
      keptTags: expect.arrayContaining([
        { repository: 'web/app', tag: 'v3' },
        { repository: 'web/app', tag: 'v4' },
        { repository: 'base/os', tag: 'stable' },
      ]),
    });
    expect(fixture.emf()[0]).toMatchObject({ [METRICS.runFailed]: 0, [METRICS.runSucceeded]: 0 });
    expect(fixture.published()[0]?.Subject).toBe(`registry-janitor: ${first.headline}`);
    expect(freedBytes(before, await blobSizes(fixture.reg))).toBe(0);

    // Act: the collection ends; EventBridge delivers its status change to a new container
    fixture.gate?.release();
    await fixture.fake.idle();
    const settled = await fixture.handler()(commandStatusEvent(commandId), lambdaContext('req-event'));

    // Assess
    const freed = freedBytes(before, await blobSizes(fixture.reg));
    expect(freed).toBeGreaterThan(8000);
    expect(settled).toMatchObject({
      trigger: { kind: 'command-status', commandId, status: 'Success', action: 'collect' },
      outcome: 'succeeded',
      problems: [],
      collection: {
        commandId,
        startedAt: first.startedAt,
        state: 'finished',
        measuredBytes: freed,
        verification: { tags: 3, broken: [] },
        run: { summary: { status: 'done', restarted: true } },
      },
      figures: { bytesReclaimed: freed, tagsVerified: 3, integrityFailures: 0 },
    });
    expect(settled.headline).toMatch(
      /^garbage collection finished: freed \d+\.\d+ KiB, 3 kept tags verified$/,
    );
    expect(fixture.pending()).toBeUndefined();
    expect(fixture.emf()[1]).toMatchObject({
      [METRICS.bytesReclaimed]: freed,
      [METRICS.integrityFailures]: 0,
      [METRICS.runSucceeded]: 1,
      [METRICS.diskUsedPercentAfter]: expect.any(Number),
    });
    expect(fixture.published()[1]?.Message).toContain('Verification: all 3 kept tags resolve completely\n');
    const saved = fixture.keys('runs/').filter((key) => key !== 'runs/pending.json');
    expect(saved.filter((key) => key.endsWith('.json'))).toHaveLength(2);
    expect(saved.filter((key) => key.endsWith('.html'))).toHaveLength(2);
    expect(await skopeoPull(fixture.reg, 'web/app', 'v4')).toEqual({ ok: true });
  });

  it('waits no longer than GC_WAIT_SECONDS; the next scheduled run settles it, and the late event finds nothing to do', async () => {
    fixture = await startHandlerFixture({ gate: true, env: { [ENV.gcWaitSeconds]: '10' } });
    await seed(fixture);
    const before = await blobSizes(fixture.reg);
    const clock = runnerClock(fixture);
    const first = await fixture.handler({ ssmTuning: clock.tuning })(
      sampleEvent('schedule'),
      lambdaContext('req-first'),
    );
    const commandId = first.pendingCommandId ?? '';
    expect(clock.waited()).toBe(10_000);
    fixture.gate?.release();
    await fixture.fake.idle();

    const next = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-next'));

    const freed = freedBytes(before, await blobSizes(fixture.reg));
    expect(next).toMatchObject({
      outcome: 'succeeded',
      problems: [],
      collection: {
        commandId,
        state: 'finished',
        measuredBytes: freed,
        verification: { tags: 3, broken: [] },
      },
      figures: { manifestsDeleted: 0, bytesReclaimed: freed, integrityFailures: 0 },
      cleanup: { garbageCollection: { ran: false, reason: 'nothing was deleted' } },
    });
    expect(fixture.pending()).toBeUndefined();
    expect(fixture.emf()[1]).toMatchObject({ [METRICS.bytesReclaimed]: freed });

    const late = await fixture.handler()(commandStatusEvent(commandId), lambdaContext('req-late'));

    expect(late).toMatchObject({
      outcome: 'nothing to do',
      notes: [`no collection started by this function is waiting for command ${commandId}`],
    });
    expect(fixture.published()).toHaveLength(2);
  });

  it('while it still runs, the next run deletes but starts no second collection, and says so', async () => {
    fixture = await startHandlerFixture({ gate: true, env: { [ENV.gcWaitSeconds]: '10' } });
    await seed(fixture);
    const clock = runnerClock(fixture);
    const handler = fixture.handler({ ssmTuning: clock.tuning });
    const first = await handler(sampleEvent('schedule'), lambdaContext('req-first'));
    const commandId = first.pendingCommandId ?? '';
    await fixture.pushOld('web/app', 'v0', 60);

    clock.state.hold = false;
    const next = await handler(sampleEvent('schedule'), lambdaContext('req-next'));

    expect(await headManifest(fixture.reg, 'web/app', 'v0')).toBeUndefined();
    expect(collectCommands(fixture)).toHaveLength(1);
    expect(next).toMatchObject({
      outcome: 'pending',
      collection: { commandId, state: 'running' },
      figures: { manifestsDeleted: 1 },
      cleanup: { garbageCollection: { ran: false } },
    });
    expect(next.notes).toContain(
      `garbage collection skipped: the collection started ${first.startedAt} (command ${commandId}) is still running`,
    );
    expect(fixture.pending()).toMatchObject({ commandId });

    const settled = await fixture.handler()(commandStatusEvent(commandId), lambdaContext('req-event'));

    expect(settled).toMatchObject({ outcome: 'succeeded', collection: { state: 'finished' } });
    expect(fixture.pending()).toBeUndefined();
  });

  it('with the registry stopped to collect, the next run changes nothing and says why', async () => {
    fixture = await startHandlerFixture({
      gate: true,
      env: { GC_MODE: 'stopped', [ENV.gcWaitSeconds]: '10' },
    });
    await seed(fixture);
    const clock = runnerClock(fixture);
    const handler = fixture.handler({ ssmTuning: clock.tuning });
    const first = await handler(sampleEvent('schedule'), lambdaContext('req-first'));
    const commandId = first.pendingCommandId ?? '';
    const stoppedWhileHeld = !fixture.reg.isRunning();

    const next = await handler(sampleEvent('schedule'), lambdaContext('req-next'));

    expect(stoppedWhileHeld).toBe(true);
    expect(next).toMatchObject({
      outcome: 'pending',
      problems: [],
      collection: { commandId, state: 'running' },
    });
    expect(next.notes).toEqual([
      `the collection started ${first.startedAt} (command ${commandId}) is still running: the registry is stopped while it collects, so this run changed nothing; the command's status-change event or the next run finishes it`,
    ]);
    expect(fixture.fake.commands().map((c) => c.ssmEnvironment.SSM_action)).toEqual(['inventory', 'collect']);

    fixture.gate?.release();
    await fixture.fake.idle();
    const settled = await fixture.handler()(commandStatusEvent(commandId), lambdaContext('req-event'));

    expect(fixture.reg.isRunning()).toBe(true);
    expect(settled).toMatchObject({
      outcome: 'succeeded',
      collection: { verification: { tags: 3, broken: [] } },
    });
  });

  it('without an output bucket, its status-change event verifies every tag; other commands are not its business', async () => {
    fixture = await startHandlerFixture({ gate: true, env: { [ENV.bucket]: '', [ENV.gcWaitSeconds]: '10' } });
    await seed(fixture);
    const before = await blobSizes(fixture.reg);
    const clock = runnerClock(fixture);
    const first = await fixture.handler({ ssmTuning: clock.tuning })(
      sampleEvent('schedule'),
      lambdaContext('req-first'),
    );
    const commandId = first.pendingCommandId ?? '';
    const inventoryId = fixture.fake.commands()[0]?.commandId ?? '';
    fixture.gate?.release();
    await fixture.fake.idle();
    const handler = fixture.handler();

    const inventory = await handler(
      {
        ...commandStatusEvent(inventoryId),
        detail: {
          ...(commandStatusEvent(inventoryId).detail as object),
          parameters: { action: ['inventory'] },
        },
      },
      lambdaContext('req-inventory'),
    );
    const settled = await handler(commandStatusEvent(commandId), lambdaContext('req-event'));

    expect(first.notes).toContain(
      `garbage collection is still running on the host (command ${commandId}); with no output bucket to remember it, its status-change event verifies every tag when it ends`,
    );
    expect(inventory).toMatchObject({
      outcome: 'nothing to do',
      notes: [`command ${inventoryId} ran the host script's inventory, not a collection`],
    });
    expect(settled).toMatchObject({
      outcome: 'succeeded',
      collection: {
        commandId,
        state: 'finished',
        measuredBytes: freedBytes(before, await blobSizes(fixture.reg)),
        verification: { tags: 3, broken: [] },
      },
      notes: [
        'no output bucket records the kept tags, so every tag of the selected repositories was verified',
      ],
    });
    expect(settled.historyLocation).toBeUndefined();
    expect(fixture.fake.objects.size).toBe(0);
  });

  it('fails, names the image and counts it when a kept image is broken after the collection', async () => {
    fixture = await startHandlerFixture({ gate: true, env: { [ENV.gcWaitSeconds]: '10' } });
    await seed(fixture);
    const kept = await fixture.pushOld('web/app', 'v5', 5, [5000]);
    const clock = runnerClock(fixture);
    const first = await fixture.handler({ ssmTuning: clock.tuning })(
      sampleEvent('schedule'),
      lambdaContext('req-first'),
    );
    const commandId = first.pendingCommandId ?? '';
    const layer = kept.layers[0]?.digest ?? '';
    await rm(blobDataPath(fixture.reg, layer));
    fixture.gate?.release();
    await fixture.fake.idle();

    const settled = await fixture.handler()(commandStatusEvent(commandId), lambdaContext('req-event'));

    expect(settled).toMatchObject({
      outcome: 'failed',
      headline: 'FAILED - 1 kept image broken',
      problems: [`BROKEN kept image web/app:v5: blob ${layer} is missing`],
      collection: {
        state: 'finished',
        verification: { tags: 3, broken: [{ repository: 'web/app', tag: 'v5' }] },
      },
    });
    expect(fixture.emf()[1]).toMatchObject({ [METRICS.integrityFailures]: 1, [METRICS.runFailed]: 1 });
    expect(fixture.published()[1]).toMatchObject({
      Subject: 'registry-janitor: FAILED - 1 kept image broken',
      Message: expect.stringContaining(
        `Problems:\n- BROKEN kept image web/app:v5: blob ${layer} is missing\n`,
      ),
    });
    expect(fixture.pending()).toBeUndefined();
  });
});

describe('a garbage collection that SSM stops', () => {
  let fixture: HandlerFixture;
  afterEach(async () => {
    await fixture?.close();
  });

  async function seed(f: HandlerFixture) {
    for (const [n, days] of [40, 30, 20, 10].entries())
      await f.pushOld('web/app', `v${n + 1}`, days, [4000 + n]);
    await f.pushOld('base/os', 'stable', 50);
  }

  /** Time passes only when the runner sleeps; a sleep returns once the commands end or the collection is held. */
  function heldClock(f: HandlerFixture): RunnerTuning {
    let time = 1_000_000;
    return {
      now: () => time,
      sleep: async (ms) => {
        time += ms;
        await Promise.race([f.fake.idle(), f.docker.garbageCollectHeld()]);
      },
    };
  }

  const sentActions = (f: HandlerFixture) =>
    f.fake.ssmMock.commandCalls(SendCommandCommand).map((call) => call.args[0].input.Parameters?.action?.[0]);

  it('on its TimedOut event, runs recover, which starts the registry its killed watchdog left stopped, then verifies', async () => {
    // Prepare: a stopped-mode collection left running, then killed by SSM with its watchdog
    fixture = await startHandlerFixture({
      env: { GC_MODE: 'stopped', [ENV.gcWaitSeconds]: '10', [ENV.executionTimeoutSeconds]: '900' },
      docker: { holdGarbageCollect: 'once' },
    });
    await seed(fixture);
    const first = await fixture.handler({ ssmTuning: heldClock(fixture) })(
      sampleEvent('schedule'),
      lambdaContext('req-first'),
    );
    const commandId = first.pendingCommandId ?? '';
    const marker = await readMarker(fixture.env.HOST_LOG_DIR ?? '');
    if (!marker) throw new Error('the collection left no marker');
    await fixture.fake.interrupt(commandId, 'TimedOut');
    process.kill(-marker.pid, 'SIGKILL');
    await lockReleased(fixture.env.HOST_LOCK_FILE ?? '');
    const leftStopped = !fixture.reg.isRunning();

    // Act
    const settled = await fixture.handler()(
      commandStatusEvent(commandId, 'TimedOut'),
      lambdaContext('req-event'),
    );

    // Assess
    expect(leftStopped).toBe(true);
    expect(sentActions(fixture)).toEqual(['inventory', 'collect', 'recover']);
    expect(
      fixture.fake.ssmMock
        .commandCalls(SendCommandCommand)
        .map((call) => call.args[0].input.Parameters?.executionTimeout),
    ).toEqual([['900'], ['900'], ['900']]);
    expect(fixture.reg.isRunning()).toBe(true);
    expect(settled).toMatchObject({
      trigger: { kind: 'command-status', commandId, status: 'TimedOut' },
      outcome: 'failed',
      collection: {
        commandId,
        state: 'finished',
        run: { ssmStatus: 'TimedOut (Execution Timed Out)', interrupted: true },
        recovery: { summary: { action: 'recover', status: 'done', restarted: true } },
        verification: { tags: 3, broken: [] },
      },
      figures: { integrityFailures: 0, tagsVerified: 3 },
    });
    expect(settled.problems).toEqual([
      expect.stringMatching(
        /^garbage collection failed \(exit unknown\): the host script ran longer than its execution timeout \(900 s\) and SSM stopped it; a collection still brings the registry back by itself/,
      ),
    ]);
    expect(settled.notes).toContainEqual(
      expect.stringMatching(
        /was stopped by SSM before it finished; recover: a collection started \S+ did not finish \(log \S+\) and left the registry stopped: started it$/,
      ),
    );
    expect(fixture.pending()).toBeUndefined();
    expect(await skopeoPull(fixture.reg, 'web/app', 'v4')).toEqual({ ok: true });
  });

  it('whose watchdog brought the registry back: the next run finds nothing to recover and collects again', async () => {
    // The first run's clock is held; the next one waits in real time, long enough for a loaded machine.
    fixture = await startHandlerFixture({
      env: { [ENV.gcWaitSeconds]: '90' },
      docker: { holdGarbageCollect: 'once' },
    });
    await seed(fixture);
    const before = await blobSizes(fixture.reg);
    const first = await fixture.handler({ ssmTuning: heldClock(fixture) })(
      sampleEvent('schedule'),
      lambdaContext('req-first'),
    );
    const commandId = first.pendingCommandId ?? '';
    await fixture.fake.interrupt(commandId, 'Cancelled');
    await lockReleased(fixture.env.HOST_LOCK_FILE ?? '');
    const calls = await fixture.docker.calls();
    const restartedByWatchdog = calls
      .slice(calls.findIndex((argv) => argv.includes('garbage-collect')))
      .some((argv) => argv[0] === 'restart');

    const next = await fixture.handler()(sampleEvent('schedule'), lambdaContext('req-next'));

    expect(restartedByWatchdog).toBe(true);
    expect(sentActions(fixture)).toEqual(['inventory', 'collect', 'recover', 'inventory', 'collect']);
    expect(next.collection).toMatchObject({
      commandId,
      state: 'finished',
      run: { ssmStatus: 'Cancelled', interrupted: true },
      recovery: { summary: { action: 'recover', status: 'nothing to do', restarted: false } },
      verification: { tags: 3, broken: [] },
    });
    expect(next.notes).toContain(
      `the collection started ${first.startedAt} (command ${commandId}) was stopped by SSM before it finished; recover found nothing to do: the registry is running and no collection was interrupted`,
    );
    expect(next.cleanup?.garbageCollection).toMatchObject({
      ran: true,
      state: 'finished',
      summary: { status: 'done' },
    });
    expect(freedBytes(before, await blobSizes(fixture.reg))).toBeGreaterThan(8000);
    expect(fixture.pending()).toBeUndefined();
  }, 180_000);
});
