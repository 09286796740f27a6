/**
 * Building blocks shared by the request and answer schemas: the network, arrays of numbers, the
 * loss, the problem+json error body and the binary answer forms. Each zod schema here is the
 * single source of a type, its validation and its OpenAPI description.
 *
 * Arrays of numbers reach validation dense (a DenseArray: the JSON parser and the .npy parts make
 * them), so a schema checks an array by its shape, once, whatever its length; what the OpenAPI
 * document shows is the JSON form, nested arrays of numbers.
 */
import { z } from 'zod';
import { ACTIVATION_NAMES } from '../src/core/activations.ts';
import { LOSS_NAMES, REDUCTIONS } from '../src/core/losses.ts';
import { DenseArray } from '../src/http/dense.ts';
import { MEDIA_TYPES } from '../src/http/representation.ts';
import { requestComponent } from './components.ts';

export { ProblemSchema, errorResponses, refusals } from './problem.ts';

/** A JSON value's kind, for a message. */
function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof DenseArray) return `a ${v.ndim}-D array of numbers`;
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Where a small JS array (one the parser did not make dense: it is empty or holds non-numbers) first goes wrong. */
function firstWrong(v: unknown[], ndim: number, path: (string | number)[] = []): { path: (string | number)[]; message: string } {
  if (v.length === 0) return { path, message: ndim === 1 ? 'expected at least one number' : 'expected at least one row' };
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (ndim === 1) {
      if (typeof x !== 'number') return { path: [...path, i], message: `expected a number, received ${kind(x)}` };
    } else if (x instanceof DenseArray) {
      if (x.ndim !== ndim - 1) return { path: [...path, i], message: `expected ${ndim - 1}-D rows, received ${kind(x)}` };
    } else if (!Array.isArray(x)) return { path: [...path, i], message: `expected an array, received ${kind(x)}` };
    else return firstWrong(x, ndim - 1, [...path, i]);
  }
  return { path, message: 'expected an array of numbers' };
}

/**
 * An array of numbers of `ndim` dimensions, each of at least one entry: valid exactly when it
 * arrived dense with that shape. `doc` is its JSON Schema in the OpenAPI document.
 */
function numberArray(ndim: 1 | 2) {
  const items = { type: 'number' };
  const doc = ndim === 1
    ? { type: 'array', minItems: 1, items }
    : { type: 'array', minItems: 1, items: { type: 'array', minItems: 1, items } };
  return z
    .unknown()
    .transform((v, ctx) => {
      if (v instanceof DenseArray && v.ndim === ndim && v.shape.every((s) => s > 0)) return v;
      if (v instanceof DenseArray) {
        ctx.addIssue({
          code: 'custom',
          message: v.ndim !== ndim
            ? `expected a ${ndim}-D array (${ndim === 1 ? 'a list of numbers' : 'rows of numbers'}), received a ${v.ndim}-D array`
            : `expected at least one ${v.shape[0] === 0 ? (ndim === 1 ? 'number' : 'row') : 'number in each row'}`,
        });
      } else if (Array.isArray(v)) {
        const wrong = firstWrong(v, ndim);
        ctx.addIssue({ code: 'custom', path: wrong.path, message: wrong.message });
      } else {
        ctx.addIssue({ code: 'custom', message: `expected ${ndim === 1 ? 'an array of numbers' : 'an array of rows of numbers'}, received ${kind(v)}` });
      }
      return z.NEVER;
    })
    .meta(doc);
}

/** Arrays of numbers in answers, documented in their JSON form (what src/http/representation.ts writes). */
export const JsonVectorSchema = z.array(z.number()).min(1);
export const JsonMatrixSchema = z.array(JsonVectorSchema).min(1);

/** A list of numbers (W entries, a bias, ...). */
export const VectorSchema = numberArray(1);
/** Rows of numbers, all of one length. */
export const MatrixSchema = numberArray(2);

