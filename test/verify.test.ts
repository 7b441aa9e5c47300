import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './cli-runner.js';
import { pushImage, pushIndex } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { blobDataPath } from './support/storage.js';

/** `multi:1.0`, an index of two single-layer platform images. */
async function pushMultiArch(reg: TestRegistry) {
  const amd = await pushImage(reg, 'multi', undefined, { platform: { os: 'linux', architecture: 'amd64' } });
  const arm = await pushImage(reg, 'multi', undefined, { platform: { os: 'linux', architecture: 'arm64' } });
  await pushIndex(reg, 'multi', '1.0', [amd, arm]);
  return { amd, arm };
}

describe('verify', () => {
  let reg: TestRegistry;
  afterEach(async () => {
    await reg?.stop();
  });

  it('passes when every tag resolves completely, children and layers included', async () => {
    reg = await startRegistry();
    await pushMultiArch(reg);
    await pushImage(reg, 'single', 'latest', { layerSizes: [2000, 3000] });

    const result = await runCli(['verify', '--registry', reg.url]);

    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe('All 2 tags resolve completely (4 manifests, 7 blobs checked).');
  });

  it('names every broken tag, and the blob that is missing, and fails', async () => {
    // Prepare: a child's layer disappears from disk; the registry restarts so its cache forgets it
    reg = await startRegistry();
    const { arm } = await pushMultiArch(reg);
    await pushImage(reg, 'fine', 'latest', {});
    const lost = arm.layers[0]?.digest ?? '';
    await rm(blobDataPath(reg, lost));
    await reg.restart();

    // Act
    const result = await runCli(['verify', '--registry', reg.url, '--json']);

    // Assess
    expect(result.code).toBe(1);
    const verification = JSON.parse(result.stdout) as {
      tags: number;
      broken: { repository: string; tag: string; problem: string }[];
    };
    expect(verification.tags).toBe(2);
    expect(verification.broken).toEqual([
      {
        repository: 'multi',
        tag: '1.0',
        problem: `blob ${lost} is missing (in child ${arm.digest} linux/arm64)`,
      },
    ]);
  });
});
