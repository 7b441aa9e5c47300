// The `docker` command of the tests: maps the Docker CLI onto a local test registry. Installed by
// docker-stand-in.ts, which passes the path of its JSON settings as the first argument.
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';

const [settingsPath, ...argv] = process.argv.slice(2);
const settings = JSON.parse(readFileSync(settingsPath, 'utf8'));

const REGISTRY_BINARIES = new Set(['/bin/registry', 'bin/registry', 'registry']);
const CONFIG_PATHS = new Set(['/etc/docker/registry/config.yml', '/etc/distribution/config.yml']);
const STORAGE_ROOT = '/var/lib/registry';
const REGISTRY_URL = 'http://127.0.0.1:5000/';
// What the registry:2 and registry:3 images have besides the registry binary (busybox applets).
const IMAGE_COMMANDS = new Set(['sh', 'find', 'du', 'stat', 'wget', 'df', 'cat', 'grep', 'test', 'ls']);

function fail(message, code = 1) {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function control(action) {
  const res = await fetch(`${settings.controlUrl}/${action}`, {
    method: action === 'state' ? 'GET' : 'POST',
  });
  const text = await res.text();
  if (!res.ok) fail(`Error response from daemon: ${text}`);
  return text;
}

async function registryRunning() {
  return JSON.parse(await control('state')).running === true;
}

function mapPath(arg) {
  if (CONFIG_PATHS.has(arg)) return settings.configPath;
  if (arg === STORAGE_ROOT || arg.startsWith(`${STORAGE_ROOT}/`))
    return settings.root + arg.slice(STORAGE_ROOT.length);
  return arg;
}

function mapArgument(arg) {
  if (arg.startsWith(REGISTRY_URL)) return `${settings.registryUrl}/${arg.slice(REGISTRY_URL.length)}`;
  return mapPath(arg);
}

function knownContainer(name, prefix = 'Error response from daemon: No such container') {
  if (name !== settings.container) fail(`${prefix}: ${name}`);
}

function envEntries(lines) {
  const env = {};
  for (const line of lines) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

/** Runs a command "in the container": here, with the container's paths mapped onto the test registry. */
async function runInContainer(command, args, { cwd, env }) {
  let file = command;
  let fileArgs = args.map(mapArgument);
  if (REGISTRY_BINARIES.has(command)) {
    file = 'docker-registry';
    if (args[0] === '--version' && settings.registryVersion) {
      process.stdout.write(`${settings.registryVersion}\n`);
      process.exit(0);
    }
    if (args[0] === 'garbage-collect' && settings.failGarbageCollect) {
      fail('failed to garbage collect: the test asked this collection to fail');
    }
    if (args[0] === 'garbage-collect' && settings.hookGarbageCollect) await control('gc-starting');
    if (args[0] === 'garbage-collect' && settings.noopGarbageCollect) fileArgs = ['help'];
    if (
      args[0] === 'garbage-collect' &&
      settings.holdGarbageCollect &&
      (await control('gc-hold')) === 'hold'
    ) {
      // Collects only once the test releases it; until then it waits, to be killed or released.
      await control('gc-released');
    }
  } else if (!IMAGE_COMMANDS.has(command)) {
    fail(
      `OCI runtime exec failed: exec failed: unable to start container process: exec: "${command}": executable file not found in $PATH: unknown`,
      127,
    );
  }
  // busybox wget tries once; GNU wget would retry a timed-out request twenty times.
  if (command === 'wget') fileArgs = ['--tries=1', ...fileArgs];
  const child = spawn(file, fileArgs, {
    stdio: 'inherit',
    cwd: cwd === undefined ? undefined : mapPath(cwd),
    env: { ...env, PATH: process.env.PATH },
  });
  child.on('error', (err) => fail(`exec ${command}: ${err.message}`, 126));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}

function takeOptions(args, withValue, flags) {
  const options = {};
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('-')) break;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (withValue.has(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined) fail(`flag needs an argument: ${name}`, 125);
      options[name] = [...(options[name] ?? []), value];
    } else if (flags.has(name)) {
      options[name] = [true];
    } else {
      fail(`unknown flag: ${name}`, 125);
    }
  }
  return { options, rest: args.slice(i) };
}

async function dockerExec(args) {
  const { options, rest } = takeOptions(
    args,
    new Set(['-w', '--workdir', '-e', '--env', '-u', '--user']),
    new Set(['-i', '--interactive', '-t', '--tty', '-it']),
  );
  const [container, command, ...commandArgs] = rest;
  if (container === undefined || command === undefined) fail('"docker exec" requires at least 2 arguments.');
  knownContainer(container);
  if (!(await registryRunning()))
    fail(`Error response from daemon: container ${settings.containerId} is not running`);
  const env = envEntries([...settings.env, ...(options['-e'] ?? []), ...(options['--env'] ?? [])]);
  await runInContainer(command, commandArgs, { cwd: (options['-w'] ?? options['--workdir'])?.[0], env });
}

