/** Writes the generated references: docs/errors.md and schema/pinpoint.schema.json. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderJsonSchema } from '../src/config/json-schema.ts';
import { renderErrorReference } from '../src/errors/reference.ts';
import { renderConfigReference } from '../src/config/reference.ts';

const root = path.resolve(import.meta.dirname, '..');
writeFileSync(path.join(root, 'docs/errors.md'), renderErrorReference());
writeFileSync(path.join(root, 'schema/pinpoint.schema.json'), renderJsonSchema());
writeFileSync(path.join(root, 'docs/configuration.md'), renderConfigReference());
process.stdout.write('wrote docs/errors.md, docs/configuration.md and schema/pinpoint.schema.json\n');
