/**
 * `pinpoint` command line. Every command takes --json for machine-readable output.
 *
 * Exit codes (docs/cli.md):
 *   0  success
 *   1  the command ran and found a problem (invalid config, no such request id)
 *   2  usage error (unknown command or option)
 *   3  runtime failure (cannot listen, cannot open the call log, wrong Node version)
 */
import { parseArgs } from 'node:util';
import { COMMANDS } from './commands.ts';

export const EXIT = { ok: 0, problem: 1, usage: 2, runtime: 3 } as const;

const HELP = `pinpoint — API gateway where no denied request is a mystery

Usage: pinpoint <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c], _, all) => `  ${name.padEnd(Math.max(...all.map(([n]) => n.length)))}  ${c.summary}`)
  .join('\n')}

Common options:
  --config FILE   config file (default: $PINPOINT_CONFIG or ./pinpoint.yaml)
  --json          machine-readable output
  -h, --help      help for a command
`;

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(HELP);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  // The conventional spellings of `pinpoint version`.
  const cmd = COMMANDS[name === '--version' || name === '-V' ? 'version' : name];
  if (cmd === undefined) {
    process.stderr.write(`pinpoint: unknown command "${name}"\n\n${HELP}`);
    return EXIT.usage;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...rest],
      options: { ...cmd.options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`pinpoint ${name}: ${(err as Error).message}\n\n${cmd.usage}\n`);
    return EXIT.usage;
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${cmd.usage}\n`);
    return EXIT.ok;
  }
  return cmd.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
}