/** A list of integers (layer indices), small; its entries come back as numbers. */
export const IndexListSchema = VectorSchema.transform((v, ctx) => {
  const out = Array.from(v.data);
  const bad = out.findIndex((x) => !Number.isInteger(x));
  if (bad >= 0) {
    ctx.addIssue({ code: 'custom', path: [bad], message: `expected an integer, received ${out[bad]}` });
    return z.NEVER;
  }
  return out;
}).meta({ type: 'array', minItems: 1, items: { type: 'integer' } });

export const ActivationSchema = requestComponent('Activation', z.enum(ACTIVATION_NAMES).describe(
  "Activation h applied after the layer's affine map; 'softmax' only on the output layer.",
));

export const LayerSchema = requestComponent('Layer', z.strictObject({
  weights: MatrixSchema.describe('W, out × in (as torch.nn.Linear.weight): one row per output unit.'),
  bias: VectorSchema.nullable().optional().describe('b, one entry per output unit; null or absent for a layer without bias (nn.Linear(..., bias=False)), whose parameters are its weights alone.'),
  activation: ActivationSchema,
}).describe('One layer, as torch.nn.Linear followed by its activation: a = W z + b, then h(a).'));

export const NetworkSchema = requestComponent('Network', z
  .strictObject({
    layers: z.array(LayerSchema).min(1).describe('Layers from input to output; layer l computes a = W z + b, then z′ = h(a).'),
  })
  .describe(
    'A multilayer perceptron. Parameter order everywhere (rows and columns of every Hessian, entries of every vector): ' +
      'layer by layer, weights row-major, then bias — the order of torch.nn.utils.parameters_to_vector.',
  ));

export const LossSchema = requestComponent('Loss', z
  .enum(LOSS_NAMES)
  .describe(
    "Error function, a sum over data points (or their mean, with reduction 'mean'): 'sum-of-squares' ½‖y − t‖² (any output activation), " +
      "'cross-entropy' (sigmoid outputs, or logits from an identity output layer as torch.nn.BCEWithLogitsLoss; targets in [0, 1]), " +
      "'softmax-cross-entropy' (softmax outputs, or logits from an identity output layer as torch.nn.CrossEntropyLoss; rows of targets summing to 1, or labels).",
  ));

export const InputsSchema = requestComponent('Inputs', MatrixSchema.describe('N × D: one data point a row, D = the first layer’s in (a multipart body may send them as a .npy part).'));
export const TargetsSchema = requestComponent('Targets', MatrixSchema.describe('N × K: one target a row, K = the last layer’s out. Give targets or labels, not both (a multipart body may send them as a .npy part).'));
export const LabelsSchema = requestComponent('Labels', VectorSchema.describe(
  "N class indices in [0, K), for 'softmax-cross-entropy', in place of targets: the one-hot rows they stand for (a multipart body may send them as an integer .npy part).",
));
export const ReductionSchema = requestComponent('Reduction', z
  .enum(REDUCTIONS)
  .default('sum')
  .describe("'sum' (E = Σ_n E_n) or 'mean' (E / N, PyTorch's default): every gradient, Hessian, product and factor scales by 1/N, inverses are of the scaled Hessian plus αI."));
export const ParametersSchema = requestComponent('ParameterSelection', z
  .strictObject({
    layers: IndexListSchema.describe('Indices into network.layers, 0-based; negative ones count from the end (−1 is the output layer).'),
  })
  .describe("The layers whose parameters (weights, then bias) are differentiated, in the network's own order whatever the list's; the others are held fixed. Absent: all."));

/** The fields of every request that computes on a network, data and a loss. */
export const problemFields = {
  network: NetworkSchema,
  inputs: InputsSchema,
  targets: TargetsSchema.optional(),
  labels: LabelsSchema.optional(),
  loss: LossSchema,
  reduction: ReductionSchema,
  parameters: ParametersSchema.optional(),
};

/** What problemFields validate to. */
export type ProblemRequest = z.output<z.ZodObject<typeof problemFields>>;

