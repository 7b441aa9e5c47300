import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HostInventoryError, HostStorage, parseInventory } from '../../lambda/host/host-storage.js';
import { parseHostOutput } from '../../lambda/host/summary.js';
import type { HostRun } from '../../lambda/ports.js';

const HEX_A = 'a'.repeat(64);
const HEX_B = 'b'.repeat(64);

const collectLine = JSON.stringify({
  registryJanitor: 1,
  action: 'collect',
  status: 'done',
  mode: 'online',
  version: '2.8.2',
  blobsMarked: 6,
  blobsDeleted: 3,
  manifestsDeleted: 0,
  bytesBefore: 5451,
  bytesAfter: 3634,
  bytesFreed: 1817,
  diskUsedPercentBefore: 22,
  diskUsedPercentAfter: 22,
  restarted: true,
  gcExitCode: 0,
  log: '/var/log/registry-janitor/gc-20260101T000000Z-1.log',
  durationSeconds: 2,
});

interface InventoryCounts {
  repositories: number;
  revisions: number;
  tags: number;
  manifests?: number;
  archiveLines?: number;
}

const inventoryLine = (counts: InventoryCounts) =>
  JSON.stringify({ registryJanitor: 1, action: 'inventory', status: 'done', ...counts, durationSeconds: 0 });

