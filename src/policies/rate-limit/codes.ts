/** Catalog codes of the `rate-limit` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const RATE_LIMIT_CODES = {} as const satisfies Record<string, CatalogEntry>;
