import packageJson from '../package.json' with { type: 'json' };
import { type CliIo, EXIT, guard, outputWidth, usageFailure } from './cli-io.js';
import {
  COMMANDS,
  type Command,
  commandHelp,
  generalHelp,
  type ParsedArgs,
  parseArgv,
  UsageError,
  unknownWord,
} from './command-line.js';
import { Redactor } from './redact.js';

export { type CliIo, EXIT } from './cli-io.js';

/** What `help`, `--help` and `--version` print, when they were asked for. */
function helpText(parsed: ParsedArgs, width: number): { text: string; exit: number } | undefined {
  const known = (word: string | undefined): word is Command => COMMANDS.includes(word as Command);
  if (parsed.command === 'help') {
    const topic = parsed.rest[0];
    if (topic === undefined) return { text: generalHelp(width), exit: EXIT.done };
    if (known(topic)) return { text: commandHelp(topic, width), exit: EXIT.done };
    throw new UsageError([`help: ${unknownWord('command', topic, COMMANDS)}`]);
  }
  if (parsed.values.help) {
    return {
      text: known(parsed.command) ? commandHelp(parsed.command, width) : generalHelp(width),
      exit: EXIT.done,
    };
  }
  if (parsed.values.version) return { text: `${packageJson.version}\n`, exit: EXIT.done };
  return undefined;
}

/**
 * The command line: parse, validate, run, print. Returns the exit code; never throws. Everything it prints
 * goes through one Redactor, which knows the run's password and the tokens the registry client obtains.
 */
export async function run(argv: readonly string[], terminal: CliIo): Promise<number> {
  const redactor = new Redactor();
  const { REGISTRY_USERNAME: username = '', REGISTRY_PASSWORD: password } = terminal.env;
  if (password !== undefined) redactor.addCredentials({ username, password });
  const io = guard(terminal, redactor);
  const width = outputWidth(io);
  if (argv.length === 0) {
    io.stderr.write(generalHelp(width));
    return EXIT.usage;
  }
  let parsed: ParsedArgs | undefined;
  try {
    parsed = parseArgv(argv);
    const help = helpText(parsed, width);
    if (help) {
      io.stdout.write(help.text);
      return help.exit;
    }
    // The engine is loaded only for a command to run: help and --version start without it.
    const { runCommand } = await import('./commands.js');
    return runCommand(parsed, argv, io, redactor, width);
  } catch (error) {
    return usageFailure(io, error, parsed?.command ?? argv.find((arg) => !arg.startsWith('-')));
  }
}
