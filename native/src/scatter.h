// Memory-bound kernels of the curvature matrix's block form (src/core/hessian.ts), which lay out
// the per-point rows its GEMMs multiply and move their products into H's layout, and the finiteness pass over every answer (finite.ts). Plain C++, no N-API; addon.cc checks the arguments
// (every index these kernels write or read is inside its buffer, see there) and calls them.
//
// The layouts are those of hessian.ts, whose TypeScript functions of the same names are the
// reference (src/core/linalg/typescript-scatter.ts); test/core/scatter.test.ts compares the two.
#pragma once

#include <cstddef>

// Each kernel runs on up to `threads` threads (the caller's and threads of its own), in parts
// that never write the same entry, so the result does not depend on the count; a call with
// little work (below 2^18 entries a part) keeps to fewer.

namespace curvature {

/** Rows rowStart … rowEnd − 1 of H, row r at (r − rowStart)·stride, column c at c − colOffset. */
struct Target {
  double* data;
  size_t stride;
  long rowStart, rowEnd, colOffset;
  bool mirror;
};

/** A layer's parameters in H: θ[i][j] at offset + i·in + j (j < in), the bias θ[i][in] at offset + out·in + i. */
struct Layer {
  long offset, in, out;
  bool bias;
  long aug() const { return in + (bias ? 1 : 0); }
  long theta(long i, long j) const { return j < in ? offset + i * in + j : offset + out * in + i; }
};

/**
 * A layer's own block from its packed product T (rows (i, p), p ≤ i, for i0 ≤ i < i1; columns
 * the packed pairs (j, q), q ≤ j < aug): H[θ(i,j)][θ(p,q)] += T[(i,p),(max(j,q),min(j,q))] and, for
 * p < i, H[θ(p,j)][θ(i,q)] by the same value.
 */
void ScatterOwnBlock(const Target& h, const Layer& l, const double* t, long i0, long i1, int threads);

/**
 * A block between layers l > m from a product T of rows (a, p), a0 ≤ a < a0 + na, p < out_m, each
 * of nb · aug_m columns (b, q): H[θ_l(i,j)][θ_m(p,q)] += T[(a,p),(b,q)] with (i, j) = (a, b) when
 * `aIsI` (the curvature term), (b, a) otherwise (the cross term of PRML 5.95); with a mirroring
 * target also the transposed entry.
 */
void ScatterBlock(const Target& h, const Layer& l, const Layer& m, const double* t, long a0, long na, long nb, bool aIsI, int threads);

/** Whether every one of the n entries is finite (no NaN, no ±Infinity). */
bool AllFinite(const double* a, size_t n, int threads);

/** a[j][i] = a[i][j] for r0 ≤ i < r1 and c0 ≤ j < min(c1, i): the lower part of those rows mirrored above the diagonal, in tiles. */
void MirrorLower(double* a, size_t lda, long r0, long r1, long c0, long c1, int threads);

// The per-point rows the block form's GEMMs multiply (hessian.ts), for c points, each point's
// row at n · (its length). Every output entry is written once; parts are ranges of points.

/** Khatri–Rao rows: out[n][j·ny + q] = x[n][j] · y[n][q]. */
void KhatriRao(const double* x, long nx, const double* y, long ny, long c, double* out, int threads);

/** Symmetric Khatri–Rao rows: out[n][j(j+1)/2 + q] = z[n][j] · z[n][q], q ≤ j < nz. */
void SymmetricKhatriRao(const double* z, long nz, long c, double* out, int threads);

/** Packed lower pairs of c symmetric r × r matrices: out[n][i(i+1)/2 + p] = x[n][i][p], p ≤ i. */
void PackLower(const double* x, long r, long c, double* out, int threads);

/** Each of c r × q matrices transposed: out[n][j][i] = x[n][i][j]. */
void TransposeEach(const double* x, long c, long r, long q, double* out, int threads);

/** Each of c r × w matrices times diag(d_n) on the right, in place: x[n][i][j] *= d[n][j]. */
void ScaleColumns(double* x, long c, long r, long w, const double* d, int threads);

/** A layer's columns of Jacobian rows: rows[(n·k + r)·width + θ(p, q)] = x[(n·k + r)·out + p] · z[n·aug + q]. */
void LayerRows(const double* x, long c, long k, const Layer& l, const double* z, double* rows, size_t width, int threads);

}  // namespace curvature
