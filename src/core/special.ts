/**
 * Special functions the activations need, to float64 accuracy: erf and erfc by W. J. Cody's
 * rational Chebyshev approximations ("Rational Chebyshev approximations for the error function",
 * Math. Comp. 23, 1969; the CALERF routine of netlib's specfun), relative error below 1e-15 on
 * the whole line, and the standard normal's density and distribution function from them.
 */

/* eslint-disable no-loss-of-precision -- Cody's coefficients as published (18 digits): the nearest doubles are meant */
const A = [3.16112374387056560e0, 1.13864154151050156e2, 3.77485237685302021e2, 3.20937758913846947e3, 1.85777706184603153e-1];
const B = [2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3, 2.84423683343917062e3];
const C = [
  5.64188496988670089e-1, 8.88314979438837594e0, 6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
  1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3, 2.15311535474403846e-8,
];
const D = [
  1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2, 1.62138957456669019e3, 3.29079923573345963e3,
  4.36261909014324716e3, 3.43936767414372164e3, 1.23033935480374942e3,
];
const P = [3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2];
const Q = [2.56852019228982242e0, 1.87295284992346725e0, 5.27905102951428412e-1, 6.05183413124413191e-2, 2.33520497626869185e-3];
/** 1/√π. */
const SQRPI = 5.6418958354775628695e-1;
/* eslint-enable no-loss-of-precision */
const THRESH = 0.46875;

/** exp(−y²) computed as exp(−ŷ²)·exp(−(y − ŷ)(y + ŷ)) with ŷ = y rounded to 1/16, which keeps its relative accuracy for large y. */
function expMinusSquare(y: number): number {
  const ysq = Math.trunc(y * 16) / 16;
  const del = (y - ysq) * (y + ysq);
  return Math.exp(-ysq * ysq) * Math.exp(-del);
}

/** erfc(y) for y ≥ THRESH. */
function erfcLarge(y: number): number {
  let r: number;
  if (y <= 4) {
    let num = C[8] * y, den = y;
    for (let i = 0; i < 7; i++) { num = (num + C[i]) * y; den = (den + D[i]) * y; }
    r = (num + C[7]) / (den + D[7]);
  } else {
    if (y >= 26.6) return 0; // exp(−y²) underflows
    const z = 1 / (y * y);
    let num = P[5] * z, den = z;
    for (let i = 0; i < 4; i++) { num = (num + P[i]) * z; den = (den + Q[i]) * z; }
    r = (SQRPI - (z * (num + P[4])) / (den + Q[4])) / y;
  }
  return expMinusSquare(y) * r;
}

/** erf(x) for |x| < THRESH. */
function erfSmall(x: number): number {
  const z = x * x;
  let num = A[4] * z, den = z;
  for (let i = 0; i < 3; i++) { num = (num + A[i]) * z; den = (den + B[i]) * z; }
  return (x * (num + A[3])) / (den + B[3]);
}

/** The error function erf(x) = (2/√π) ∫₀ˣ e^{−t²} dt. */
export function erf(x: number): number {
  const y = Math.abs(x);
  if (y < THRESH) return erfSmall(x);
  const r = 1 - erfcLarge(y);
  return x < 0 ? -r : r;
}

/** The complementary error function erfc(x) = 1 − erf(x), without cancellation for large x. */
export function erfc(x: number): number {
  const y = Math.abs(x);
  if (y < THRESH) return 1 - erfSmall(x);
  const r = erfcLarge(y);
  return x < 0 ? 2 - r : r;
}

/** φ(x) = e^{−x²/2}/√(2π), the standard normal density. */
export function normalDensity(x: number): number {
  return 0.3989422804014327 * Math.exp(-0.5 * x * x);
}

/** Φ(x) = ½ erfc(−x/√2), the standard normal distribution function, accurate in both tails. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x * Math.SQRT1_2);
}
