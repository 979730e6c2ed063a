/** Catalog codes of the `csrf` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const CSRF_CODES = {} as const satisfies Record<string, CatalogEntry>;
