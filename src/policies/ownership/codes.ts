/** Catalog codes of the `ownership` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const OWNERSHIP_CODES = {} as const satisfies Record<string, CatalogEntry>;
