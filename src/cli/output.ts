/** Terminal output helpers: colour only on a TTY and never when NO_COLOR is set (no-color.org). */
const useColour = process.stdout.isTTY && (process.env.NO_COLOR ?? '') === '';

function wrap(code: number): (s: string) => string {
  return (s) => (useColour ? `\u001b[${code}m${s}\u001b[0m` : s);
}

export const red = wrap(31);
export const green = wrap(32);
export const yellow = wrap(33);
export const bold = wrap(1);
export const dim = wrap(2);

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
