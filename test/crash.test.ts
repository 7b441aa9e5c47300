import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Plan } from '../lambda/domain/plan.js';
import { PROJECT_ROOT } from '../scripts/run-cli.js';
import { parsePlan, runCli } from './cli-runner.js';
import { headManifest, pushImage } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { skopeoPull, skopeoPushMultiArch } from './support/skopeo.js';
import { backdate } from './support/storage.js';

const CLI = join(PROJECT_ROOT, 'scripts', 'cli-from-source.js');

/** Runs `clean` in its own process and SIGKILLs it once it has seen `deletes` DELETEs answered. */
function cleanKilledAfter(args: readonly string[], deletes: number): Promise<{ killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [CLI, 'clean', ...args, '--yes', '--verbose', '--concurrency', '1'],
      {
        env: { ...process.env, DOCKER_CONFIG: '/nonexistent-docker-config' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let seen = 0;
    let partial = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (/^http: DELETE \S+ 202 /.test(line)) seen += 1;
        if (seen >= deletes) child.kill('SIGKILL');
      }
    });
    child.once('error', reject);
    child.once('close', (_code, signal) => resolve({ killed: signal === 'SIGKILL' }));
  });
}

describe('a clean killed in the middle of deleting', () => {
  let reg: TestRegistry;
  afterEach(async () => {
    await reg?.stop();
  });

  it.each([1, 2, 4])(
    'at its DELETE number %i: deletes nothing it should keep, and the next run finishes the plan',
    async (deletes) => {
      // Prepare: a stale multi-arch image (an index and its children), stale single images, kept ones
      reg = await startRegistry();
      const old = await skopeoPushMultiArch(reg, 'base', '1.0', [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ]);
      for (const digest of [old.digest, ...old.children]) await backdate(reg, 'base', digest, 30);
      await backdate(reg, 'base', old.digest, 30, '1.0');
      await skopeoPushMultiArch(reg, 'base', '2.0', [{ os: 'linux', architecture: 'amd64' }]);
      for (const n of [1, 2, 3]) {
        const image = await pushImage(reg, 'app', `v${n}`, {});
        await backdate(reg, 'app', image.digest, 20 - n, `v${n}`);
      }
      await pushImage(reg, 'app', 'v4', {});
      const args = ['--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1'];
      const planned = parsePlan(await runCli(['plan', ...args, '--json']));
      const doomed = (plan: Plan) =>
        plan.repositories.flatMap((r) =>
          r.manifests.filter((m) => m.decision === 'delete').map((m) => m.digest),
        );
      const kept = planned.repositories.flatMap((r) =>
        r.tags
          .filter((t) => t.decision === 'keep')
          .map((t) => ({ repository: r.name, tag: t.tag, digest: t.digest })),
      );

      // Act
      const first = await cleanKilledAfter(args, deletes);
      const between = await Promise.all(kept.map((k) => headManifest(reg, k.repository, k.tag)));
      const index = await headManifest(reg, 'base', old.digest);
      const children = await Promise.all(old.children.map((child) => headManifest(reg, 'base', child)));
      const second = await runCli(['clean', ...args, '--yes', '--json']);

      // Assess: the kill landed mid-run; nothing kept was touched; an index went only after all its children
      expect(first.killed).toBe(true);
      expect(between).toEqual(kept.map((k) => k.digest));
      if (index === undefined) expect(children).toEqual(old.children.map(() => undefined));
      expect(second.code).toBe(0);
      for (const digest of doomed(planned)) {
        const repository =
          planned.repositories.find((r) => r.manifests.some((m) => m.digest === digest))?.name ?? '';
        expect(await headManifest(reg, repository, digest)).toBeUndefined();
      }
      for (const k of kept) expect(await skopeoPull(reg, k.repository, k.tag)).toEqual({ ok: true });
      expect(doomed(parsePlan(await runCli(['plan', ...args, '--json'])))).toEqual([]);
    },
  );
});
