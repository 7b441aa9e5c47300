import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parsePlan, runCli } from './cli-runner.js';
import { headManifest, pushImage } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { backdate } from './support/storage.js';

const OVER_THE_CAP =
  'the plan deletes 3 manifests, more than --max-delete 2: check the policy, or raise --max-delete';

describe('--max-delete: a safety net for automated runs', () => {
  let reg: TestRegistry;
  let scratch: string;
  const TAGS = ['v1', 'v2', 'v3', 'v4'];

  /** app: v1..v4, 40 to 10 days old; --keep-last 1 deletes three of them. */
  beforeEach(async () => {
    reg = await startRegistry();
    scratch = await mkdtemp(join(tmpdir(), 'janitor-max-delete-'));
    for (const [n, tag] of TAGS.entries()) {
      const image = await pushImage(reg, 'app', tag);
      await backdate(reg, 'app', image.digest, 40 - 10 * n, tag);
    }
  });
  afterEach(async () => {
    await reg?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const tagsLeft = async () => {
    const left: string[] = [];
    for (const tag of TAGS) if (await headManifest(reg, 'app', tag)) left.push(tag);
    return left;
  };
  const policy = () => ['--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1'];
  /** Lines as long as they come, not wrapped for a terminal. */
  const unwrapped = { env: { COLUMNS: '1000' } };

  it('clean deletes nothing when the plan deletes more, and exits 1 saying why and what to do', async () => {
    const result = await runCli(['clean', ...policy(), '--max-delete', '2', '--yes'], unwrapped);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`error: clean stopped before deleting anything: ${OVER_THE_CAP}\n`);
    expect(result.stdout).toContain('manifests: keep 1, delete 3 (--max-delete 2)\n');
    expect(await tagsLeft()).toEqual(TAGS);
  });

  it('clean deletes as planned when the plan stays within the cap', async () => {
    const result = await runCli(['clean', ...policy(), '--max-delete', '3', '--yes']);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Deleted 3 manifests, skipped 0, failed 0$/m);
    expect(await tagsLeft()).toEqual(['v4']);
  });

  it('plan shows the cap and warns that clean would stop, in text and in JSON', async () => {
    const text = await runCli(['plan', ...policy(), '--max-delete', '2'], unwrapped);
    const json = parsePlan(await runCli(['plan', ...policy(), '--max-delete', '2', '--json']));

    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      `warning: clean would stop before deleting anything: ${OVER_THE_CAP}\n` +
        '1 repository scanned; tags: keep 1, delete 3; manifests: keep 1, delete 3 (--max-delete 2)\n',
    );
    expect(json.maxDelete).toEqual({ limit: 2, setting: '--max-delete' });
    expect(await tagsLeft()).toEqual(TAGS);
  });

  it('a plan saved with a cap keeps it; clean --plan may set another', async () => {
    const saved = join(scratch, 'plan.json');
    await writeFile(saved, (await runCli(['plan', ...policy(), '--max-delete', '2', '--json'])).stdout);

    const refused = await runCli(['clean', '--plan', saved, '--yes'], unwrapped);
    const raised = await runCli(['clean', '--plan', saved, '--max-delete', '10', '--yes']);

    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`error: clean stopped before deleting anything: ${OVER_THE_CAP}\n`);
    expect(raised.code).toBe(0);
    expect(await tagsLeft()).toEqual(['v4']);
  });

  it('refuses a value that is not a whole number, and the option on commands that delete nothing', async () => {
    const bad = await runCli(['clean', ...policy(), '--max-delete', 'ten', '--yes']);
    const onVerify = await runCli(['verify', '--registry', reg.url, '--max-delete', '5']);

    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('error: --max-delete: expected a whole number ≥ 0, got "ten"\n');
    expect(onVerify.code).toBe(2);
    expect(onVerify.stderr).toContain('error: --max-delete: not an option of verify (only of plan, clean)\n');
    expect(`${bad.stderr}${onVerify.stderr}`).not.toMatch(/\n\s+at /);
    expect(await tagsLeft()).toEqual(TAGS);
  });
});
