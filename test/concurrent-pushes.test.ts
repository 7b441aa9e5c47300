import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunReport } from '../lambda/cleanup.js';
import { runCli } from './cli-runner.js';
import { type DockerStandIn, installDockerStandIn } from './support/docker-stand-in.js';
import { pushImage, randomGzipBlob } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { skopeoPull } from './support/skopeo.js';
import { backdate } from './support/storage.js';

describe.each(['online', 'stopped'] as const)('pushes while clean --gc local collects (%s mode)', (mode) => {
  let reg: TestRegistry;
  let docker: DockerStandIn;
  let scratch: string;
  afterEach(async () => {
    await docker?.close();
    await reg?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('leaves every image whose push succeeded pulling completely, or names it broken and exits 1', async () => {
    // Prepare: stale images whose layers the pushes during the collection use again
    const staleLayers = [randomGzipBlob(6000), randomGzipBlob(7000), randomGzipBlob(8000)];
    const pushed: { repository: string; tag: string }[] = [];
    let failedPushes = 0;
    let cleaning: Promise<unknown> | undefined;
    let pushing: Promise<void> | undefined;
    const pushUntilDone = async (): Promise<void> => {
      let done = false;
      void cleaning?.finally(() => {
        done = true;
      });
      for (let n = 0; !done; n += 1) {
        // New tags, and re-pushes of an existing tag, each with a layer of an image being deleted
        const tag = n % 2 === 0 ? `during-${n}` : 'latest';
        const layer = staleLayers[n % staleLayers.length] ?? randomGzipBlob(100);
        try {
          await pushImage(reg, 'app', tag, { layers: [layer, randomGzipBlob(500)] });
          pushed.push({ repository: 'app', tag });
        } catch {
          failedPushes += 1;
        }
      }
    };
    reg = await startRegistry();
    docker = await installDockerStandIn(reg, {
      beforeGarbageCollect: async () => {
        pushing = pushUntilDone();
      },
    });
    scratch = await mkdtemp(join(tmpdir(), 'janitor-pushes-'));
    for (const [n, layer] of staleLayers.entries()) {
      const image = await pushImage(reg, 'app', `old-${n}`, { layers: [layer] });
      await backdate(reg, 'app', image.digest, 10 + n, `old-${n}`);
    }
    await pushImage(reg, 'app', 'latest', {});

    // Act
    cleaning = runCli(
      [
        'clean',
        '--registry',
        reg.url,
        '--storage-root',
        reg.root,
        '--keep-last',
        '1',
        '--gc',
        'local',
        '--gc-mode',
        mode,
        '--lock-file',
        join(scratch, 'lock'),
        '--log-dir',
        join(scratch, 'logs'),
        '--upload-wait',
        '0',
        '--yes',
        '--json',
      ],
      { env: docker.env },
    );
    const result = (await cleaning) as { code: number; stdout: string };
    await pushing;

    // Assess: the pushes ran during the collection, and what does not pull is exactly what the run named
    const { report } = JSON.parse(result.stdout) as { report: RunReport };
    expect(report.garbageCollection).toMatchObject({ ran: true, summary: { status: 'done' } });
    expect(pushed.length + failedPushes).toBeGreaterThan(0);
    const tags = [...new Set(pushed.map((p) => p.tag))];
    const pulls = await Promise.all(
      tags.map(async (tag) => [tag, (await skopeoPull(reg, 'app', tag)).ok] as const),
    );
    const broken = pulls.filter(([, ok]) => !ok).map(([tag]) => tag);
    const named = report.verification.broken.map((b) => b.tag);
    expect(named.sort()).toEqual(broken.sort());
    expect(result.code).toBe(broken.length > 0 ? 1 : 0);
    if (mode === 'stopped') expect(broken).toEqual([]);
  });
});