function parseRun(args) {
  const { options, rest } = takeOptions(
    args,
    new Set(['--name', '--volumes-from', '--env-file', '--entrypoint', '-e', '--env', '--network']),
    new Set(['--rm', '-i', '-t', '-it']),
  );
  const fileLines = (options['--env-file'] ?? []).flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#')),
  );
  return { options, rest, envLines: [...fileLines, ...(options['-e'] ?? []), ...(options['--env'] ?? [])] };
}

async function dockerRun({ options, rest, envLines }) {
  const [image, ...imageArgs] = rest;
  if (image === undefined) fail('"docker run" requires at least 1 argument.', 125);
  if (image !== settings.image && image !== settings.imageId) {
    fail(
      `Unable to find image '${image}' locally\ndocker: Error response from daemon: pull access denied.`,
      125,
    );
  }
  const from = options['--volumes-from'] ?? [];
  if (from.length !== 1)
    fail('the stand-in runs the registry image only with --volumes-from <container>', 125);
  knownContainer(from[0]);
  const env = envEntries(envLines);
  const entrypoint = options['--entrypoint']?.[0];
  if (entrypoint !== undefined) {
    await runInContainer(entrypoint, imageArgs, { env });
    return;
  }
  // The registry image's entrypoint: `serve`, `garbage-collect`, `help` and flags go to the registry binary.
  const [first, ...others] = imageArgs;
  if (first === undefined)
    await runInContainer('registry', ['serve', '/etc/docker/registry/config.yml'], { env });
  else if (/\.ya?ml$/.test(first)) await runInContainer('registry', ['serve', ...imageArgs], { env });
  else if (['serve', 'garbage-collect', 'help'].includes(first) || first.startsWith('-')) {
    await runInContainer('registry', imageArgs, { env });
  } else await runInContainer(first, others, { env });
}

async function dockerInspect(args) {
  const { options, rest } = takeOptions(args, new Set(['-f', '--format', '--type']), new Set());
  const format = (options['-f'] ?? options['--format'])?.[0];
  if (rest.length === 0) fail('"docker inspect" requires at least 1 argument.');
  for (const name of rest) knownContainer(name, 'Error: No such object');
  const running = await registryRunning();
  const fields = {
    '{{.State.Running}}': `${running}\n`,
    '{{.Config.Image}}': `${settings.image}\n`,
    '{{.Image}}': `${settings.imageId}\n`,
    '{{range .Config.Env}}{{println .}}{{end}}': `${settings.env.map((line) => `${line}\n`).join('')}\n`,
    // The volume holding /var/lib/registry is the test registry's storage root.
    [`{{range .Mounts}}{{if eq .Destination "${STORAGE_ROOT}"}}{{.Source}}{{end}}{{end}}`]: `${settings.root}\n`,
  };
  if (format === undefined || !(format in fields)) {
    fail(`template: :1: the stand-in does not know the format ${JSON.stringify(format)}`);
  }
  for (const _ of rest) process.stdout.write(fields[format]);
}

async function lifecycle(verb, args) {
  const { rest } = takeOptions(args, new Set(['-t', '--time', '-s', '--signal']), new Set(['-a', '-i']));
  if (rest.length === 0) fail(`"docker ${verb}" requires at least 1 argument.`);
  for (const name of rest) {
    knownContainer(name);
    await control(verb);
    process.stdout.write(`${name}\n`);
  }
}

const [verb, ...rest] = argv;
const running = verb === undefined ? false : await registryRunning();
const run = verb === 'run' ? parseRun(rest) : undefined;
const record = { argv, registryRunning: running, ...(run ? { env: run.envLines } : {}) };
appendFileSync(settings.callLog, `${JSON.stringify(record)}\n`);
if (settings.failEveryCall !== undefined && verb !== '--version') fail(settings.failEveryCall);

switch (verb) {
  case 'exec':
    await dockerExec(rest);
    break;
  case 'run':
    await dockerRun(run);
    break;
  case 'inspect':
    await dockerInspect(rest);
    break;
  case 'restart':
  case 'stop':
  case 'start':
    await lifecycle(verb, rest);
    break;
  case 'rm':
    break;
  case '--version':
  case 'version':
    process.stdout.write('Docker version 0.0.0-stand-in\n');
    break;
  default:
    fail(`docker stand-in: unsupported command ${JSON.stringify(argv)}`);
}
