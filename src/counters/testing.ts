/** Test helper for code over counter stores (rate-limit, ai-limits). */
import { afterEach } from 'node:test';
import { MemoryCounterStore } from './memory.ts';

/**
 * A factory of in-process stores for one test file: no background sweep (tests move the clock
 * themselves), and every store it made is closed after each test. Call once, at the file's top level.
 */
export function memoryStores(): () => MemoryCounterStore {
  const made: MemoryCounterStore[] = [];
  afterEach(() => {
    for (const s of made.splice(0)) s.close();
  });
  return () => {
    const s = new MemoryCounterStore({ sweepIntervalMs: 0 });
    made.push(s);
    return s;
  };
}
