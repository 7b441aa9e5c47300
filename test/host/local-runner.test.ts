import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalRunner } from '../../lambda/host/local-runner.js';
import { HostParameterError } from '../../lambda/host/script.js';
import { SSM_COMMAND_ID } from '../../lambda/identifiers.js';

const INVENTORY_DONE =
  '{"registryJanitor":1,"action":"inventory","status":"done","repositories":1,"revisions":0,"tags":0,"durationSeconds":0}';
const COLLECT_FAILED =
  '{"registryJanitor":1,"action":"collect","status":"failed","reason":"interrupted","mode":"online","version":null,"blobsMarked":null,"blobsDeleted":null,"manifestsDeleted":null,"bytesBefore":null,"bytesAfter":null,"bytesFreed":null,"diskUsedPercentBefore":null,"diskUsedPercentAfter":null,"restarted":false,"gcExitCode":null,"log":null,"durationSeconds":0}';

const COLLECT_DONE =
  '{"registryJanitor":1,"action":"collect","status":"done","mode":"online","version":"2.8.2","blobsMarked":1,"blobsDeleted":1,"manifestsDeleted":0,"bytesBefore":8192,"bytesAfter":4096,"bytesFreed":4096,"diskUsedPercentBefore":10,"diskUsedPercentAfter":9,"restarted":true,"gcExitCode":0,"log":null,"durationSeconds":0}';

describe('LocalRunner', () => {
  it('hands over the RJ_* variables of the parameters only, and maps the exit code, summary and output', async () => {
    const script = `echo "container=\${RJ_CONTAINER-unset} port=\${RJ_REGISTRY_PORT-unset} base=\${BASE-unset}" >&2
echo "R web"
echo '${INVENTORY_DONE}'
exit 3
`;
    const runner = new LocalRunner({
      script,
      env: { PATH: process.env.PATH, BASE: 'kept', RJ_CONTAINER: 'stale' },
    });

    const run = await runner.run('inventory', { registryPort: 5001 });

    expect(run).toEqual({
      state: 'finished',
      exitCode: 3,
      summary: expect.objectContaining({ action: 'inventory', status: 'done', repositories: 1 }),
      output: 'R web\n',
      stderr: 'container=unset port=5001 base=kept\n',
    });
  });

  it('keeps only the end of a collection that prints a lot, and still finds its summary', async () => {
    const script = `i=0; while [ $i -lt 20000 ]; do echo "blob eligible for deletion: line $i"; i=$((i+1)); done
echo '${COLLECT_FAILED}'
exit 1
`;

    const run = await new LocalRunner({ script }).run('collect', {});

    expect(run.exitCode).toBe(1);
    expect(run.summary).toMatchObject({ action: 'collect', status: 'failed', reason: 'interrupted' });
    expect(run.output).toBeUndefined();
  });

  it('says so when the script printed no summary', async () => {
    const script = 'echo "half an inventory"\necho "boom" >&2\nexit 2\n';

    const run = await new LocalRunner({ script }).run('inventory', {});

    expect(run).toEqual({
      state: 'finished',
      exitCode: 2,
      stderr: 'boom\n',
      reason: 'the host script printed no summary line',
    });
  });

  it('sends SIGTERM to the whole script on timeout and reports what it printed then', async () => {
    const script = `trap 'echo '"'"'${COLLECT_FAILED}'"'"'; exit 143' TERM
sleep 30 &
wait
`;
    const started = Date.now();

    const run = await new LocalRunner({ script, timeoutMs: 300 }).run('collect', {});

    expect(Date.now() - started).toBeLessThan(10_000);
    expect(run).toMatchObject({ stopped: 'timeout', exitCode: 143, summary: { reason: 'interrupted' } });
  });

  it('kills a script that ignores SIGTERM after the grace period', async () => {
    const script = "trap '' TERM\nsleep 30\n";

    const run = await new LocalRunner({ script, timeoutMs: 200, killGraceMs: 200 }).run('collect', {});

    expect(run).toMatchObject({ stopped: 'timeout', exitCode: 137 });
  });

  it('refuses invalid parameters without running anything', async () => {
    const runner = new LocalRunner({ script: 'exit 0' });

    await expect(runner.run('collect', { container: 'registry; reboot' })).rejects.toThrow(
      HostParameterError,
    );
  });
});

describe('LocalRunner with a collections folder', () => {
  let dir: string;
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A collection that waits for a line on a FIFO, then prints its summary. */
  async function gatedCollection(): Promise<{
    script: string;
    env: NodeJS.ProcessEnv;
    open(): Promise<void>;
  }> {
    dir = await mkdtemp(join(tmpdir(), 'janitor-collections-'));
    const gate = join(dir, 'gate');
    execFileSync('mkfifo', [gate]);
    return {
      script: `read -r _ < "$GATE"\necho "collector says" >&2\necho '${COLLECT_DONE}'\n`,
      env: { PATH: process.env.PATH, GATE: gate },
      open: () => writeFile(gate, 'go\n'),
    };
  }

  it('leaves a collection running past its timeout, and a later runner picks it up once it ends', async () => {
    // Prepare
    const gated = await gatedCollection();
    const collections = join(dir, 'collections');
    const first = new LocalRunner({
      script: gated.script,
      env: gated.env,
      timeoutMs: 50,
      collectionsDir: collections,
    });

    // Act
    const left = await first.run('collect', {});
    const later = new LocalRunner({ env: gated.env, collectionsDir: collections });
    const stillRunning = await later.resume(left.commandId ?? '', 0);
    await gated.open();
    const ended = await later.resume(left.commandId ?? '');

    // Assess
    expect(left).toMatchObject({ state: 'running', commandId: expect.stringMatching(SSM_COMMAND_ID) });
    expect(stillRunning).toMatchObject({ state: 'running', commandId: left.commandId });
    expect(ended).toMatchObject({
      state: 'finished',
      exitCode: 0,
      commandId: left.commandId,
      summary: { action: 'collect', status: 'done', bytesFreed: 4096 },
      stderr: 'collector says\n',
    });
  });

  it('reports a collection that ends in time as a run without a folder does', async () => {
    const gated = await gatedCollection();
    const runner = new LocalRunner({ script: gated.script, env: gated.env, collectionsDir: join(dir, 'c') });

    const running = runner.run('collect', {});
    await gated.open();
    const run = await running;

    expect(run).toMatchObject({
      state: 'finished',
      exitCode: 0,
      summary: { status: 'done', bytesFreed: 4096 },
      stderr: 'collector says\n',
    });
    expect(run.interrupted).toBeUndefined();
  });

  it('says when it knows no collection by that id', async () => {
    dir = await mkdtemp(join(tmpdir(), 'janitor-collections-'));
    const runner = new LocalRunner({ collectionsDir: dir });

    const run = await runner.resume('0b5f2c1e-1111-4222-8333-444455556666', 0);

    expect(run).toMatchObject({
      state: 'finished',
      reason: `no collection with command id 0b5f2c1e-1111-4222-8333-444455556666 is known in ${dir}`,
    });
  });
});
