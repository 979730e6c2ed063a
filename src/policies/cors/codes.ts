/** Catalog codes of the `cors` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const CORS_CODES = {} as const satisfies Record<string, CatalogEntry>;
