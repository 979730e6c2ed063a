/** Catalog codes of the `jwt` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const JWT_CODES = {} as const satisfies Record<string, CatalogEntry>;
