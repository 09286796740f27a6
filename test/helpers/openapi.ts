/** Reading the OpenAPI document in tests: local $refs (#/components/...) followed to what they name, and Redocly's lint. */
import { createConfig, lintFromString } from '@redocly/openapi-core';

/** The value a local JSON pointer (`#/components/schemas/Network`) names in `doc`, or undefined. */
export function pointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let v: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** `v`, or what its $ref names (followed until it is no reference); throws on a $ref that names nothing. */
export function deref<T = Record<string, unknown>>(doc: unknown, v: unknown): T {
  let out = v;
  for (let hops = 0; typeof out === 'object' && out !== null && typeof (out as { $ref?: unknown }).$ref === 'string'; hops++) {
    const ref = (out as { $ref: string }).$ref;
    const next = pointer(doc, ref);
    if (next === undefined || hops > 20) throw new Error(`$ref ${ref} names nothing in the document`);
    out = next;
  }
  return out as T;
}

/** Every $ref in `v`, with the JSON path where it stands. */
export function refs(v: unknown, path = '#'): { ref: string; at: string }[] {
  const out: { ref: string; at: string }[] = [];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...refs(x, `${path}/${i}`)));
  else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') out.push({ ref: x, at: path });
      else out.push(...refs(x, `${path}/${k}`));
    }
  }
  return out;
}

/** Redocly's recommended rules, and stricter ones where this document can meet them. */
export async function lint(text: string) {
  const config = await createConfig({
    extends: ['recommended'],
    rules: {
      'operation-operationId': 'error',
      'operation-operationId-unique': 'error',
      'operation-operationId-url-safe': 'error',
      'no-invalid-media-type-examples': 'error',
      'no-invalid-schema-examples': 'error',
      'no-required-schema-properties-undefined': 'error',
      'operation-4xx-problem-details-rfc7807': 'error',
      'component-name-unique': 'error',
      'no-unused-components': 'error',
      // no servers: clients resolve the paths against the document's own URL (OpenAPI's default, url '/')
      'no-empty-servers': 'off',
      'info-license': 'off',
      // GET /health refuses nothing
      'operation-4xx-response': 'off',
    },
  });
  const problems = await lintFromString({ source: text, absoluteRef: 'openapi.json', config });
  return problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
}

