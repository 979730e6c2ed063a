/** Catalog codes of the `rbac` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const RBAC_CODES = {} as const satisfies Record<string, CatalogEntry>;
