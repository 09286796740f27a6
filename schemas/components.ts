/**
 * The named schemas of the OpenAPI document: each one is defined once, under components.schemas, and
 * referenced with $ref wherever it occurs (request bodies, answers, the fields of other components),
 * so that generated clients get one type per concept with a readable name.
 *
 * A schema becomes a component by being wrapped where it is made:
 *
 *     export const NetworkSchema = requestComponent('Network', z.strictObject({ ... }));
 *     export const HealthSchema = answerComponent('Health', z.object({ ... }));
 *
 * Request components are documented as the service reads them (zod's input side: a field with a
 * default is optional and shows it), answer components as the service writes them (output side).
 * Names are PascalCase nouns, unique across both sides: `<Thing>Request` for a request body,
 * `<Thing>Answer` for a 200 answer (one component per variant where an answer's fields depend on the
 * method, joined by `oneOf`), plain nouns for the parts (`Network`, `Layer`, `Loss`, `Problem`).
 * Validation is not affected: the registries only name schemas for the document.
 *
 * A request body may carry named examples, which Swagger UI offers in a list and sends with "Try it
 * out"; each must succeed as it stands (test/routes/openapi.test.ts sends them). The answer examples
 * shown beside them are the service's own answers to them (schemas/answer-examples.ts, written by
 * `npm run openapi`).
 */
import type { z } from 'zod';

/** An OpenAPI Example Object: a short summary for Swagger UI's list and the value. */
export interface NamedExample {
  readonly summary: string;
  readonly description?: string;
  readonly value: Readonly<Record<string, unknown>>;
}
export type NamedExamples = Readonly<Record<string, NamedExample>>;

export type Side = 'request' | 'answer';

export interface Component {
  readonly id: string;
  readonly side: Side;
  readonly schema: z.ZodType;
  readonly examples?: NamedExamples;
}

const byId = new Map<string, Component>();
const bySchema = new Map<z.ZodType, Component>();

function register<T extends z.ZodType>(id: string, side: Side, schema: T, examples?: NamedExamples): T {
  if (!/^[A-Z][A-Za-z0-9]*$/.test(id)) throw new Error(`component name '${id}': use a PascalCase noun (docs/api-conventions.md)`);
  if (byId.has(id)) throw new Error(`component name '${id}' is given twice: each concept is defined once`);
  if (bySchema.has(schema)) throw new Error(`schema registered twice, as '${bySchema.get(schema)?.id}' and '${id}'`);
  const c: Component = { id, side, schema, examples };
  byId.set(id, c);
  bySchema.set(schema, c);
  return schema;
}

/** Names `schema` as the request-side component `id`, with its named examples (for request bodies). */
export function requestComponent<T extends z.ZodType>(id: string, schema: T, examples?: NamedExamples): T {
  return register(id, 'request', schema, examples);
}

/** Names `schema` as the answer-side component `id`. */
export function answerComponent<T extends z.ZodType>(id: string, schema: T): T {
  return register(id, 'answer', schema);
}

/** The component `schema` is, if it is one. */
export function componentOf(schema: unknown): Component | undefined {
  return bySchema.get(schema as z.ZodType);
}

/** Every component of one side, in the order they were made. */
export function components(side: Side): Component[] {
  return [...byId.values()].filter((c) => c.side === side);
}
