/** Catalog codes of the `required-headers` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const REQUIRED_HEADERS_CODES = {} as const satisfies Record<string, CatalogEntry>;
