/**
 * The edge's one step from a validated body to a CurvatureTask: the same for JSON and multipart
 * bodies, since both arrive with their arrays dense (DenseArray). Nothing is copied; the arrays'
 * buffers then move to a worker thread with the task.
 */
import type { z } from 'zod';
import type { Matrix } from '../core/index.ts';
import type { CurvatureTask, NetworkData, ProblemData } from '../task.ts';
import type { NetworkSchema } from '../../schemas/common.ts';
import type { JacobianRequest } from '../../schemas/jacobian.ts';
import type { HessianRequest, InverseRequest, VectorProductRequest } from '../../schemas/hessian.ts';
import type { DenseArray } from './dense.ts';

/** A validated 2-D array as the core's row-major Matrix. */
function matrix(a: DenseArray): Matrix {
  return { rows: a.shape[0], cols: a.shape[1], data: a.data };
}

function network(spec: z.output<typeof NetworkSchema>): NetworkData {
  return { layers: spec.layers.map((l) => ({ weights: matrix(l.weights), bias: l.bias.data, activation: l.activation })) };
}

function problem(body: HessianRequest | VectorProductRequest | InverseRequest): ProblemData {
  return { network: network(body.network), inputs: matrix(body.inputs), targets: matrix(body.targets), loss: body.loss };
}

export function jacobianTask(body: JacobianRequest): CurvatureTask {
  return { endpoint: 'jacobian', network: network(body.network), inputs: matrix(body.inputs), wrt: body.wrt };
}

export function hessianTask(body: HessianRequest): CurvatureTask {
  return { endpoint: 'hessian', problem: problem(body), method: body.method };
}

export function vectorProductTask(body: VectorProductRequest): CurvatureTask {
  return { endpoint: 'hessian-vector-product', problem: problem(body), vector: body.vector.data };
}

export function inverseTask(body: InverseRequest): CurvatureTask {
  return { endpoint: 'hessian-inverse', problem: problem(body), damping: body.damping, method: body.method, hessian: body.hessian };
}
