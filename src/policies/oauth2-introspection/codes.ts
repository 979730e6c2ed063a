/** Catalog codes of the `oauth2-introspection` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const INTROSPECTION_CODES = {} as const satisfies Record<string, CatalogEntry>;
