import { z } from 'zod';
import { policyFileSchema } from './policy.js';

/** The JSON Schema of policy files, as shipped in policy.schema.json for editors to complete. */
export function policySchemaText(): string {
  const schema = z.toJSONSchema(policyFileSchema, { target: 'draft-2020-12', io: 'input' });
  return `${JSON.stringify({ ...schema, title: 'registry-janitor policy' }, null, 2)}\n`;
}
