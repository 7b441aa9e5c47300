import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface HelperOutcome {
  readonly stdout?: string;
  readonly stderr?: string;
  readonly exitCode: number;
  /** Waits this long in a child process (which keeps its pipes open) before answering. */
  readonly hangSeconds?: number;
}

export interface HelperBehaviour {
  /** Credentials it holds, by the server address written on its standard input. */
  readonly answers?: Record<string, { readonly Username: string; readonly Secret: string }>;
  /** What it does for any other address; by default what Docker's helpers do: "credentials not found". */
  readonly otherwise?: HelperOutcome;
}

export interface StandInHelper {
  /** The suffix Docker's config names: the executable is `docker-credential-<name>`. */
  readonly name: string;
  readonly dir: string;
  /** An environment whose PATH finds the helper first. */
  readonly env: NodeJS.ProcessEnv;
  /** The server addresses it was asked for, in order. */
  requests(): Promise<string[]>;
  remove(): Promise<void>;
}

const NOT_FOUND: HelperOutcome = { stdout: 'credentials not found in native keychain\n', exitCode: 1 };

// Everything the test decides is read from files next to the script, so no test data is ever shell-quoted.
const SCRIPT = `#!/bin/sh
here=$(dirname "$0")
address=$(cat)
printf '%s\\n' "$address" >> "$here/requests"
for key in "$here"/answer-*.address; do
  [ -f "$key" ] || continue
  if [ "$address" = "$(cat "$key")" ]; then cat "\${key%.address}.json"; exit 0; fi
done
[ -f "$here/hang" ] && sleep "$(cat "$here/hang")"
[ -f "$here/stderr" ] && cat "$here/stderr" >&2
[ -f "$here/stdout" ] && cat "$here/stdout"
exit "$(cat "$here/exit")"
`;

/** Writes a `docker-credential-<name>` shell script to a new temporary folder. */
export async function installCredentialHelper(
  behaviour: HelperBehaviour,
  name = 'fake',
): Promise<StandInHelper> {
  const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-credential-helper-'));
  const executable = join(dir, `docker-credential-${name}`);
  await writeFile(executable, SCRIPT);
  await chmod(executable, 0o755);
  let index = 0;
  for (const [address, answer] of Object.entries(behaviour.answers ?? {})) {
    await writeFile(join(dir, `answer-${index}.address`), address);
    await writeFile(join(dir, `answer-${index}.json`), JSON.stringify({ ServerURL: address, ...answer }));
    index++;
  }
  const otherwise = behaviour.otherwise ?? NOT_FOUND;
  await writeFile(join(dir, 'exit'), String(otherwise.exitCode));
  if (otherwise.stdout !== undefined) await writeFile(join(dir, 'stdout'), otherwise.stdout);
  if (otherwise.stderr !== undefined) await writeFile(join(dir, 'stderr'), otherwise.stderr);
  if (otherwise.hangSeconds !== undefined) await writeFile(join(dir, 'hang'), String(otherwise.hangSeconds));
  return {
    name,
    dir,
    env: { PATH: [dir, process.env.PATH ?? '/usr/bin:/bin'].join(delimiter) },
    requests: async () => {
      const text = await readFile(join(dir, 'requests'), 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
