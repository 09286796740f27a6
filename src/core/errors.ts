/**
 * What the compute core refuses, as typed errors: a code and the parameters the refusal is made
 * of, nothing of HTTP. The service's catalogue (src/errors.ts) turns each code into a status, a
 * title and a message from these parameters, so the texts live in one place and the parameters
 * survive a worker thread's structured clone as plain data.
 */

/** Sizes that do not fit together, by what does not fit. */
export type ShapeMismatch =
  | { readonly reason: 'noLayers' }
  | { readonly reason: 'emptyBias'; readonly layer: number }
  | { readonly reason: 'emptyWeights'; readonly layer: number }
  | { readonly reason: 'weightRows'; readonly layer: number; readonly rows: number; readonly out: number }
  | { readonly reason: 'layerChain'; readonly layer: number; readonly columns: number; readonly previousOut: number }
  | { readonly reason: 'ragged'; readonly field: string; readonly row: number; readonly length: number; readonly first: number }
  | { readonly reason: 'noData'; readonly field: string }
  | { readonly reason: 'inputColumns'; readonly columns: number; readonly d: number }
  | { readonly reason: 'targetColumns'; readonly columns: number; readonly k: number }
  | { readonly reason: 'targetRows'; readonly rows: number; readonly n: number }
  | { readonly reason: 'vectorLength'; readonly field: string; readonly length: number; readonly w: number }
  | { readonly reason: 'labelCount'; readonly count: number; readonly n: number }
  | { readonly reason: 'rows'; readonly start: number; readonly end: number; readonly w: number };

/** Targets outside the loss's domain. */
export type TargetOutOfDomain =
  | { readonly reason: 'probability'; readonly row: number; readonly column: number; readonly value: number }
  | { readonly reason: 'negative'; readonly row: number; readonly column: number; readonly value: number }
  | { readonly reason: 'rowSum'; readonly row: number; readonly sum: number }
  | { readonly reason: 'label'; readonly row: number; readonly value: number; readonly k: number }
  | { readonly reason: 'labelsLoss'; readonly loss: string };

/** A result that is not finite in float64. */
export type NonFiniteResult =
  | { readonly reason: 'entries'; readonly name: string; readonly count: number; readonly index: readonly number[]; readonly value: number }
  | { readonly reason: 'logDeterminant'; readonly value: number }
  | { readonly reason: 'woodbury' }
  | { readonly reason: 'eigen'; readonly info: number };

/**
 * What the core notes about an answer it still gives (the service renders each as a text in its
 * `warnings`, src/errors.ts): a code and the parameters.
 */
export interface CoreWarningParams {
  /** Central differences across the kink of an activation whose h′ jumps at 0 (relu, leaky-relu). */
  readonly FINITE_DIFFERENCE_KINK: {
    readonly activation: string;
    /** How many columns i of H have a difference w ± εe_i that changes the side of 0 of some pre-activation of such a layer. */
    readonly count: number;
    /** The first KINK_COLUMNS_LISTED of them. */
    readonly columns: readonly number[];
    readonly w: number;
    readonly step: number;
  };
}
export type CoreWarningCode = keyof CoreWarningParams;
export type CoreWarning = { readonly [C in CoreWarningCode]: { readonly code: C; readonly params: CoreWarningParams[C] } }[CoreWarningCode];

/** Every code the core throws, with its parameters. */
export interface CoreErrorParams {
  readonly SHAPE_MISMATCH: ShapeMismatch;
  readonly UNKNOWN_ACTIVATION: { readonly layer: number; readonly activation: string; readonly known: readonly string[] };
  readonly SOFTMAX_NOT_AT_OUTPUT: { readonly layer: number; readonly layers: number };
  readonly UNSUPPORTED_PAIRING: { readonly loss: string; readonly activation: string; readonly needs: readonly string[]; readonly losses: readonly string[] };
  readonly TARGET_OUT_OF_DOMAIN: TargetOutOfDomain;
  readonly INVALID_DAMPING: { readonly damping: number; readonly reason: 'notPositive' | 'subnormal' };
  readonly INVALID_SELECTION: { readonly reason: 'range' | 'duplicate'; readonly index: number; readonly layers: number };
  readonly UNSUPPORTED_METHOD:
    | { readonly reason: 'woodburyExact' | 'rowsStructure' }
    | { readonly reason: 'structureMethod' | 'rowsMethod'; readonly method: string };
  readonly NOT_POSITIVE_DEFINITE:
    | {
      readonly source: 'cholesky';
      readonly what: string;
      readonly damping: number;
      /** The order of the first leading minor that is not positive (LAPACK's info). */
      readonly minor: number;
      /** The smallest eigenvalue of the matrix without damping, where it was found. */
      readonly smallestEigenvalue?: number;
    }
    /** Conjugate gradients met a direction p with pᵀ(H + αI)p ≤ 0; `curvature` is that over pᵀp. */
    | { readonly source: 'cg'; readonly what: string; readonly damping: number; readonly curvature: number }
    /** An eigenvalue λμ of a Kronecker factor product with λμ + α ≤ 0. */
    | { readonly source: 'kfac'; readonly what: string; readonly damping: number; readonly smallestEigenvalue: number };
  /** An iterative solver stopped at its limit of products before reaching its tolerance. */
  readonly NOT_CONVERGED: {
    readonly method: 'lanczos' | 'cg';
    readonly iterations: number;
    /** The worst relative residual it had reached. */
    readonly residual: number;
    readonly tolerance: number;
    /** Eigenpairs or vectors asked for. */
    readonly wanted: number;
  };
  /** More eigenpairs asked for than there are parameters. */
  readonly INVALID_COUNT: { readonly count: number; readonly w: number };
  readonly NON_FINITE_RESULT: NonFiniteResult;
}

export type CoreErrorCode = keyof CoreErrorParams;

/** A refusal as plain data, its code and parameters together: what crosses a thread boundary. */
export type CoreErrorData = { readonly [C in CoreErrorCode]: { readonly code: C; readonly params: CoreErrorParams[C] } }[CoreErrorCode];

/** A refusal of the core: `code` and `params` are all there is to it (the message is the catalogue's). */
export class CoreError<C extends CoreErrorCode = CoreErrorCode> extends Error {
  constructor(readonly code: C, readonly params: CoreErrorParams[C]) {
    super(`${code} ${JSON.stringify(params)}`);
    this.name = 'CoreError';
  }

  /** The code and parameters as plain data. */
  data(): CoreErrorData {
    return { code: this.code, params: this.params } as CoreErrorData;
  }
}

/** Shorthand for the most common refusal: sizes that do not fit together. */
export function shapeError(params: ShapeMismatch): CoreError<'SHAPE_MISMATCH'> {
  return new CoreError('SHAPE_MISMATCH', params);
}
