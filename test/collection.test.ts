import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { cleanup, type EnginePorts } from '../lambda/cleanup.js';
import { MAX_COLLECTION_MS } from '../lambda/collection.js';
import { buildPolicy } from '../lambda/domain/policy.js';
import type { HostRun, PendingCollection } from '../lambda/ports.js';
import { createRegistryClient, type RegistryClient } from '../lambda/registry/client.js';
import type { CycleRequest } from '../lambda/request.js';
import { codedError, FixedClock, MemoryPending, ScriptedHost } from './fakes.js';
import { headManifest, type PushedImage, pushImage } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const NOW = new Date('2026-03-01T03:00:00.000Z');
const EARLIER = '2026-03-01T02:00:00.000Z';
const COMMAND = '0b5f2c1e-1111-2222-3333-444455556666';
const LATER_COMMAND = '1c6a3d2f-aaaa-bbbb-cccc-ddddeeeeffff';
const PARAMS = { container: 'registry' };
const WHICH = `the collection started ${EARLIER} (command ${COMMAND})`;

const collected: HostRun = {
  state: 'finished',
  exitCode: 0,
  summary: { action: 'collect', status: 'done', bytesFreed: 4096 },
};

/** A repository of three images; the policy keeps the two newest. */
async function pushHistory(reg: TestRegistry): Promise<PushedImage[]> {
  const images: PushedImage[] = [];
  for (const [n, tag] of ['v1', 'v2', 'v3'].entries()) {
    images.push(
      await pushImage(reg, 'app', tag, { layerSizes: [1000 + n], created: `2026-01-0${n + 1}T00:00:00Z` }),
    );
  }
  return images;
}

