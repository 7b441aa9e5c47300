import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Plan } from '../lambda/domain/plan.js';
import { parsePlan, runCli } from './cli-runner.js';
import { type DockerStandIn, installDockerStandIn } from './support/docker-stand-in.js';
import { headManifest, type PushedImage, pushImage, pushIndex } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { skopeoPull } from './support/skopeo.js';
import { setRevisionPushTime, setTagPushTime } from './support/storage.js';

const DAY = 86_400_000;
const builtDaysAgo = (days: number) => new Date(Date.now() - days * DAY).toISOString();

describe('keep-last among images a CI job pushed in the same second', () => {
  let reg: TestRegistry;
  let docker: DockerStandIn;
  let configs: { tied: string[]; untied: string[] };

  /**
   * web/app: v1, v2, v3 and a two-platform index `multi`, all pushed in one whole second two days ago, built
   * 20, 10, 30 and 15 (its newest child) days ago. web/solo: two images pushed a day apart.
   */
  beforeEach(async () => {
    reg = await startRegistry();
    docker = await installDockerStandIn(reg);
    const second = new Date(Math.floor((Date.now() - 2 * DAY) / 1000) * 1000);
    const tied: PushedImage[] = [];
    for (const [tag, days] of [
      ['v1', 20],
      ['v2', 10],
      ['v3', 30],
    ] as const) {
      const image = await pushImage(reg, 'web/app', tag, { created: builtDaysAgo(days) });
      await setRevisionPushTime(reg, 'web/app', image.digest, second);
      await setTagPushTime(reg, 'web/app', tag, second);
      tied.push(image);
    }
    const children = [
      await pushImage(reg, 'web/app', undefined, { created: builtDaysAgo(15) }),
      await pushImage(reg, 'web/app', undefined, {
        created: builtDaysAgo(25),
        platform: { os: 'linux', architecture: 'arm64' },
      }),
    ];
    const multi = await pushIndex(reg, 'web/app', 'multi', children);
    for (const manifest of [multi, ...children])
      await setRevisionPushTime(reg, 'web/app', manifest.digest, second);
    await setTagPushTime(reg, 'web/app', 'multi', second);

    const untied: PushedImage[] = [];
    for (const [tag, days] of [
      ['old', 3],
      ['new', 2],
    ] as const) {
      const image = await pushImage(reg, 'web/solo', tag, { created: builtDaysAgo(days) });
      const when = new Date(Date.now() - days * DAY);
      await setRevisionPushTime(reg, 'web/solo', image.digest, when);
      await setTagPushTime(reg, 'web/solo', tag, when);
      untied.push(image);
    }
    configs = {
      tied: [...tied, ...children].map((image) => image.config.digest).sort(),
      untied: untied.map((image) => image.config.digest),
    };
  });

  afterEach(async () => {
    await docker?.close();
    await reg?.stop();
  });

  const decisions = (plan: Plan) =>
    plan.repositories.find((r) => r.name === 'web/app')?.tags.map((t) => [t.tag, t.decision, t.reason]);
  const newestBuildsKept = [
    ['multi', 'keep', 'among 2 most recent (#2; pushed in the same second as v1, newer by build time)'],
    [
      'v1',
      'delete',
      'stale: pushed 2d ago, not among 2 most recent (pushed in the same second as multi, older by build time)',
    ],
    ['v2', 'keep', 'among 2 most recent (#1; pushed in the same second as v1, newer by build time)'],
    [
      'v3',
      'delete',
      'stale: pushed 2d ago, not among 2 most recent (pushed in the same second as multi, older by build time)',
    ],
  ];

  it('--keep-last 2 keeps the two newest builds, reading the storage root', async () => {
    const plan = parsePlan(
      await runCli(['plan', '--registry', reg.url, '--storage-root', reg.root, '--keep-last', '2', '--json']),
    );

    expect(decisions(plan)).toEqual(newestBuildsKept);
  });

  it('--keep-last 2 keeps the two newest builds, reading the storage through the host script', async () => {
    const plan = parsePlan(
      await runCli(['plan', '--registry', reg.url, '--storage-from-host', '--keep-last', '2', '--json'], {
        env: docker.env,
      }),
    );

    expect(decisions(plan)).toEqual(newestBuildsKept);
  });

  it('reads the configs of the tied images from storage with --storage-root: no manifest or blob request', async () => {
    const result = await runCli(
      ['plan', '--registry', reg.url, '--storage-root', reg.root, '--keep-last', '2', '--json', '--verbose'],
      {},
    );

    expect(decisions(parsePlan(result))).toEqual(newestBuildsKept);
    expect(result.stderr).toMatch(/^http: GET \S+\/v2\/_catalog/m);
    expect(result.stderr).not.toMatch(/^http: GET \S+\/v2\/\S+\/(manifests|blobs)\//m);
  });

  it('reads the configs of the tied images from the host inventory too: no manifest or blob request', async () => {
    const result = await runCli(
      ['plan', '--registry', reg.url, '--storage-from-host', '--keep-last', '2', '--json', '--verbose'],
      { env: docker.env },
    );

    expect(decisions(parsePlan(result))).toEqual(newestBuildsKept);
    expect(configs.tied.length).toBeGreaterThan(1);
    expect(result.stderr).toMatch(/^http: GET \S+\/v2\/_catalog/m);
    expect(result.stderr).not.toMatch(/^http: GET \S+\/v2\/\S+\/(manifests|blobs)\//m);
  });

  it('clean deletes the older builds, and the newer ones still pull', async () => {
    const result = await runCli(
      ['clean', '--registry', reg.url, '--storage-from-host', '--keep-last', '2', '--yes', '--json'],
      { env: docker.env },
    );

    expect(result.code).toBe(0);
    expect(await headManifest(reg, 'web/app', 'v1')).toBeUndefined();
    expect(await headManifest(reg, 'web/app', 'v3')).toBeUndefined();
    expect(await skopeoPull(reg, 'web/app', 'v2')).toEqual({ ok: true });
    expect(await skopeoPull(reg, 'web/app', 'multi')).toEqual({ ok: true });
  });
});
