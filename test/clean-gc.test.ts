import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunReport } from '../lambda/cleanup.js';
import type { Plan } from '../lambda/domain/plan.js';
import { formatBytes } from '../lambda/report/format.js';
import { parsePlan, runCli } from './cli-runner.js';
import {
  DAEMON_DOWN,
  type DockerStandIn,
  type DockerStandInOptions,
  installDockerStandIn,
  V3_VERSION_LINE,
} from './support/docker-stand-in.js';
import { headManifest, pushImage, randomGzipBlob } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { skopeoPull, skopeoPushMultiArch } from './support/skopeo.js';
import { createSsmFake, type SsmFake } from './support/ssm-fake.js';
import { backdate, blobDataPath, blobSizes, freedBytes, pushStaleAndCurrent } from './support/storage.js';

describe('clean --gc local: delete, collect on the host, verify, report', () => {
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
    scratch = await mkdtemp(join(tmpdir(), 'janitor-host-'));
  }
  const hostArgs = () => [
    '--gc',
    'local',
    '--lock-file',
    join(scratch, 'lock'),
    '--log-dir',
    join(scratch, 'logs'),
    '--upload-wait',
    '0',
  ];
  const clean = (args: string[], output: 'json' | 'text' = 'json') =>
    runCli(
      [
        'clean',
        '--registry',
        reg.url,
        ...args,
        ...hostArgs(),
        '--yes',
        ...(output === 'json' ? ['--json'] : []),
      ],
      // Wide enough for the longest line, the collection's with its log path.
      { env: { ...docker.env, COLUMNS: '250' } },
    );

  it('reclaims exactly the estimated bytes, keeps a multi-arch image whole, and says so', async () => {
    // Prepare: a multi-arch image that stays, an older one that goes, a re-pushed tag
    await setUp();
    const old = await skopeoPushMultiArch(reg, 'base', '1.0', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    for (const digest of [old.digest, ...old.children]) await backdate(reg, 'base', digest, 30);
    await skopeoPushMultiArch(reg, 'base', '2.0', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    for (let n = 0; n < 3; n += 1) {
      const image = await pushImage(reg, 'app', 'latest', { layerSizes: [4096] });
      await backdate(reg, 'app', image.digest, 5 - n, 'latest');
    }
    const before = await blobSizes(reg);
    const policy = ['--storage-root', reg.root, '--keep-last', '1', '--untagged-grace', '1h'];

    // Act
    const result = await clean(policy);

    // Assess
    expect(result.code).toBe(0);
    const { plan, report } = JSON.parse(result.stdout) as { plan: Plan; report: RunReport };
    const measuredOnDisk = freedBytes(before, await blobSizes(reg));
    expect(report.outcome).toBe('succeeded');
    expect(report.problems).toEqual([]);
    expect(report.garbageCollection).toMatchObject({
      ran: true,
      state: 'finished',
      summary: { status: 'done', restarted: true },
    });
    expect(report.reclaimed.measuredBytes).toBe(measuredOnDisk);
    expect(measuredOnDisk).toBe(plan.reclaim.bytes);
    expect(plan.reclaim.exact).toBe(true);
    expect(report.verification).toMatchObject({ tags: 2, broken: [] });
    expect(await skopeoPull(reg, 'base', '2.0')).toEqual({ ok: true });
    expect(await skopeoPull(reg, 'app', 'latest')).toEqual({ ok: true });
    expect(await headManifest(reg, 'base', '1.0')).toBeUndefined();
    const calls = (await docker.calls()).map((argv) => argv.join(' '));
    expect(calls.some((call) => call.includes('garbage-collect'))).toBe(true);
    expect(calls.filter((call) => /--delete-untagged|(^| )-m( |$)/.test(call))).toEqual([]);
    expect(calls).toContain('restart registry');
  });

  it('prints the report for a person: deletions, collection, bytes measured next to the estimate, verification', async () => {
    await setUp();
    await pushStaleAndCurrent(reg, 'app', { staleLayerSizes: [8192] });

    const result = await clean(['--storage-root', reg.root, '--keep-last', '1'], 'text');

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Deleted 1 manifest, skipped 0, failed 0$/m);
    expect(result.stdout).toMatch(
      /^Garbage collection: done, mode online, registry 2\.8\.2, 3 blobs deleted, registry restarted, log .*gc-.*\.log$/m,
    );
    expect(result.stdout).toMatch(
      /^Reclaimed: \d+(\.\d+)? KiB \((\d+) bytes\) measured on the host; plan estimate \d+(\.\d+)? KiB \(\2 bytes\)$/m,
    );
    expect(result.stdout).toMatch(/^Verified: all 1 kept tag resolve completely \(1 manifest, 2 blobs\)$/m);
  });

  it('gc collects what an earlier clean left behind, and verifies every tag', async () => {
    // Prepare: a clean that deleted without collecting
    await setUp();
    await pushStaleAndCurrent(reg, 'app', { staleLayerSizes: [8192] });
    const deleted = await runCli([
      'clean',
      '--registry',
      reg.url,
      '--storage-root',
      reg.root,
      '--keep-last',
      '1',
      '--yes',
    ]);
    expect(deleted.stdout).toMatch(/^Garbage collection: not run \(not requested\)$/m);
    const before = await blobSizes(reg);

    // Act
    const result = await runCli(['gc', '--registry', reg.url, ...hostArgs(), '--json'], { env: docker.env });
    const text = await runCli(['gc', '--registry', reg.url, ...hostArgs()], {
      env: { ...docker.env, COLUMNS: '250' },
    });

    // Assess
    expect(result.code).toBe(0);
    const { report } = JSON.parse(result.stdout) as { report: RunReport };
    const freed = freedBytes(before, await blobSizes(reg));
    expect(freed).toBeGreaterThan(8192);
    expect(report.reclaimed.measuredBytes).toBe(freed);
    expect(report.deletions.deleted).toEqual([]);
    expect(report.verification).toMatchObject({ tags: 1, broken: [] });
    expect(text.code).toBe(0);
    expect(text.stdout).not.toMatch(/^Deleted /m);
    expect(text.stdout).toMatch(/^Garbage collection: done, mode online, registry 2\.8\.2, 0 blobs deleted/m);
    expect(text.stdout).toMatch(/^Reclaimed: 0 B \(0 bytes\) measured on the host$/m);
    expect(text.stdout).toMatch(/^Verified: all 1 kept tag resolve completely/m);
    expect(await skopeoPull(reg, 'app', 'new')).toEqual({ ok: true });
  });

  it('clean --gc collects when nothing is left to delete but the storage shows unreferenced blobs', async () => {
    await setUp();
    await pushStaleAndCurrent(reg, 'app', { staleLayerSizes: [8192] });
    await runCli(['clean', '--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1', '--yes']);
    const before = await blobSizes(reg);

    const result = await clean(['--storage-root', reg.root, '--keep-last', '1']);

    expect(result.code).toBe(0);
    const { plan, report } = JSON.parse(result.stdout) as { plan: Plan; report: RunReport };
    expect(plan.totals.manifestsDeleted).toBe(0);
    expect(report.garbageCollection).toMatchObject({ ran: true, summary: { status: 'done' } });
    expect(report.reclaimed.unreferencedBytes).toBe(freedBytes(before, await blobSizes(reg)));
    expect(report.reclaimed.measuredBytes).toBe(report.reclaimed.unreferencedBytes);
  });

  it('leaves a re-pushed image complete after collecting its layers (the registry is restarted)', async () => {
    // Prepare: image X is pushed, goes stale, is cleaned and its layers collected
    await setUp();
    const layer = randomGzipBlob(6000);
    const created = '2026-01-01T00:00:00Z';
    const x = await pushImage(reg, 'app', 'x', { layers: [layer], created });
    await backdate(reg, 'app', x.digest, 10, 'x');
    await pushImage(reg, 'app', 'current', {});
    const cleaned = await clean(['--storage-root', reg.root, '--keep-last', '1']);
    expect(cleaned.code).toBe(0);
    expect(await headManifest(reg, 'app', 'x')).toBeUndefined();

    // Act: the same image is pushed again; a client skips layers the registry claims to have
    const again = await pushImage(reg, 'app', 'x', { layers: [layer], created });

    // Assess
    expect(again.digest).toBe(x.digest);
    expect(await skopeoPull(reg, 'app', 'x')).toEqual({ ok: true });
  });

  it('fails, and says so first, when a kept image is broken', async () => {
    // Prepare: a kept image lost a layer on disk (corruption the cleanup must not hide)
    await setUp();
    const { current: kept } = await pushStaleAndCurrent(reg, 'app', { currentLayerSizes: [3000] });
    await rm(blobDataPath(reg, kept.layers[0]?.digest ?? ''));

    // Act
    const result = await clean(['--storage-root', reg.root, '--keep-last', '1'], 'text');

    // Assess
    expect(result.code).toBe(1);
    const report = result.stdout.slice(result.stdout.indexOf('\nDeleted') - 200);
    expect(result.stdout).toContain(
      `\nFAILED: BROKEN kept image app:new: blob ${kept.layers[0]?.digest} is missing\n`,
    );
    expect(report).not.toMatch(/^Done/m);
    expect(result.stderr).toMatch(/^error: BROKEN kept image app:new/m);
  });

  const collectionLog = (report: RunReport) =>
    report.garbageCollection.ran ? (report.garbageCollection.summary?.log as string) : '';

  it('fails, naming the log, when the collector exits 0 without collecting', async () => {
    // Prepare: what runs as the collector prints the registry's usage and exits 0, as a wrong entrypoint does
    await setUp({ noopGarbageCollect: true });
    await pushStaleAndCurrent(reg, 'app', { staleLayerSizes: [8192] });
    const before = await blobSizes(reg);

    // Act
    const result = await clean(['--storage-root', reg.root, '--keep-last', '1']);

    // Assess
    expect(result.code).toBe(1);
    const { report } = JSON.parse(result.stdout) as { report: RunReport };
    const log = collectionLog(report);
    expect(log.startsWith(join(scratch, 'logs', 'gc-'))).toBe(true);
    expect(report.outcome).toBe('failed');
    expect(report.problems).toEqual([
      'garbage collection failed (exit 1): the collector exited 0 without its mark summary (N blobs marked, ' +
        'M blobs and K manifests eligible for deletion): Use "registry [command] --help" for more information ' +
        `about a command.; see the log ${log}`,
    ]);
    expect(report.garbageCollection).toMatchObject({
      summary: { status: 'failed', gcExitCode: 0, blobsMarked: null, bytesFreed: 0 },
    });
    expect(result.stderr).toBe(`error: ${report.problems[0]}\n`);
    expect(freedBytes(before, await blobSizes(reg))).toBe(0);
  });

  it('fails, naming the log, when a collection on registry 3 freed less than the exact estimate', async () => {
    // Prepare: v3 prints no 2.x mark summary, so only the bytes tell that nothing was collected
    await setUp({ noopGarbageCollect: true, registryVersion: V3_VERSION_LINE });
    await pushStaleAndCurrent(reg, 'app', { staleLayerSizes: [8192] });

    // Act
    const result = await clean(['--storage-root', reg.root, '--keep-last', '1']);

    // Assess
    expect(result.code).toBe(1);
    const { plan, report } = JSON.parse(result.stdout) as { plan: Plan; report: RunReport };
    expect(plan.reclaim.exact).toBe(true);
    expect(report.garbageCollection).toMatchObject({ summary: { status: 'done', version: '3.0.0' } });
    expect(report.reclaimed).toMatchObject({ estimatedBytes: plan.reclaim.bytes, measuredBytes: 0 });
    expect(report.problems).toEqual([
      `garbage collection freed 0 B (0 bytes) of the ${formatBytes(plan.reclaim.bytes)} (${plan.reclaim.bytes} bytes) ` +
        `the plan's exact estimate promised: the collector did not collect what was deleted; see the log ${collectionLog(report)}`,
    ]);
    expect(result.stderr).toBe(`error: ${report.problems[0]}\n`);
  });

  it('does not count blobs that a push during the run uses again as a shortfall', async () => {
    // Prepare: as the collector starts, an image is pushed that uses the stale image's layer
    const layer = randomGzipBlob(8192);
    await setUp({ beforeGarbageCollect: () => pushImage(reg, 'app', 'again', { layers: [layer] }) });
    const stale = await pushImage(reg, 'app', 'old', { layers: [layer] });
    await backdate(reg, 'app', stale.digest, 10, 'old');
    await pushImage(reg, 'app', 'new', {});

    // Act
    const result = await clean(['--storage-root', reg.root, '--keep-last', '1']);

    // Assess
    expect(result.code).toBe(0);
    const { plan, report } = JSON.parse(result.stdout) as { plan: Plan; report: RunReport };
    expect(plan.reclaim.exact).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.reclaimed.measuredBytes).toBe(plan.reclaim.bytes - layer.length);
    expect(await skopeoPull(reg, 'app', 'again')).toEqual({ ok: true });
  });

  it("shows Docker's own error when the collection cannot reach Docker, after reporting the deletions", async () => {
    // Prepare: the registry answers, but this host's Docker daemon does not
    await setUp({ failEveryCall: DAEMON_DOWN });
    await pushStaleAndCurrent(reg, 'app');

    // Act
    const result = await clean(['--storage-root', reg.root, '--keep-last', '1'], 'text');

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `error: garbage collection failed (exit 1): could not inspect the registry container: ${DAEMON_DOWN}\n`,
    );
    expect(result.stdout).toMatch(/^Deleted 1 manifest, skipped 0, failed 0$/m);
    expect(await headManifest(reg, 'app', 'old')).toBeUndefined();
  });

  it('gc warns that a selection matching no repository verifies nothing, and still collects', async () => {
    await setUp();
    await pushImage(reg, 'team/app', 'v1', {});

    const result = await runCli(['gc', '--registry', reg.url, '--repo', 'team', ...hostArgs().slice(2)], {
      env: docker.env,
    });

    expect(result.code).toBe(0);
    expect(result.stderr.replace(/\n +/g, ' ')).toBe(
      "warning: --repo 'team' does not match the registry's only repository (did you mean 'team/**'? a name " +
        'without * is the whole repository name); ' +
        'gc collects the whole registry but verifies no tag after it\n',
    );
    expect(result.stdout).toMatch(/^Garbage collection: done, /m);
    expect(result.stdout).toMatch(/^Verified: all 0 kept tags resolve completely/m);
  });

  it('plans from the host inventory as it does from the storage root', async () => {
    await setUp();
    for (let n = 0; n < 4; n += 1) {
      const image = await pushImage(reg, 'team/app', 'latest', {});
      await backdate(reg, 'team/app', image.digest, 8 - n, 'latest');
    }
    const policy = ['--keep-last', '1', '--untagged-grace', '1h', '--json'];

    const fromRoot = parsePlan(
      await runCli(['plan', '--registry', reg.url, '--storage-root', reg.root, ...policy]),
    );
    const fromHost = parsePlan(
      await runCli(['plan', '--registry', reg.url, '--storage-from-host', ...policy], {
        env: docker.env,
      }),
    );

    const decisions = (plan: Plan) =>
      plan.repositories
        .flatMap((r) => r.manifests.map((m) => `${m.digest} ${m.decision} ${m.reason}`))
        .sort();
    expect(decisions(fromHost)).toEqual(decisions(fromRoot));
    expect(fromHost.totals.manifestsDeleted).toBe(3);
  });
});