describe('the engine with a collection that outlives a run', () => {
  let reg: TestRegistry;
  let registry: RegistryClient;
  let images: PushedImage[];

  const record = (overrides: Partial<PendingCollection> = {}): PendingCollection => ({
    commandId: COMMAND,
    startedAt: EARLIER,
    requestId: 'req-earlier',
    registry: reg.url,
    keptTags: [
      { repository: 'app', tag: 'v2' },
      { repository: 'app', tag: 'v3' },
    ],
    ...overrides,
  });

  const request: CycleRequest = {
    kind: 'cycle',
    plan: { include: [], exclude: [], policy: buildPolicy(undefined, { keepLast: 2 }, 'policy') },
    host: PARAMS,
    requestId: 'req-now',
  };

  const ports = (host: ScriptedHost, pending: MemoryPending): EnginePorts => ({
    registry: async () => registry,
    host,
    resume: host,
    pending,
    clock: new FixedClock(NOW),
  });

  beforeEach(async () => {
    await reg?.stop();
    reg = await startRegistry();
    registry = createRegistryClient({ url: reg.url, concurrency: 4 });
    images = await pushHistory(reg);
  });

  afterAll(async () => {
    await registry?.close();
    await reg?.stop();
  });

  it('whose record cannot be read: deletes, starts no collection, and fails saying why', async () => {
    // Prepare
    const pending = new MemoryPending(record());
    pending.failRead = new Error('Access Denied');
    const host = new ScriptedHost({});

    // Act
    const report = await cleanup(ports(host, pending), request);

    // Assess
    expect(report.outcome).toBe('failed');
    expect(report.problems).toEqual([
      'the record of an unfinished collection could not be read: Error: Access Denied',
    ]);
    expect(report.notes).toContain(
      'garbage collection skipped: the record of an unfinished collection could not be read',
    );
    expect(report.run?.deletions.deleted.map((d) => d.digest)).toEqual([images[0]?.digest]);
    expect(await headManifest(reg, 'app', 'v1')).toBeUndefined();
    expect(await headManifest(reg, 'app', 'v3')).toBe(images[2]?.digest);
    expect(host.runs).toEqual([]);
    expect(pending.writes).toEqual([]);
  });

  it('that cannot be checked: keeps its record, starts no second collection, and fails', async () => {
    // Prepare
    const pending = new MemoryPending(record());
    const host = new ScriptedHost({
      resume: () => {
        throw new Error('Rate exceeded');
      },
    });

    // Act
    const report = await cleanup(ports(host, pending), request);

    // Assess
    expect(host.resumed).toEqual([COMMAND]);
    expect(report.outcome).toBe('failed');
    expect(report.problems).toEqual([`${WHICH} could not be checked: Error: Rate exceeded`]);
    expect(report.collection).toEqual({ commandId: COMMAND, startedAt: EARLIER, state: 'unknown' });
    expect(report.notes).toContain(`garbage collection skipped: ${WHICH} could not be checked`);
    expect(host.runs).toEqual([]);
    expect(pending.record).toEqual(record());
  });

  it('whose command SSM no longer knows: forgets it and collects again', async () => {
    // Prepare
    const pending = new MemoryPending(record());
    const host = new ScriptedHost({
      resume: (commandId) => {
        throw codedError('RJ_SSM_UNKNOWN_COMMAND', `SSM has no command ${commandId}`);
      },
      run: () => collected,
    });

    // Act
    const report = await cleanup(ports(host, pending), request);

    // Assess
    expect(report.outcome).toBe('failed');
    expect(report.problems).toEqual([`${WHICH} could not be checked: SSM has no command ${COMMAND}`]);
    expect(report.collection?.state).toBe('unknown');
    expect(pending.writes).toEqual([undefined]);
    expect(host.runs).toEqual([{ action: 'collect', params: PARAMS }]);
    expect(report.run?.garbageCollection).toMatchObject({ ran: true, state: 'finished' });
    expect(report.run?.verification.broken).toEqual([]);
  });

  it('that never reported an end: forgets it, says its images were not verified, and collects again', async () => {
    // Prepare
    const startedAt = new Date(NOW.getTime() - MAX_COLLECTION_MS - 60_000).toISOString();
    const pending = new MemoryPending(record({ startedAt }));
    const host = new ScriptedHost({
      resume: (commandId) => ({ state: 'running', commandId }),
      run: () => collected,
    });

    // Act
    const report = await cleanup(ports(host, pending), request);

    // Assess
    expect(report.outcome).toBe('failed');
    expect(report.problems).toEqual([
      `the collection started ${startedAt} (command ${COMMAND}) never reported an end; its kept images were not verified`,
    ]);
    expect(report.collection).toMatchObject({ commandId: COMMAND, state: 'unknown' });
    expect(pending.writes).toEqual([undefined]);
    expect(host.runs.map((r) => r.action)).toEqual(['collect']);
  });

  it('left running by this run: records the kept tags for its status-change event, and is pending', async () => {
    // Prepare
    const pending = new MemoryPending();
    const host = new ScriptedHost({ run: () => ({ state: 'running', commandId: LATER_COMMAND }) });

    // Act
    const report = await cleanup(ports(host, pending), request);

    // Assess
    expect(report.outcome).toBe('pending');
    expect(report.problems).toEqual([]);
    expect(report.pendingCommandId).toBe(LATER_COMMAND);
    expect(report.run?.verificationDeferred).toBe(true);
    expect(pending.record).toEqual({
      commandId: LATER_COMMAND,
      startedAt: NOW.toISOString(),
      requestId: 'req-now',
      registry: reg.url,
      keptTags: [
        { repository: 'app', tag: 'v2' },
        { repository: 'app', tag: 'v3' },
      ],
    });
  });

  it('left running by this run that cannot be recorded: fails, naming the command nobody will verify', async () => {
    // Prepare
    const pending = new MemoryPending();
    pending.failWrite = { on: 'record', error: new Error('SlowDown') };
    const host = new ScriptedHost({ run: () => ({ state: 'running', commandId: LATER_COMMAND }) });

    // Act
    const report = await cleanup(ports(host, pending), request);

    // Assess
    expect(report.outcome).toBe('failed');
    expect(report.problems).toEqual([
      `garbage collection is still running on the host (command ${LATER_COMMAND}) and could not be recorded for verification: Error: SlowDown`,
    ]);
    expect(report.pendingCommandId).toBe(LATER_COMMAND);
    expect(pending.record).toBeUndefined();
  });

  it('settled by its status-change event whose record cannot be removed: verified, and failed for the record', async () => {
    // Prepare
    const pending = new MemoryPending(record());
    pending.failWrite = { on: 'forget', error: new Error('InternalError') };
    const host = new ScriptedHost({ resume: () => collected });

    // Act
    const report = await cleanup(ports(host, pending), {
      kind: 'command-status',
      commandId: COMMAND,
      status: 'Success',
      action: 'collect',
      selection: { include: [], exclude: [] },
      host: PARAMS,
    });

    // Assess
    expect(report.outcome).toBe('failed');
    expect(report.problems).toEqual([
      `${WHICH} was settled but its record could not be removed: Error: InternalError`,
    ]);
    expect(report.collection).toMatchObject({
      commandId: COMMAND,
      state: 'finished',
      measuredBytes: 4096,
      verification: { tags: 2, broken: [], unverified: [] },
    });
    expect(pending.record).toEqual(record());
    expect(host.runs).toEqual([]);
  });
});