/** `M` lines of a gzip-compressed tar of these manifest bodies, as the host script prints them. */
function archiveLines(bodies: readonly Uint8Array[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'registry-janitor-archive-'));
  try {
    const paths = bodies.map((body) => {
      const hex = createHash('sha256').update(body).digest('hex');
      mkdirSync(join(dir, hex.slice(0, 2), hex), { recursive: true });
      writeFileSync(join(dir, hex.slice(0, 2), hex, 'data'), body);
      return `${hex.slice(0, 2)}/${hex}/data`;
    });
    const archive = execFileSync('sh', ['-c', 'tar -cf - "$@" | gzip -c | base64', 'sh', ...paths], {
      cwd: dir,
    });
    return archive
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => `M ${line}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('parseHostOutput', () => {
  it('takes the last registryJanitor line as the summary and what precedes it as the output', () => {
    const stdout = `R web\nV ${HEX_A} 1\n{"other":1}\n${inventoryLine({ repositories: 1, revisions: 1, tags: 0 })}\n`;

    const parsed = parseHostOutput(stdout);

    expect(parsed.summary).toMatchObject({ action: 'inventory', status: 'done', repositories: 1 });
    expect(parsed.output).toBe(`R web\nV ${HEX_A} 1\n{"other":1}\n`);
  });

  it('reads a collect summary with its counts and nulls', () => {
    const withNulls = collectLine.replace('"blobsMarked":6', '"blobsMarked":null');

    expect(parseHostOutput(`${withNulls}\n`).summary).toMatchObject({ blobsMarked: null, bytesFreed: 1817 });
  });

  it('reads the one-line refusal of a bad input', () => {
    const line =
      '{"registryJanitor":1,"action":"collect","status":"failed","reason":"invalid RJ_GC_MODE: expected online or stopped","variable":"RJ_GC_MODE","durationSeconds":0}';

    expect(parseHostOutput(line).summary).toMatchObject({ status: 'failed', variable: 'RJ_GC_MODE' });
  });

  it('reads a recover summary, "nothing to do" included, and refuses a recover status that is not one', () => {
    const recover = (status: string) =>
      `{"registryJanitor":1,"action":"recover","status":"${status}","reason":"the registry is running and no collection was interrupted","restarted":false,"log":null,"durationSeconds":0}`;

    expect(parseHostOutput(recover('nothing to do')).summary).toMatchObject({
      action: 'recover',
      status: 'nothing to do',
      restarted: false,
    });
    expect(parseHostOutput(recover('skipped')).problem).toContain('status');
    expect(
      parseHostOutput(
        '{"registryJanitor":1,"action":"recover","status":"failed","reason":"invalid RJ_ACTION: expected inventory, collect or recover","variable":"RJ_ACTION","durationSeconds":0}',
      ).summary,
    ).toMatchObject({ status: 'failed', variable: 'RJ_ACTION' });
  });

  it('says why a summary line is not valid, and keeps all of stdout as output', () => {
    const broken = collectLine.replace('"bytesFreed":1817', '"bytesFreed":"lots"');

    const parsed = parseHostOutput(`x\n${broken}\n`);

    expect(parsed.summary).toBeUndefined();
    expect(parsed.output).toBe(`x\n${broken}\n`);
    expect(parsed.problem).toContain('bytesFreed');
  });

  it('has no summary without a registryJanitor line, or when the action is unknown', () => {
    expect(parseHostOutput('R web\nnot json {\n')).toEqual({ output: 'R web\nnot json {\n' });
    expect(parseHostOutput('{"registryJanitor":1,"action":null,"status":"failed"}').problem).toContain(
      'no known action',
    );
  });
});

describe('parseInventory', () => {
  it('builds repositories with ISO push times from epoch seconds', () => {
    const { repositories: listed } = parseInventory(
      `R team/app\nV ${HEX_A} 1700000000\nT v1 ${HEX_B} 1700000001\nR web\n`,
    );

    expect([...listed.entries()]).toEqual([
      [
        'team/app',
        {
          revisions: [{ digest: `sha256:${HEX_A}`, pushedAt: '2023-11-14T22:13:20.000Z' }],
          tags: [{ name: 'v1', digest: `sha256:${HEX_B}`, pushedAt: '2023-11-14T22:13:21.000Z' }],
        },
      ],
      ['web', { revisions: [], tags: [] }],
    ]);
  });

  it('keeps the fraction of a second to the millisecond, truncated, as the storage root reads it', () => {
    const { repositories: listed } = parseInventory(
      [
        'R web',
        `V ${HEX_A} 1700000000.123999999`,
        `V ${HEX_B} 1700000000.5`,
        `T v1 ${HEX_A} 1700000001.000000000`,
      ].join('\n'),
    );

    expect(listed.get('web')).toEqual({
      revisions: [
        { digest: `sha256:${HEX_A}`, pushedAt: '2023-11-14T22:13:20.123Z' },
        { digest: `sha256:${HEX_B}`, pushedAt: '2023-11-14T22:13:20.500Z' },
      ],
      tags: [{ name: 'v1', digest: `sha256:${HEX_A}`, pushedAt: '2023-11-14T22:13:21.000Z' }],
    });
  });

  it('skips and reports invalid lines, and the lines of an invalid repository', () => {
    const invalid: [string, number][] = [];
    const text = [
      `V ${HEX_A} 1`,
      'R Bad_Name',
      `V ${HEX_A} 1`,
      'R ok',
      `V ${HEX_A.slice(1)} 1`,
      `V ${HEX_A} soon`,
      `T -tag ${HEX_A} 1`,
      `T tag ${HEX_B} 1 extra`,
      `V ${HEX_A} 1\r`,
      'X something',
      `V ${HEX_A} 1.`,
      `V ${HEX_A} 1.1234567890`,
    ].join('\n');

    const { repositories: listed } = parseInventory(text, (line, n) => invalid.push([line, n]));

    expect(listed.get('ok')?.revisions).toEqual([
      { digest: `sha256:${HEX_A}`, pushedAt: '1970-01-01T00:00:01.000Z' },
    ]);
    expect([...listed.keys()]).toEqual(['ok']);
    expect(invalid.map(([, n]) => n)).toEqual([1, 2, 3, 5, 6, 7, 8, 10, 11, 12]);
  });

  it("keeps the archive's base64 lines in order and reports those that are not base64", () => {
    const invalid: [string, number][] = [];
    const text = [
      'M SGVsbG8s',
      'M !!notbase64',
      'M ',
      'M IHdvcmxk\r',
      `M ${'A'.repeat(77)}`,
      'M  SGVsbG8s',
      'M SGVs bG8s',
      'M IQ==',
    ].join('\n');

    const { archive } = parseInventory(text, (line, n) => invalid.push([line, n]));

    expect(Buffer.from(archive.join(''), 'base64').toString()).toBe('Hello, world!');
    expect(invalid.map(([, n]) => n)).toEqual([2, 3, 5, 6, 7]);
  });
});

describe('HostStorage', () => {
  const runner = (run: HostRun) => ({ run: async () => run });
  const done = (counts: InventoryCounts) =>
    parseHostOutput(inventoryLine({ manifests: 0, archiveLines: 0, ...counts })).summary;
  const finished = (output: string, counts: InventoryCounts): HostRun => {
    const summary = done(counts);
    return { state: 'finished', exitCode: 0, output, ...(summary ? { summary } : {}) };
  };
  const image = new TextEncoder().encode(
    `${JSON.stringify(
      {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${HEX_A}`, size: 2 },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${HEX_B}`, size: 3 },
        ],
      },
      null,
      2,
    )}\n`,
  );
  const imageDigest = `sha256:${createHash('sha256').update(image).digest('hex')}` as const;

  it('lists what the inventory output holds', async () => {
    const summary = done({ repositories: 1, revisions: 1, tags: 0 });
    const storage = new HostStorage(
      runner({
        state: 'finished',
        exitCode: 0,
        output: `R web\nV ${HEX_A} 1\n`,
        ...(summary ? { summary } : {}),
      }),
    );

    expect([...(await storage.list()).keys()]).toEqual(['web']);
  });

  it('reads the manifests the archive holds, to the byte, and none it does not', async () => {
    const lines = archiveLines([image]);
    const storage = new HostStorage(
      runner(
        finished([`R web`, `V ${imageDigest.slice(7)} 1`, ...lines, ''].join('\n'), {
          repositories: 1,
          revisions: 1,
          tags: 0,
          manifests: 1,
          archiveLines: lines.length,
        }),
      ),
    );

    await storage.list();

    expect(await storage.readManifest(imageDigest)).toMatchObject({
      digest: imageDigest,
      size: image.byteLength,
      layers: [{ digest: `sha256:${HEX_B}`, size: 3 }],
    });
    expect(await storage.readManifest(`sha256:${HEX_A}`)).toBeUndefined();
  });

  it('refuses an archive cut short, and an inventory from a script that sends no manifests', async () => {
    const lines = archiveLines([image]);
    const cut = lines.slice(0, -1);

    await expect(
      new HostStorage(
        runner(
          finished(['R web', ...cut, ''].join('\n'), {
            repositories: 1,
            revisions: 0,
            tags: 0,
            manifests: 1,
            archiveLines: cut.length,
          }),
        ),
      ).list(),
    ).rejects.toThrow(/^the manifests in the inventory output cannot be read: /);
    const older = parseHostOutput(inventoryLine({ repositories: 1, revisions: 0, tags: 0 })).summary;
    await expect(
      new HostStorage(
        runner({ state: 'finished', exitCode: 0, output: 'R web\n', ...(older ? { summary: older } : {}) }),
      ).list(),
    ).rejects.toThrow(
      'the inventory carried no manifests: the host script is from another version of registry-janitor',
    );
  });

  it('says what to fix when the output is missing, incomplete, failed or still running', async () => {
    const summary = done({ repositories: 1, revisions: 2, tags: 0 });
    const failed = parseHostOutput(
      '{"registryJanitor":1,"action":"inventory","status":"failed","reason":"could not read the registry storage in the container","durationSeconds":0}',
    ).summary;

    await expect(
      new HostStorage(runner({ state: 'finished', exitCode: 0, ...(summary ? { summary } : {}) })).list(),
    ).rejects.toThrow('the inventory did not fit in the SSM output: configure an output bucket');
    await expect(
      new HostStorage(
        runner({
          state: 'finished',
          exitCode: 0,
          output: `R web\nV ${HEX_A} 1\n`,
          ...(summary ? { summary } : {}),
        }),
      ).list(),
    ).rejects.toThrow('the inventory output is incomplete: the host script printed 3 lines, 2 arrived');
    await expect(
      new HostStorage(
        runner({ state: 'finished', exitCode: 1, output: '', ...(failed ? { summary: failed } : {}) }),
      ).list(),
    ).rejects.toThrow(
      'the inventory failed on the registry host (exit 1): could not read the registry storage',
    );
    await expect(new HostStorage(runner({ state: 'running', commandId: 'c-1' })).list()).rejects.toThrow(
      HostInventoryError,
    );
    await expect(new HostStorage(runner({ state: 'finished', exitCode: 127 })).list()).rejects.toThrow(
      'the host script printed no summary (exit 127)',
    );
  });
});