/** Exactly one of targets and labels, and labels only for softmax-cross-entropy. */
export function checkTargets(v: { targets?: unknown; labels?: unknown; loss: string }, ctx: z.RefinementCtx): void {
  if ((v.targets === undefined) === (v.labels === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [v.targets === undefined ? 'targets' : 'labels'],
      message: v.targets === undefined ? 'give targets (N × K) or, for softmax-cross-entropy, labels (N class indices)' : 'give targets or labels, not both',
    });
  } else if (v.labels !== undefined && v.loss !== 'softmax-cross-entropy') {
    ctx.addIssue({ code: 'custom', path: ['labels'], message: `labels are class indices for loss 'softmax-cross-entropy'; with loss '${v.loss}' send targets` });
  }
}

export const BinaryBodySchema = z.string().meta({ format: 'binary' });

/** The network of the API guide: 2 inputs, 3 tanh units, 1 linear output; W = 13. */
export const EXAMPLE_NETWORK = {
  layers: [
    { weights: [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6]], bias: [0.0, 0.1, -0.1], activation: 'tanh' },
    { weights: [[0.2, -0.1, 0.3]], bias: [0.05], activation: 'identity' },
  ],
};
export const EXAMPLE_INPUTS = [[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]];
export const EXAMPLE_TARGETS = [[0.3], [-0.2], [0.1]];

/**
 * A 200 answer in its forms: the JSON object, a NumPy .npy file and raw float64 of its principal
 * array, and .npz (for answers that come as several arrays, e.g. block-diagonal). The binary forms'
 * headers (src/http/representation.ts's ANSWER_HEADERS, those whose field the JSON answer has) are
 * listed by src/plugins/swagger.ts. `what` names the principal array and its shape for the description;
 * `json` should be an answer component (schemas/components.ts).
 */
export function arrayAnswer<T extends z.ZodType>(json: T, what: string) {
  return {
    description:
      `JSON by default. With \`Accept: ${MEDIA_TYPES.npy}\`, ${what} as a NumPy .npy file (format 1.0, \`<f8\`, C order), ` +
      `readable with \`numpy.load(io.BytesIO(body))\`. With \`Accept: ${MEDIA_TYPES.raw}\`, the same array as raw ` +
      'little-endian float64 in C order. Binary answers carry the shape in X-Array-Shape (comma-separated), the ' +
      "array's JSON field name in X-Array-Name, and the answer's scalar fields in the headers below; they are " +
      'streamed with an exact Content-Length.',
    content: everyForm(json),
  };
}

/** The content of an answer in every form: `json`, and .npy, raw float64 and .npz as binary bodies (a job's result offers each its endpoint does). */
export function everyForm<T extends z.ZodType>(json: T) {
  return {
    [MEDIA_TYPES.json]: { schema: json },
    [MEDIA_TYPES.npy]: { schema: BinaryBodySchema },
    [MEDIA_TYPES.raw]: { schema: BinaryBodySchema },
    [MEDIA_TYPES.npz]: { schema: BinaryBodySchema },
  };
}

/**
 * A 200 answer made of several arrays: the JSON object, or a NumPy .npz file (an uncompressed zip
 * of .npy members, readable with numpy.load(io.BytesIO(body))). `members` names them (in code spans:
 * descriptions are CommonMark, where a bare `<l>` is an HTML tag).
 */
export function multiArrayAnswer<T extends z.ZodType>(json: T, members: string) {
  return {
    description:
      `JSON by default. With \`Accept: ${MEDIA_TYPES.npz}\`, a NumPy .npz file (an uncompressed zip of .npy members, \`<f8\`, C order; ` +
      `\`numpy.load(io.BytesIO(body))\` opens it) with ${members}; the answer's scalar fields in the headers below. Streamed with an exact Content-Length.`,
    content: {
      [MEDIA_TYPES.json]: { schema: json },
      [MEDIA_TYPES.npz]: { schema: BinaryBodySchema },
    },
  };
}
