import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StorageLister } from '../../lambda/ports.js';
import { createRegistryClient } from '../../lambda/registry/client.js';
import { scan } from '../../lambda/scan.js';
import { FilesystemStorage } from '../../lambda/storage/filesystem.js';
import { runCli } from '../cli-runner.js';
import { type DockerStandIn, installDockerStandIn } from '../support/docker-stand-in.js';
import { headManifest, type PushedImage, pushImage } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const short = (digest: string) => digest.slice(7, 19);

/** The lines that give examples of a disagreement. */
const exampleLines = (stderr: string) => stderr.split('\n').filter((line) => /^ {4}\S/.test(line));

describe("another registry's storage", () => {
  let here: TestRegistry;
  let other: TestRegistry;
  let docker: DockerStandIn | undefined;
  let hereApp: PushedImage;
  let otherApp: PushedImage;

  beforeAll(async () => {
    here = await startRegistry();
    other = await startRegistry();
    hereApp = await pushImage(here, 'app', 'v1', {});
    await pushImage(here, 'app', 'v2', {});
    await pushImage(here, 'web', 'latest', {});
    otherApp = await pushImage(other, 'app', 'v1', {});
    await pushImage(other, 'tools/ci', 'latest', {});
  });

  afterEach(async () => {
    await docker?.close();
    docker = undefined;
  });

  afterAll(async () => {
    await here?.stop();
    await other?.stop();
  });

  it('is refused as --storage-root, with examples of the disagreement, and nothing is deleted', async () => {
    const result = await runCli([
      'clean',
      '--registry',
      here.url,
      '--storage-root',
      other.root,
      '--keep-last',
      '1',
      '--yes',
    ]);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(`^error: --storage-root ${other.root} does not match ${here.url}:\n`),
    );
    expect(result.stderr).toContain('the storage belongs to another registry or is a stale copy');
    const examples = exampleLines(result.stderr);
    expect(examples.length).toBeGreaterThanOrEqual(1);
    expect(examples.length).toBeLessThanOrEqual(3);
    expect(examples).toContain(
      `    app:v1 is ${short(otherApp.digest)} in storage, ${short(hereApp.digest)} in the registry`,
    );
    expect(examples).toContain('    repository web is in the registry, not in storage');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).toBe('');
    expect(await headManifest(here, 'app', 'v1')).toBe(hereApp.digest);
  });

  it('is refused when the registry container on this host is another registry', async () => {
    docker = await installDockerStandIn(other);

    const result = await runCli(['plan', '--registry', here.url, '--storage-from-host', '--keep-last', '1'], {
      env: docker.env,
    });

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(`^error: --storage-from-host \\(container registry\\) does not match ${here.url}:\n`),
    );
    expect(exampleLines(result.stderr)).toContain(
      `    app:v1 is ${short(otherApp.digest)} in storage, ${short(hereApp.digest)} in the registry`,
    );
    expect(result.stderr).toContain(
      '  Check that container registry runs this registry, with its storage in\n  /var/lib/registry.\n',
    );
  });
});

describe('a stale copy of the storage', () => {
  let reg: TestRegistry;
  let copy: string;

  beforeAll(async () => {
    reg = await startRegistry();
    copy = await mkdtemp(join(tmpdir(), 'registry-copy-'));
  });

  afterAll(async () => {
    await reg?.stop();
    await rm(copy, { recursive: true, force: true });
  });

  it('is refused once the registry has moved on', async () => {
    // Prepare: a copy of the storage, then pushes the copy does not have
    const before = await pushImage(reg, 'app', 'latest', {});
    await pushImage(reg, 'app', 'v1', {});
    await cp(reg.root, copy, { recursive: true });
    const after = await pushImage(reg, 'app', 'latest', {});
    await pushImage(reg, 'app', 'v2', {});

    // Act
    const result = await runCli(['plan', '--registry', reg.url, '--storage-root', copy, '--keep-last', '1']);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('the storage belongs to another registry or is a stale copy');
    expect(exampleLines(result.stderr)).toEqual([
      `    app:latest is ${short(before.digest)} in storage, ${short(after.digest)} in the registry`,
      '    app:v2 is in the registry, not in storage',
    ]);
  });
});

describe('pushes between the storage read and the API read', () => {
  let reg: TestRegistry;

  beforeAll(async () => {
    reg = await startRegistry();
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('are read again, not taken for another registry', async () => {
    // Prepare: right after storage is first read, a tag moves and a repository appears
    await pushImage(reg, 'app', 'latest', {});
    const filesystem = new FilesystemStorage(reg.root);
    let reads = 0;
    let moved: PushedImage | undefined;
    const storage: StorageLister = {
      list: async () => {
        const listed = await filesystem.list();
        reads += 1;
        if (reads === 1) {
          moved = await pushImage(reg, 'app', 'latest', {});
          await pushImage(reg, 'new/repo', 'v1', {});
        }
        return listed;
      },
    };
    const registry = createRegistryClient({ url: reg.url, concurrency: 4 });

    // Act
    const { inventory } = await scan({
      registry,
      storage,
      clock: { now: () => new Date() },
    }).finally(() => registry.close());

    // Assess
    expect(reads).toBe(2);
    const app = inventory.repositories.find((r) => r.name === 'app');
    expect(app?.tags).toEqual([{ name: 'latest', digest: moved?.digest, pushedAt: expect.any(String) }]);
    expect(inventory.repositories.map((r) => r.name).sort()).toEqual(['app', 'new/repo']);
    expect(inventory.repositories.every((r) => r.error === undefined)).toBe(true);
  });
});
