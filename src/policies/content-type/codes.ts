/** Catalog codes of the `content-type` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const CONTENT_TYPE_CODES = {} as const satisfies Record<string, CatalogEntry>;