describe('clean --gc ssm: the same cycle through SSM Run Command', () => {
  const INSTANCE = 'i-0123456789abcdef0';
  let reg: TestRegistry;
  let docker: DockerStandIn;
  let ssm: SsmFake;
  let scratch: string;
  afterEach(async () => {
    await ssm?.close();
    await docker?.close();
    await reg?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('sends the host script to the instance, reads its summary, and reports the bytes it freed', async () => {
    // Prepare: the fake agent runs what it is sent, with the docker stand-in on its PATH
    reg = await startRegistry();
    docker = await installDockerStandIn(reg);
    scratch = await mkdtemp(join(tmpdir(), 'janitor-ssm-'));
    ssm = await createSsmFake({ instanceId: INSTANCE, env: docker.env });
    await pushStaleAndCurrent(reg, 'app', { staleLayerSizes: [5000] });
    const before = await blobSizes(reg);

    // Act
    const result = await runCli(
      [
        'clean',
        '--registry',
        reg.url,
        '--keep-last',
        '1',
        '--yes',
        '--json',
        '--gc',
        'ssm',
        '--instance-id',
        INSTANCE,
        '--ssm-output-bucket',
        'janitor-output',
        '--storage-from-host',
        '--lock-file',
        join(scratch, 'lock'),
        '--log-dir',
        join(scratch, 'logs'),
      ],
      { aws: { ssm: ssm.ssm, s3: ssm.s3, sleep: (ms) => ssm.sleep(ms) } },
    );

    // Assess
    expect(result.code).toBe(0);
    const { plan, report } = JSON.parse(result.stdout) as { plan: Plan; report: RunReport };
    expect(plan.reclaim.exact).toBe(true);
    expect(report.reclaimed.measuredBytes).toBe(freedBytes(before, await blobSizes(reg)));
    expect(report.reclaimed.measuredBytes).toBe(plan.reclaim.bytes);
    expect(report.verification.broken).toEqual([]);
    const sent = ssm.commands().map((c) => c.input);
    expect(sent.map((input) => [input.DocumentName, input.InstanceIds])).toEqual([
      ['AWS-RunShellScript', [INSTANCE]],
      ['AWS-RunShellScript', [INSTANCE]],
    ]);
    expect(sent[1]?.Parameters?.commands?.slice(0, 3)).toEqual([
      "export RJ_ACTION='collect'",
      expect.stringMatching(/^export RJ_\w+='[^']*'$/),
      expect.stringMatching(/^export RJ_\w+='[^']*'$/),
    ]);
    expect(await headManifest(reg, 'app', 'old')).toBeUndefined();
  });
});

describe('clean --gc ssm when SSM refuses the command', () => {
  it('still reports the deletions it made, and fails with the reason', async () => {
    // Prepare: SSM answers AccessDenied to SendCommand
    const reg = await startRegistry();
    try {
      const { stale } = await pushStaleAndCurrent(reg, 'app');
      const ssm = new SSMClient({
        region: 'eu-west-1',
        credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      });
      mockClient(ssm)
        .on(SendCommandCommand)
        .rejects(
          Object.assign(new Error('User is not authorized to perform: ssm:SendCommand'), {
            name: 'AccessDeniedException',
          }),
        );

      // Act
      const result = await runCli(
        [
          'clean',
          '--registry',
          reg.url,
          '--storage-root',
          reg.root,
          '--keep-last',
          '1',
          '--yes',
          '--json',
          '--gc',
          'ssm',
          '--instance-id',
          'i-0123456789abcdef0',
        ],
        { aws: { ssm } },
      );

      // Assess
      expect(result.code).toBe(1);
      const { report } = JSON.parse(result.stdout) as { report: RunReport };
      expect(report.deletions.deleted).toEqual([
        { repository: 'app', digest: stale.digest, outcome: 'deleted' },
      ]);
      expect(report.problems).toEqual([
        expect.stringMatching(/^garbage collection failed \(exit unknown\): .*ssm:SendCommand/),
      ]);
      expect(await headManifest(reg, 'app', 'old')).toBeUndefined();
    } finally {
      await reg.stop();
    }
  });
});
