/**
 * The edge's helpers from a validated body to a CurvatureTask: the same for JSON and multipart
 * bodies, since both arrive with their arrays dense (DenseArray). Nothing is copied; the arrays'
 * buffers then move to a worker thread with the task. Each route builds its own task with these.
 */
import type { z } from 'zod';
import type { Matrix, NetworkData, ProblemData } from '../core/index.ts';
import type { NetworkSchema, ProblemRequest } from '../../schemas/common.ts';
import type { DenseArray } from './dense.ts';

/** A validated 2-D array as the core's row-major Matrix. */
export function matrix(a: DenseArray): Matrix {
  return { rows: a.shape[0], cols: a.shape[1], data: a.data };
}

/** The network, with the layers whose parameters are asked for. */
export function network(spec: z.output<typeof NetworkSchema>, parameters?: { layers: number[] }): NetworkData {
  return { layers: spec.layers.map((l) => ({ weights: matrix(l.weights), bias: l.bias?.data ?? null, activation: l.activation })), parameters: parameters?.layers };
}

/** The network, data and loss every curvature request has (the schema has made sure there are targets or labels). */
export function problem(body: ProblemRequest): ProblemData {
  const targets = body.labels !== undefined ? { labels: body.labels.data } : matrix(body.targets!);
  return { network: network(body.network, body.parameters), inputs: matrix(body.inputs), targets, loss: body.loss, reduction: body.reduction };
}
