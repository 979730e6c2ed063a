/** Catalog codes of the `basic-auth` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const BASIC_AUTH_CODES = {} as const satisfies Record<string, CatalogEntry>;
