import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilesystemStorage } from '../../lambda/storage/filesystem.js';
import { deleteManifest, type PushedImage, pushImage } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { setRevisionPushTime } from '../support/storage.js';

describe('FilesystemStorage', () => {
  let reg: TestRegistry;
  let parent: PushedImage;
  let nestedOld: PushedImage;
  let nestedNew: PushedImage;
  let deleted: PushedImage;
  const pushedAt = new Date('2026-01-02T03:04:05Z');

  beforeAll(async () => {
    reg = await startRegistry();
    parent = await pushImage(reg, 'team', 'v1', {});
    nestedOld = await pushImage(reg, 'team/app', 'latest', {});
    nestedNew = await pushImage(reg, 'team/app', 'latest', {});
    deleted = await pushImage(reg, 'team/app', undefined, {});
    await deleteManifest(reg, 'team/app', deleted.digest);
    await setRevisionPushTime(reg, 'team/app', nestedOld.digest, pushedAt);
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('lists every revision, tagged or not, with its push time, in nested repositories', async () => {
    const listed = await new FilesystemStorage(reg.root).list();

    expect([...listed.keys()].sort()).toEqual(['team', 'team/app']);
    const app = listed.get('team/app');
    expect(app?.revisions.map((r) => r.digest).sort()).toEqual([nestedOld.digest, nestedNew.digest].sort());
    expect(app?.revisions.find((r) => r.digest === nestedOld.digest)?.pushedAt).toBe(pushedAt.toISOString());
    expect(app?.tags.map((t) => [t.name, t.digest])).toEqual([['latest', nestedNew.digest]]);
    expect(listed.get('team')?.tags.map((t) => t.digest)).toEqual([parent.digest]);
  });

  it('says which folder to give when the root holds no registry data', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'not-a-registry-'));

    const refused = new FilesystemStorage(empty).list();

    await expect(refused).rejects.toThrow(
      new RegExp(`^--storage-root ${empty} holds no registry data\n  \\(no docker/registry/v2 below it\\)`),
    );
    await expect(refused).rejects.toThrow(
      `docker inspect --format '{{range .Mounts}}{{if eq .Destination "/var/lib/registry"}}{{.Source}}{{end}}{{end}}' registry`,
    );
    await expect(refused).rejects.toThrow('--storage-from-host');
  });
});
