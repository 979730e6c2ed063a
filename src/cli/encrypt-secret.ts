/**
 * `pinpoint encrypt-secret`: encrypts a provider key for `ai.providers.<id>.keys[].encrypted`, so
 * the config file can be committed without the key in clear (src/ai/secrets.ts). The key to
 * encrypt is read from standard input only: an argument would sit in the shell history and in
 * the process list.
 */
import { readFileSync } from 'node:fs';
import { encryptSecret, parseSecretKey } from '../ai/secrets.ts';
import { readStdin, type Command } from './command.ts';
import { printJson } from './output.ts';

export const encryptSecretCmd: Command = {
  summary: 'encrypt a provider key (read from standard input) for ai.providers.*.keys[].encrypted',
  usage: 'pinpoint encrypt-secret [--key-file FILE | --key-env NAME (default PINPOINT_SECRET_KEY)] < key.txt',
  options: { 'key-file': { type: 'string' }, 'key-env': { type: 'string' } },
  run: async (v) => {
    let secretKey: Buffer;
    try {
      if (typeof v['key-file'] === 'string') secretKey = parseSecretKey(readFileSync(v['key-file'], 'utf8'));
      else {
        const name = typeof v['key-env'] === 'string' ? v['key-env'] : 'PINPOINT_SECRET_KEY';
        const text = process.env[name];
        if (text === undefined || text === '') {
          process.stderr.write(`pinpoint encrypt-secret: $${name} is not set (32 bytes, e.g. \`openssl rand -base64 32\`)\n`);
          return 2;
        }
        secretKey = parseSecretKey(text);
      }
    } catch (err) {
      process.stderr.write(`pinpoint encrypt-secret: ${(err as Error).message}\n`);
      return 2;
    }
    const plain = (await readStdin()).trim();
    if (plain === '') {
      process.stderr.write('pinpoint encrypt-secret: nothing on standard input\n');
      return 2;
    }
    const out = encryptSecret(plain, secretKey);
    if (v.json === true) printJson({ encrypted: out });
    else process.stdout.write(`${out}\n`);
    return 0;
  },
};
