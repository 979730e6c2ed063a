/** What every `pinpoint` command is (src/cli/commands.ts lists them), and what several share. */

/** Parsed options (node:util parseArgs values). */
export type Values = Readonly<Record<string, string | boolean | undefined>>;

export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  run(values: Values, positionals: readonly string[]): Promise<number>;
}

/** All of standard input as UTF-8 (a key or password piped in, so it stays out of shell history). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
