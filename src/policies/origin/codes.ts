/** Catalog codes of the `origin` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const ORIGIN_CODES = {} as const satisfies Record<string, CatalogEntry>;
