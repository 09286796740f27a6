/**
 * The compute core: networks, losses, Jacobians, Hessians and inverses of multilayer perceptrons
 * after PRML §5.3.4–5.4.6. Pure functions over row-major Float64Arrays; nothing of HTTP. Each
 * method exports the estimate of the memory it needs, next to its budget constants.
 */
export { ACTIVATIONS, ACTIVATION_NAMES, type ActivationName } from './activations.ts';
export { LOSSES, LOSS_NAMES, REDUCTIONS, type LossName, type Reduction } from './losses.ts';
export { CoreError, type CoreErrorCode, type CoreErrorData, type CoreErrorParams, type CoreWarning, type CoreWarningCode, type CoreWarningParams } from './errors.ts';
export {
  buildNetwork, makeProblem, checkInputs, forward, parameterVector, withParameters, countParameters, selectedLayers,
  type Matrix, type Network, type NetworkSpec, type Problem, type Layer, type LayerSize, type Targets,
} from './network.ts';
export { errorValue, gradient, passesBytes } from './backprop.ts';
export { inputJacobian, parameterJacobian, checkParameterVector, jacobianScratchBytes, type JacobianResult } from './jacobian.ts';
export {
  exactHessian, outerProductHessian, hessianDiagonal, curvatureScratchBytes, hessianDiagonalScratchBytes, curvatureBlocks, curvatureRows,
  layerSizes, slabFilter, curvatureForm, type BlockFilter, type CurvatureBudgets, type CurvatureForm,
} from './hessian.ts';
export { diagonalApproximation, diagonalApproximationScratchBytes } from './diagonal-approximation.ts';
export { finiteDifferenceHessian, finiteDifferenceKinks, finiteDifferenceScratchBytes, FINITE_DIFFERENCE_STEP } from './finite-difference.ts';
export { hessianVectorProduct, hessianVectorProductScratchBytes, curvatureOperator, type CurvatureOperator } from './r-operator.ts';
export { woodburyInverse, woodburyScratchBytes, choleskyInverse, choleskyScratchBytes, checkDamping, type InverseResult } from './inverse.ts';
export { assertFinite } from './finite.ts';
export { compute, taskFootprint, SOLVE_DENSE_MAX, type TaskFootprint } from './operations.ts';
export { NO_WORK, WorkMeter, type Work } from './work.ts';
export {
  HESSIAN_METHODS, INVERSE_HESSIANS, INVERSE_METHODS, JACOBIAN_WRT, HESSIAN_STRUCTURES, EIGEN_HESSIANS, EIGEN_METHODS, SOLVE_HESSIANS,
  SOLVE_METHODS, PRECONDITIONERS, taskBuffers, isArrayResult, principalArray, resultArrays, npzMembers,
  type AnswerObject, type AnswerValue, type ArrayResult, type ComputeResult, type CurvatureTask, type Endpoint, type HessianMethod,
  type InverseHessian, type InverseMethod, type JacobianWrt, type LayerData, type NetworkData, type ProblemData, type TaskSummary,
} from './tasks.ts';
export { denseEigen, lanczosEigen, curvatureEigen, lanczosBasis, EIGEN_WHICH, EIGEN_DENSE_MAX, type EigenWhich, type EigenResult, type LanczosOptions } from './eigen.ts';
export { kfacFactors, kfacEigen, kfacLogDeterminant, kfacSolve, kfacPreconditioner, kfacScratchBytes, type KfacFactor, type KfacEigen } from './kfac.ts';
export { conjugateGradient, choleskySolve, dampedResiduals, jacobiPreconditioner, type SolveResult, type CgOptions, type Preconditioner as CgPreconditioner } from './solve.ts';
