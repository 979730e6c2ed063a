/** Catalog codes of the `openapi-validate` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const OPENAPI_CODES = {} as const satisfies Record<string, CatalogEntry>;
