import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunReport } from '../lambda/cleanup.js';
import { runCli } from './cli-runner.js';
import { headManifest, pushImage, pushIndex } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { blobHead, type StallingProxy, startStallingProxy } from './support/stalling-proxy.js';
import { blobDataPath, pushStaleAndCurrent } from './support/storage.js';

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

describe('verification the deadline cuts short', () => {
  let reg: TestRegistry;
  let proxy: StallingProxy;
  afterEach(async () => {
    await proxy?.close();
    await reg?.stop();
  });

  it('clean: a kept tag still being checked at the deadline is not verified, not broken, and fails the run', async () => {
    // Prepare: the registry never answers for one kept image's layer, so its check is still waiting at the deadline
    reg = await startRegistry();
    await pushStaleAndCurrent(reg, 'app');
    const held = await pushImage(reg, 'app', 'held', { layerSizes: [2048] });
    proxy = await startStallingProxy(reg, blobHead(held.layers[0]?.digest ?? ''));
    const clean = (output: string[]) =>
      runCli(
        [
          'clean',
          '--registry',
          proxy.url,
          '--storage-root',
          reg.root,
          '--keep-last',
          '2',
          '--timeout',
          '3s',
          '--yes',
          ...output,
        ],
        // Wide enough that no line of the report wraps.
        { env: { COLUMNS: '250' } },
      );

    // Act
    const json = await clean(['--json']);
    const text = await clean([]);

    // Assess
    expect(json.code).toBe(1);
    const { report } = JSON.parse(json.stdout) as { report: RunReport };
    expect(report.outcome).toBe('failed');
    expect(report.problems).toEqual([
      'verification incomplete: 1 of 2 kept tags not verified before the deadline',
    ]);
    expect(report.verification).toMatchObject({
      tags: 2,
      broken: [],
      unverified: [{ repository: 'app', tag: 'held' }],
    });
    expect(json.stderr).toBe(
      'error: verification incomplete: 1 of 2 kept tags not verified before the deadline\n',
    );
    expect(await headManifest(reg, 'app', 'old')).toBeUndefined();
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(
      /^FAILED: verification incomplete: 1 of 2 kept tags not verified before the deadline$/m,
    );
    expect(text.stdout).toMatch(/^Verification: 1 of 2 kept tags not verified \(deadline passed\)$/m);
    expect(text.stdout).toMatch(/^ {2}not verified \(deadline passed\): app:held$/m);
    expect(text.stdout).not.toMatch(/^Done/m);
    for (const output of [json.stdout, json.stderr]) expect(output).not.toContain('BROKEN');
    for (const output of [text.stdout, text.stderr]) expect(output).not.toMatch(/broken/i);
  });

  it('verify: tells the tag found broken apart from the one the deadline left unchecked', async () => {
    // Prepare: one image lost a layer on disk, another's layer never answers
    reg = await startRegistry();
    await pushImage(reg, 'fine', 'latest', {});
    const lost = await pushImage(reg, 'lost', 'latest', {});
    const held = await pushImage(reg, 'held', 'latest', {});
    await rm(blobDataPath(reg, lost.layers[0]?.digest ?? ''));
    await reg.restart();
    proxy = await startStallingProxy(reg, blobHead(held.layers[0]?.digest ?? ''));

    // Act
    const result = await runCli(['verify', '--registry', proxy.url, '--timeout', '3s'], {
      env: { COLUMNS: '250' },
    });

    // Assess
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      [
        `BROKEN lost:latest: blob ${lost.layers[0]?.digest} is missing`,
        'not verified (deadline passed): held:latest',
        '1 of 3 tags broken.',
        '1 of 3 tags not verified (deadline passed).',
        '',
      ].join('\n'),
    );
  });
});
