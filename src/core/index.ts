/**
 * The compute core: networks, losses, Jacobians, Hessians and inverses of multilayer perceptrons
 * after PRML §5.3.4–5.4.6. Pure functions over row-major Float64Arrays; nothing of HTTP.
 */
export { ACTIVATION_NAMES, type ActivationName } from './activations.ts';
export { LOSS_NAMES, type LossName } from './losses.ts';
export {
  buildNetwork, toMatrix, makeProblem, checkInputs, outputs, forward, parameterVector, withParameters, countParameters,
  type Matrix, type Network, type NetworkSpec, type Problem, type Layer,
} from './network.ts';
export { errorValue, gradient } from './backprop.ts';
export { inputJacobian, parameterJacobian, checkParameterVector, type JacobianResult } from './jacobian.ts';
export { exactHessian, outerProductHessian, hessianDiagonal, curvatureScratchBytes, type CurvatureBudgets } from './hessian.ts';
export { diagonalApproximation } from './diagonal-approximation.ts';
export { finiteDifferenceHessian, FINITE_DIFFERENCE_STEP } from './finite-difference.ts';
export { hessianVectorProduct } from './r-operator.ts';
export { woodburyInverse, choleskyInverse, checkDamping, type InverseResult } from './inverse.ts';
export { assertFinite } from './finite.ts';
