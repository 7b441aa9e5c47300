import { writeFile } from 'node:fs/promises';
import { policySchemaText } from '../lambda/domain/policy-schema.js';

const target = new URL('../policy.schema.json', import.meta.url);
await writeFile(target, policySchemaText());
process.stdout.write(`wrote ${target.pathname}\n`);
