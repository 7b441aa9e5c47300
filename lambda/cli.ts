import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { applyPlan, type CleanupPorts, makePlan } from './cleanup.js';
import { type CliConfig, loadCliConfig, parseArgv, UsageError } from './config.js';
import { printable } from './domain/names.js';
import type { Plan } from './domain/plan.js';
import { parseSavedPlan } from './domain/saved-plan.js';
import { createRegistryClient } from './registry/client.js';
import { defaultDockerConfigPath, lookupDockerConfig } from './registry/docker-config.js';
import { formatBytes, renderDeletionReport, renderPlan } from './report/format.js';
import { FilesystemStorage, StorageRootError } from './storage/filesystem.js';

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

export const EXIT = { done: 0, failed: 1, usage: 2 } as const;

export const USAGE = `Usage: registry-janitor <plan|clean> --registry URL [options]

  plan    scan the registry and show what is stale, with the reason for every tag and digest; changes nothing
  clean   delete what the plan says (asks first on a terminal; --yes to skip the question)

Registry
  --registry URL            http(s)://host[:port] of the registry (or REGISTRY_URL)
  --insecure-tls            do not verify the TLS certificate
  --ca-file PEM             trust the certificates in this file
  --username NAME           with --password-stdin; else REGISTRY_USERNAME/REGISTRY_PASSWORD,
  --password-stdin          else the auths entry of ~/.docker/config.json for the host
  --storage-root DIR        the registry's filesystem root (holds docker/registry/v2): finds untagged
                            manifests and push times
Selection
  --repo GLOB               only these repositories (repeatable; * within a segment, ** across)
  --exclude-repo GLOB       never these repositories (repeatable)
Policy (a tag is kept when any rule keeps it)
  --keep-last N             the N most recent images (distinct digests) of each repository
  --keep-days D             images pushed in the last D days
  --keep-tag REGEX          tags matching the regular expression (repeatable)
  --untagged-grace DUR      leave untagged manifests younger than this (0, 90m, 2h, 7d; default 24h)
  --policy FILE             per-repository rules (JSON, see policy.schema.json); flags set the defaults
Run
  --concurrency N           requests in flight (default 8)
  --timeout DUR             give up after this long (default 1h)
  --json                    machine-readable plan or result on stdout
  --plan FILE               clean: apply a plan saved from plan --json
  -y, --yes                 clean: do not ask
  -h, --help, --version

Exit codes: 0 done, 1 failed (or some repositories could not be scanned), 2 bad usage or input.
`;

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function buildPorts(config: CliConfig, io: CliIo, deadline: AbortSignal): CleanupPorts {
  const credentials = config.credentials.kind === 'none' ? undefined : config.credentials;
  const registry = createRegistryClient({
    url: config.registryUrl,
    concurrency: config.concurrency,
    insecureTls: config.insecureTls,
    deadline,
    userAgent: 'registry-janitor',
    ...(config.ca !== undefined ? { ca: config.ca } : {}),
    ...(credentials
      ? { credentials: { username: credentials.username, password: credentials.password } }
      : {}),
    onInvalidName: (kind, value) =>
      io.stderr.write(`warning: skipped invalid ${kind} name ${printable(value)}\n`),
  });
  const progress = io.stderr.isTTY
    ? { update: (text: string) => io.stderr.write(`\r\x1b[K${text}`) }
    : undefined;
  return {
    registry,
    clock: { now: () => new Date() },
    ...(config.storageRoot !== undefined ? { storage: new FilesystemStorage(config.storageRoot) } : {}),
    ...(progress ? { progress } : {}),
  };
}

