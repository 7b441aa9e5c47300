import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleLines } from '../lambda/command-line.js';
import type { Plan } from '../lambda/domain/plan.js';
import { DEFAULT_WIDTH, fitText, formatBytes } from '../lambda/report/format.js';
import { installDockerStandIn } from '../test/support/docker-stand-in.js';
import { headManifest } from '../test/support/images.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { skopeoPull } from '../test/support/skopeo.js';
import { blobSizes, freedBytes } from '../test/support/storage.js';
import { demoPolicy, fillRegistry, History } from './demo-history.js';
import { stopOnInterrupt } from './interrupt.js';
import { runCli } from './run-cli.js';

function heading(title: string): void {
  process.stdout.write(`\n== ${title} ${'='.repeat(Math.max(0, 72 - title.length))}\n\n`);
}

const WIDTH = DEFAULT_WIDTH;
const say = (text: string) => process.stdout.write(`${fitText(text, WIDTH)}\n`);
/** An argument as a shell would need it written. */
const quoted = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);

/** Runs the real command line as a person would, its output indented under the command. */
async function registryJanitor(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<number> {
  const command = exampleLines(`registry-janitor ${args.map(quoted).join(' ')}`, WIDTH);
  say(`${command.join('\n').replace(/^ {2}/, '$ ')}\n`);
  // Its output is indented by two: the command fits it into what is left.
  const result = await runCli(args, {
    env: { ...(env ?? process.env), COLUMNS: String(WIDTH - 2) },
    onStdout: (line) => say(`  ${line}`),
    onStderr: (line) => process.stderr.write(`  ${line}\n`),
  });
  return result.code;
}

async function diskUsage(reg: TestRegistry): Promise<{ sizes: Map<string, number>; bytes: number }> {
  const sizes = await blobSizes(reg);
  let bytes = 0;
  for (const size of sizes.values()) bytes += size;
  return { sizes, bytes };
}

function tagsWith(plan: Plan, decision: 'keep' | 'delete'): { repository: string; tag: string }[] {
  return plan.repositories.flatMap((repository) =>
    repository.tags
      .filter((tag) => tag.decision === decision)
      .map((tag) => ({ repository: repository.name, tag: tag.tag })),
  );
}

const shortTag = (tag: string) => tag.replace(/^(sha256-[a-f0-9]{12})[a-f0-9]{52}/, '$1…');

async function main(): Promise<number> {
  const started = Date.now();
  heading('1. A throwaway registry with a month of push history');
  const reg = await startRegistry();
  const undoInterrupt = stopOnInterrupt(reg);
  try {
    say(`registry ${reg.url}, storage root ${reg.root}\n`);
    const history = new History(reg, Date.now());
    await fillRegistry(history, say);
    const before = await diskUsage(reg);
    say(`\n${history.count} manifests pushed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    say(
      `Disk usage before: ${formatBytes(before.bytes)} (${before.bytes} bytes in ${before.sizes.size} blobs)`,
    );

    const flags = demoPolicy(reg);

    heading('2. Plan: what is stale, and why (changes nothing)');
    const planned = await runCli(['plan', ...flags, '--json']);
    if (planned.code !== 0) throw new Error(`plan --json exited ${planned.code}: ${planned.stderr.trim()}`);
    const plan = JSON.parse(planned.stdout) as Plan;
    const shown = await registryJanitor(['plan', ...flags]);
    if (shown !== 0) throw new Error(`plan exited ${shown}`);

    heading('3. Clean: delete, collect garbage on the host, verify every kept image');
    say('The host script runs for real; `docker` is a stand-in that maps');
    say('`docker exec registry …`, `docker restart registry` and friends onto this');
    say('throwaway registry (no Docker engine needed).\n');
    const docker = await installDockerStandIn(reg);
    const hostDir = await mkdtemp(join(tmpdir(), 'registry-janitor-demo-host-'));
    try {
      const hostFlags = [
        '--gc',
        'local',
        '--lock-file',
        join(hostDir, 'lock'),
        '--log-dir',
        join(hostDir, 'logs'),
      ];
      const cleaned = await registryJanitor(['clean', ...flags, ...hostFlags, '--yes'], docker.env);
      if (cleaned !== 0) throw new Error(`clean exited ${cleaned}`);
      const calls = (await docker.calls()).map((argv) => `docker ${argv.join(' ')}`);
      say('\nWhat the host script asked of docker:');
      for (const call of calls.filter((c) => /garbage-collect|restart/.test(c))) say(`  $ ${call}`);
    } finally {
      await docker.close();
      await rm(hostDir, { recursive: true, force: true });
    }

    heading('4. Result');
    const after = await diskUsage(reg);
    const freed = freedBytes(before.sizes, after.sizes);
    const estimate = plan.reclaim.bytes;
    say(`Disk usage after:  ${formatBytes(after.bytes)} (${after.bytes} bytes in ${after.sizes.size} blobs)`);
    say(`Freed (measured):  ${formatBytes(freed)} (${freed} bytes)`);
    say(
      `Plan estimate:     ${formatBytes(estimate)} (${estimate} bytes)${plan.reclaim.exact ? '' : ', an upper bound'}`,
    );
    const problems: string[] = [];
    if (freed !== estimate) problems.push(`measured ${freed} bytes freed, the plan estimated ${estimate}`);

    say('\nEvery kept tag still pulls completely (skopeo copy --all, every blob checked):');
    for (const { repository, tag } of tagsWith(plan, 'keep')) {
      const pulled = await skopeoPull(reg, repository, tag);
      say(
        `  ${pulled.ok ? 'ok  ' : 'FAIL'}  ${repository}:${shortTag(tag)}${pulled.error ? `  ${pulled.error}` : ''}`,
      );
      if (!pulled.ok) problems.push(`${repository}:${tag} does not pull: ${pulled.error}`);
    }
    const deleted = tagsWith(plan, 'delete');
    let lingering = 0;
    for (const { repository, tag } of deleted) {
      if ((await headManifest(reg, repository, tag)) !== undefined) {
        lingering += 1;
        problems.push(`${repository}:${tag} was planned for deletion and still resolves`);
      }
    }
    say(`\n${deleted.length - lingering} of ${deleted.length} deleted tags are gone.`);

    if (problems.length > 0) {
      heading('FAILED');
      for (const problem of problems) say(`  ${problem}`);
      return 1;
    }
    say(
      `\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s: nothing kept was lost, and the estimate was exact.`,
    );
    return 0;
  } finally {
    undoInterrupt();
    await reg.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
