import { randomUUID } from 'node:crypto';

const VALID = /^[A-Za-z0-9._:-]{1,200}$/;

/** Keeps a well-formed incoming id (so ids join across hops); otherwise makes a UUIDv4. */
export function requestIdFor(incoming: string | string[] | undefined, trust: boolean): string {
  if (trust && typeof incoming === 'string' && VALID.test(incoming)) return incoming;
  return randomUUID();
}
