/**
 * The compute core: networks, losses, Jacobians, Hessians and inverses of multilayer perceptrons
 * after PRML §5.3.4–5.4.6. Pure functions over row-major Float64Arrays; nothing of HTTP. Each
 * method exports the estimate of the memory it needs, next to its budget constants.
 */
export { ACTIVATIONS, ACTIVATION_NAMES, type ActivationName } from './activations.ts';
export { LOSSES, LOSS_NAMES, type LossName } from './losses.ts';
export { CoreError, type CoreErrorCode, type CoreErrorData, type CoreErrorParams } from './errors.ts';
export {
  buildNetwork, makeProblem, checkInputs, forward, parameterVector, withParameters, countParameters,
  type Matrix, type Network, type NetworkSpec, type Problem, type Layer,
} from './network.ts';
export { errorValue, gradient, passesBytes, type LayerSize } from './backprop.ts';
export { inputJacobian, parameterJacobian, checkParameterVector, jacobianScratchBytes, type JacobianResult } from './jacobian.ts';
export {
  exactHessian, outerProductHessian, hessianDiagonal, curvatureScratchBytes, hessianDiagonalScratchBytes, type CurvatureBudgets,
} from './hessian.ts';
export { diagonalApproximation, diagonalApproximationScratchBytes } from './diagonal-approximation.ts';
export { finiteDifferenceHessian, finiteDifferenceScratchBytes, FINITE_DIFFERENCE_STEP } from './finite-difference.ts';
export { hessianVectorProduct, hessianVectorProductScratchBytes } from './r-operator.ts';
export { woodburyInverse, woodburyScratchBytes, choleskyInverse, choleskyScratchBytes, checkDamping, type InverseResult } from './inverse.ts';
export { assertFinite } from './finite.ts';
