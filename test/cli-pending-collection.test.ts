import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunReport } from '../lambda/cleanup.js';
import { LocalRunner } from '../lambda/host/local-runner.js';
import { PendingCollectionFile, pendingFileName } from '../lambda/host/pending-file.js';
import type { PendingCollection } from '../lambda/ports.js';
import { formatBytes } from '../lambda/report/format.js';
import { runCli } from './cli-runner.js';
import {
  type DockerStandIn,
  type DockerStandInOptions,
  installDockerStandIn,
} from './support/docker-stand-in.js';
import { deleteManifest, headManifest, pushImage } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { blobSizes, freedBytes } from './support/storage.js';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe('gc --gc local: a collection left running is recorded, and the next run settles it', () => {
  let reg: TestRegistry;
  let docker: DockerStandIn;
  let scratch: string;
  afterEach(async () => {
    await docker?.close();
    await reg?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  async function setUp(options: DockerStandInOptions = {}) {
    reg = await startRegistry();
    docker = await installDockerStandIn(reg, options);
    scratch = await mkdtemp(join(tmpdir(), 'janitor-pending-'));
  }
  const stateDir = () => join(scratch, 'state');
  const recordPath = () => join(stateDir(), pendingFileName(reg.url));
  const gc = (args: string[] = [], env: NodeJS.ProcessEnv = {}) =>
    runCli(
      [
        'gc',
        '--registry',
        reg.url,
        '--lock-file',
        join(scratch, 'lock'),
        '--log-dir',
        join(scratch, 'logs'),
        '--upload-wait',
        '0',
        ...(env.XDG_STATE_HOME === undefined ? ['--state-dir', stateDir()] : []),
        ...args,
      ],
      { env: { ...docker.env, COLUMNS: '300', ...env } },
    );

  it('records a collection still running at --timeout, then reports, verifies and forgets it before collecting again', async () => {
    // Prepare: three kept tags, and a deleted image whose blobs only a collection frees
    await setUp({ holdGarbageCollect: 'once' });
    for (const tag of ['v1', 'v2', 'v3']) await pushImage(reg, 'app', tag, { layerSizes: [2048] });
    const gone = await pushImage(reg, 'app', undefined, { layerSizes: [8192] });
    expect(await deleteManifest(reg, 'app', gone.digest)).toBe(202);
    const before = await blobSizes(reg);

    // Act: the collection is held past the deadline
    const first = await gc(['--timeout', '10s', '--json']);
    await docker.garbageCollectHeld();
    const leftRunning = JSON.parse(first.stdout) as {
      report: RunReport;
      pendingCollection: { commandId: string; record: string };
    };
    const record = JSON.parse(await readFile(recordPath(), 'utf8')) as PendingCollection;
    const servedWhileHeld = await headManifest(reg, 'app', 'v1');
    docker.releaseGarbageCollect();
    // Waits, as a person would, for the collection to end.
    await new LocalRunner({ env: docker.env, collectionsDir: join(stateDir(), 'collections') }).resume(
      record.commandId,
    );
    const second = await gc();

    // Assess
    expect(first.code).toBe(0);
    expect(leftRunning.report.garbageCollection).toMatchObject({
      ran: true,
      state: 'running',
      commandId: record.commandId,
    });
    expect(leftRunning.report.verificationDeferred).toBe(true);
    expect(leftRunning.pendingCollection).toEqual({ commandId: record.commandId, record: recordPath() });
    expect(record.registry).toBe(reg.url);
    expect(record.keptTags.map((t) => `${t.repository}:${t.tag}`).sort()).toEqual([
      'app:v1',
      'app:v2',
      'app:v3',
    ]);
    expect(servedWhileHeld).toBeDefined();

    const freed = freedBytes(before, await blobSizes(reg));
    expect(freed).toBeGreaterThan(8192);
    expect(second.stderr).not.toMatch(/error:/);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(
      `Earlier collection: the collection started ${record.startedAt} (command ${record.commandId}) finished: done, freed ${formatBytes(freed)} (${freed} bytes); 3 kept tags verified\n`,
    );
    expect(second.stdout).toMatch(/^Garbage collection: done, mode online/m);
    expect(second.stdout).toMatch(/^Verified: all 3 kept tags resolve completely/m);
    expect(await exists(recordPath())).toBe(false);
    const collections = (await docker.calls()).filter((argv) => argv.includes('garbage-collect'));
    expect(collections).toHaveLength(2);
  });

  it('stops at a record it cannot read, naming the file and the fix, and keeps it', async () => {
    await setUp();
    await pushImage(reg, 'app', 'v1');
    await gc();
    await writeFile(recordPath(), '{"commandId": "not a command"');

    const result = await gc();

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `error: the record of an unfinished collection could not be read: ${recordPath()} is not a pending-collection record (not JSON): delete it, and verify the registry with registry-janitor verify\n`,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).toMatch(
      /^Garbage collection: not run \(the record of an unfinished collection could not be read\)$/m,
    );
    expect(await readFile(recordPath(), 'utf8')).toBe('{"commandId": "not a command"');
    const collections = (await docker.calls()).filter((argv) => argv.includes('garbage-collect'));
    expect(collections).toHaveLength(1);
  });

  it('leaves the record of another registry alone, in the state folder under $XDG_STATE_HOME', async () => {
    await setUp();
    await pushImage(reg, 'app', 'v1');
    const xdg = join(scratch, 'xdg');
    const state = join(xdg, 'registry-janitor');
    const other = new PendingCollectionFile(state, 'https://other.example.com:5000');
    const otherRecord: PendingCollection = {
      commandId: '0b5f2c1e-1111-4222-8333-444455556666',
      startedAt: '2026-11-26T18:26:05.000Z',
      requestId: 'unnamed',
      registry: 'https://other.example.com:5000',
      keptTags: [{ repository: 'web', tag: 'latest' }],
    };
    await other.write(otherRecord);

    const result = await gc([], { XDG_STATE_HOME: xdg });

    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('Earlier collection');
    expect(result.stdout).toMatch(/^Garbage collection: done/m);
    expect(await other.read()).toEqual(otherRecord);
    // This run's collection went through the same folder.
    const collected = await readdir(join(state, 'collections'));
    expect(collected.filter((name) => name.endsWith('.status'))).toHaveLength(1);
  });
});