async function confirm(io: CliIo, question: string): Promise<boolean> {
  const prompt = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream });
  try {
    return /^y(es)?$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

async function loadPlan(config: CliConfig, ports: CleanupPorts): Promise<Plan> {
  if (config.planFile === undefined) {
    return (
      await makePlan(ports, {
        registryUrl: config.registryUrl,
        include: config.include,
        exclude: config.exclude,
        policy: config.policy,
        concurrency: config.concurrency,
      })
    ).plan;
  }
  let json: unknown;
  try {
    json = JSON.parse(await readFile(config.planFile, 'utf8'));
  } catch (error) {
    throw new UsageError([`--plan: ${config.planFile} cannot be read as JSON (${message(error)})`]);
  }
  let saved: Plan;
  try {
    saved = parseSavedPlan(json, `--plan: ${config.planFile}`);
  } catch (error) {
    throw new UsageError([message(error)]);
  }
  if (saved.registry !== config.registryUrl) {
    throw new UsageError([
      `--plan: ${config.planFile} was made for ${saved.registry}, not ${config.registryUrl}; plan again for this registry`,
    ]);
  }
  return saved;
}

async function execute(config: CliConfig, io: CliIo): Promise<number> {
  const deadline = AbortSignal.timeout(config.timeoutMs);
  const ports = buildPorts(config, io, deadline);
  const plan = await loadPlan(config, ports);
  if (ports.progress) io.stderr.write('\r\x1b[K');
  const failedRepositories = plan.repositories.filter((r) => r.error !== undefined);
  for (const repository of failedRepositories) {
    io.stderr.write(
      `error: repository ${repository.name} could not be scanned and is left alone: ${repository.error}\n`,
    );
  }
  const scanExit = failedRepositories.length > 0 ? EXIT.failed : EXIT.done;

  if (config.command === 'plan') {
    io.stdout.write(config.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlan(plan));
    return scanExit;
  }

  const units = plan.repositories.reduce((sum, r) => sum + r.deletions.length, 0);
  if (!config.json) io.stdout.write(renderPlan(plan));
  if (units === 0) {
    if (config.json)
      io.stdout.write(
        `${JSON.stringify({ plan, deletions: { deleted: [], skipped: [], failed: [] } }, null, 2)}\n`,
      );
    else io.stdout.write('Nothing to delete.\n');
    return scanExit;
  }
  if (!config.yes) {
    const question = `Delete ${plan.totals.manifestsDeleted} manifests (frees ${plan.reclaim.exact ? '' : 'at most '}${formatBytes(plan.reclaim.bytes)} after garbage collection)? [y/N] `;
    if (!(await confirm(io, question))) {
      io.stderr.write('Nothing deleted.\n');
      return EXIT.done;
    }
  }
  const report = await applyPlan(ports, plan, config.concurrency);
  if (ports.progress) io.stderr.write('\r\x1b[K');
  if (config.json) io.stdout.write(`${JSON.stringify({ plan, deletions: report }, null, 2)}\n`);
  else io.stdout.write(`\n${renderDeletionReport(report)}`);
  if (report.stoppedBy) io.stderr.write(`error: ${report.stoppedBy.message}\n`);
  return report.stoppedBy || report.failed.length > 0 ? EXIT.failed : scanExit;
}

/** The command line: parse, validate, run, print. Returns the exit code; never throws. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let config: CliConfig;
  try {
    const parsed = parseArgv(argv);
    if (parsed.values.help) {
      io.stdout.write(USAGE);
      return EXIT.done;
    }
    if (parsed.values.version) {
      const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
        version: string;
      };
      io.stdout.write(`${pkg.version}\n`);
      return EXIT.done;
    }
    if (parsed.command === 'clean' && !parsed.values.yes && !io.stdin.isTTY) {
      throw new UsageError(['clean deletes manifests: pass --yes to confirm when not running on a terminal']);
    }
    config = await loadCliConfig(parsed, {
      env: io.env,
      readFile: (path) => readFile(path, 'utf8'),
      readStdin: () => readAll(io.stdin),
      dockerCredentials: async (host) => {
        const found = await lookupDockerConfig(host, defaultDockerConfigPath(io.env));
        if (found.credentialHelper) return { helper: found.credentialHelper };
        return found.credentials ? { ...found.credentials } : undefined;
      },
    });
  } catch (error) {
    return usageFailure(io, error);
  }
  for (const warning of config.warnings) io.stderr.write(`warning: ${warning}\n`);
  try {
    return await execute(config, io);
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(io, error);
    if (error instanceof StorageRootError) return usageFailure(io, new UsageError([error.message]));
    io.stderr.write(`error: ${message(error)}\n`);
    return EXIT.failed;
  }
}

function usageFailure(io: CliIo, error: unknown): number {
  if (!(error instanceof UsageError)) {
    io.stderr.write(`error: ${message(error)}\n`);
    return EXIT.failed;
  }
  for (const problem of error.problems) io.stderr.write(`error: ${problem}\n`);
  io.stderr.write('Run registry-janitor --help for the options.\n');
  return EXIT.usage;
}
