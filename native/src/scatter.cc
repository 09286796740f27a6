// The block form's memory-bound kernels (see scatter.h). Each is the loop of its TypeScript reference
// with the same order of additions, so the two backends give bit-identical matrices.
#include "scatter.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace curvature {

namespace {

/** Row r of the target, or nullptr when the target does not store it. */
inline double* RowOf(const Target& h, long r) {
  return r >= h.rowStart && r < h.rowEnd ? h.data + static_cast<size_t>(r - h.rowStart) * h.stride : nullptr;
}

inline size_t Pairs(long r) { return static_cast<size_t>(r) * static_cast<size_t>(r + 1) / 2; }

/** Entries below which a call runs in its caller's thread alone (a thread costs tens of µs to start). */
constexpr double kEntriesPerThread = 1 << 18;

/**
 * fn(k, begin, end) over [0, n) in `threads` contiguous parts of about equal `weight` each
 * (weight(i): the work of item i's prefix [0, i)), part 0 in the caller's thread. With fewer
 * than kEntriesPerThread entries a part, fewer threads.
 */
template <typename Weight, typename Fn>
void InParts(int threads, long n, double total, Weight prefix, Fn fn) {
  const int parts = static_cast<int>(std::max(1.0, std::min<double>(threads, total / kEntriesPerThread)));
  if (parts <= 1 || n <= 1) {
    fn(0, 0L, n);
    return;
  }
  std::vector<long> ends(parts + 1, n);
  ends[0] = 0;
  long i = 0;
  for (int k = 1; k < parts; k++) {
    const double goal = total * k / parts;
    while (i < n && prefix(i) < goal) i++;
    ends[k] = i;
  }
  std::vector<std::thread> pool;
  for (int k = 1; k < parts; k++) pool.emplace_back(fn, k, ends[k], ends[k + 1]);
  fn(0, ends[0], ends[1]);
  for (std::thread& t : pool) t.join();
}

}  // namespace

void ScatterOwnBlock(const Target& h, const Layer& l, const double* t, long i0, long i1, int threads) {
  const long in = l.in, aug = l.aug();
  const size_t yCols = Pairs(aug), r0 = Pairs(i0);
  const long co = h.colOffset;
  const long biasCol = l.offset + l.out * in - co;
  // Band by band of H: the rows θ(r, ·) of unit r take the sub-block of every unit c with
  // max(r, c) in the tile, H[θ(r,j)][θ(c,q)] = u[j][q] for u the symmetric aug × aug matrix of
  // pair (max(r,c), min(r,c)) (so each pair is unpacked twice, for its two bands). A thread's
  // bands are its own rows, written column strip after column strip; per pair, as the reference
  // does, the second band's writes would jump across H. Units c of band r: i0 … i1 − 1 for r < i0,
  // 0 … i1 − 1 for r in the tile.
  const double perUnit = static_cast<double>(aug) * aug;
  const auto prefix = [&](long r) {
    // the work of bands 0 … r − 1: (i1 − i0) units each below the tile, i1 each in it
    const long below = std::min(r, i0);
    return perUnit * (static_cast<double>(below) * (i1 - i0) + static_cast<double>(std::max(0L, r - i0)) * i1);
  };
  InParts(threads, i1, prefix(i1), prefix, [&](int, long b0, long b1) {
    std::vector<double> scratch(static_cast<size_t>(aug) * aug);
    double* u = scratch.data();
    for (long r = b0; r < b1; r++) {
      const long cFirst = r < i0 ? i0 : 0;
      bool any = false;
      for (long j = 0; j < aug && !any; j++) any = RowOf(h, l.theta(r, j)) != nullptr;
      if (!any) continue;
      for (long c = cFirst; c < i1; c++) {
        const long hi = std::max(r, c), lo = std::min(r, c);
        // the packed symmetric aug × aug matrix of pair (hi, lo), unpacked so that rows are contiguous
        const double* tr = t + (Pairs(hi) + lo - r0) * yCols;
        for (long j = 0; j < aug; j++) {
          const double* packed = tr + Pairs(j);
          double* uj = u + static_cast<size_t>(j) * aug;
          for (long q = 0; q <= j; q++) {
            uj[q] = packed[q];
            u[static_cast<size_t>(q) * aug + j] = packed[q];
          }
        }
        const long colC = l.offset + c * in - co;
        for (long j = 0; j < aug; j++) {
          double* row = RowOf(h, l.theta(r, j));
          if (!row) continue;
          const double* uj = u + static_cast<size_t>(j) * aug;
          double* d = row + colC;
          for (long q = 0; q < in; q++) d[q] += uj[q];
          if (l.bias) row[biasCol + c] += uj[in];
        }
      }
    }
  });
}

void ScatterBlock(const Target& h, const Layer& l, const Layer& m, const double* t, long a0, long na, long nb, bool aIsI, int threads) {
  const long inM = m.in, augM = m.aug(), outM = m.out, co = h.colOffset;
  const long biasCols = m.offset + outM * inM - co;
  const double perA = static_cast<double>(outM) * nb * augM * (h.mirror ? 2 : 1);
  // rows a split between threads: each (a, b) is its own row θ_l(i, j) of H (and column, mirrored)
  InParts(threads, na, perA * na, [&](long k) { return perA * k; }, [&](int, long k0, long k1) {
    for (long da = k0; da < k1; da++) {
      // row by row of H: row θ_l(a, b) takes T's (a, p, b) runs for every p, at consecutive columns
      // θ_m(p, ·) (and the bias columns, consecutive over p), so each row is written in one sweep
      for (long b = 0; b < nb; b++) {
        const long r = aIsI ? l.theta(a0 + da, b) : l.theta(b, a0 + da);
        double* base = RowOf(h, r);
        if (!base) continue;
        for (long p = 0; p < outM; p++) {
          const double* src = t + ((static_cast<size_t>(da) * outM + p) * static_cast<size_t>(nb) + b) * augM;
          double* d = base + m.offset + p * inM - co;
          for (long q = 0; q < inM; q++) d[q] += src[q];
          if (m.bias) base[biasCols + p] += src[inM];
        }
      }
      if (!h.mirror) continue;
      for (long p = 0; p < outM; p++) {
        const long col = m.offset + p * inM - co;
        const double* trow = t + (static_cast<size_t>(da) * outM + p) * static_cast<size_t>(nb) * augM;
        for (long b = 0; b < nb; b++) {
          const long r = aIsI ? l.theta(a0 + da, b) : l.theta(b, a0 + da);
          const double* src = trow + static_cast<size_t>(b) * augM;
          for (long q = 0; q < inM; q++) {
            if (double* b2 = RowOf(h, col + co + q)) b2[r - co] += src[q];
          }
          if (m.bias) {
            if (double* b2 = RowOf(h, biasCols + co + p)) b2[r - co] += src[inM];
          }
        }
      }
    }
  });
}

bool AllFinite(const double* a, size_t n, int threads) {
  // x·0 is 0 for every finite x and NaN for ±Infinity and NaN: sums of it stay 0 exactly when all are finite
  std::vector<double> sums(std::max(1, threads), 0.0);
  const long blocks = static_cast<long>((n + 4095) / 4096);
  InParts(threads, blocks, static_cast<double>(n), [&](long k) { return 4096.0 * k; }, [&](int part, long k0, long k1) {
    const size_t s = static_cast<size_t>(k0) * 4096, e = std::min(n, static_cast<size_t>(k1) * 4096);
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = s;
    for (; i + 8 <= e; i += 8) for (int j = 0; j < 8; j++) acc[j] += a[i + j] * 0.0;
    for (; i < e; i++) acc[0] += a[i] * 0.0;
    double t = 0;
    for (double v : acc) t += v;
    sums[part] = t;
  });
  double total = 0;
  for (double v : sums) total += v;
  return total == 0;
}

void MirrorLower(double* a, size_t lda, long r0, long r1, long c0, long c1, int threads) {
  // tiles keep the column-wise writes in cache and their pages in the TLB: 16 × 16 mirrored W = 10660's
  // blocks between layers (28M entries) in 85–100 ms against 140 with 64 × 64 (2 threads, 2026-12-01)
  constexpr long B = 16;
  const long tiles = (r1 - r0 + B - 1) / B;
  // the entries rows 0 … i − 1 copy (row r copies max(0, min(c1, r) − c0) of them)
  const auto upTo = [&](long i) {
    const double m = static_cast<double>(std::max(0L, std::min(i, c1 + 1) - c0));
    return 0.5 * m * (m - 1) + static_cast<double>(std::max(0L, i - c1 - 1)) * static_cast<double>(c1 - c0);
  };
  const auto prefix = [&](long k) { return upTo(r0 + k * B) - upTo(r0); };
  // row tiles split between threads: a[j][i] is written for its row i alone, and only the lower part is read
  InParts(threads, tiles, prefix(tiles), prefix, [&](int, long k0, long k1) {
    for (long ib = r0 + k0 * B; ib < std::min(r1, r0 + k1 * B); ib += B) {
      const long ie = std::min(r1, ib + B);
      const long cEnd = std::min(c1, ie);
      for (long jb = c0; jb < cEnd; jb += B) {
        const long je = std::min(cEnd, jb + B);
        for (long i = ib; i < ie; i++) {
          const double* src = a + static_cast<size_t>(i) * lda;
          const long jEnd = std::min(je, i);
          for (long j = jb; j < jEnd; j++) a[static_cast<size_t>(j) * lda + i] = src[j];
        }
      }
    }
  });
}

namespace {

/** fn(begin, end) over ranges of the c points, each point `perPoint` entries of work. */
template <typename Fn>
void OverPoints(int threads, long c, double perPoint, Fn fn) {
  InParts(threads, c, perPoint * c, [&](long k) { return perPoint * k; }, [&](int, long n0, long n1) { fn(n0, n1); });
}

}  // namespace

void KhatriRao(const double* x, long nx, const double* y, long ny, long c, double* out, int threads) {
  OverPoints(threads, c, static_cast<double>(nx) * ny, [&](long n0, long n1) {
    for (long n = n0; n < n1; n++) {
      const double* xn = x + static_cast<size_t>(n) * nx;
      const double* yn = y + static_cast<size_t>(n) * ny;
      double* o = out + static_cast<size_t>(n) * nx * ny;
      for (long j = 0; j < nx; j++, o += ny) {
        const double v = xn[j];
        for (long q = 0; q < ny; q++) o[q] = v * yn[q];
      }
    }
  });
}

void SymmetricKhatriRao(const double* z, long nz, long c, double* out, int threads) {
  const size_t w = Pairs(nz);
  OverPoints(threads, c, static_cast<double>(w), [&](long n0, long n1) {
    for (long n = n0; n < n1; n++) {
      const double* zn = z + static_cast<size_t>(n) * nz;
      double* o = out + static_cast<size_t>(n) * w;
      for (long j = 0; j < nz; j++) {
        const double v = zn[j];
        for (long q = 0; q <= j; q++) *o++ = v * zn[q];
      }
    }
  });
}

void PackLower(const double* x, long r, long c, double* out, int threads) {
  const size_t w = Pairs(r);
  OverPoints(threads, c, static_cast<double>(w), [&](long n0, long n1) {
    for (long n = n0; n < n1; n++) {
      const double* xn = x + static_cast<size_t>(n) * r * r;
      double* o = out + static_cast<size_t>(n) * w;
      for (long i = 0; i < r; i++) {
        const double* row = xn + static_cast<size_t>(i) * r;
        for (long p = 0; p <= i; p++) *o++ = row[p];
      }
    }
  });
}

void TransposeEach(const double* x, long c, long r, long q, double* out, int threads) {
  const size_t size = static_cast<size_t>(r) * q;
  OverPoints(threads, c, static_cast<double>(size), [&](long n0, long n1) {
    for (long n = n0; n < n1; n++) {
      const double* xn = x + n * size;
      double* o = out + n * size;
      for (long i = 0; i < r; i++) for (long j = 0; j < q; j++) o[static_cast<size_t>(j) * r + i] = xn[static_cast<size_t>(i) * q + j];
    }
  });
}

void ScaleColumns(double* x, long c, long r, long w, const double* d, int threads) {
  OverPoints(threads, c, static_cast<double>(r) * w, [&](long n0, long n1) {
    for (long n = n0; n < n1; n++) {
      const double* dn = d + static_cast<size_t>(n) * w;
      double* xn = x + static_cast<size_t>(n) * r * w;
      for (long i = 0; i < r; i++, xn += w) for (long j = 0; j < w; j++) xn[j] *= dn[j];
    }
  });
}

void LayerRows(const double* x, long c, long k, const Layer& l, const double* z, double* rows, size_t width, int threads) {
  const long out = l.out, in = l.in, aug = l.aug(), biasAt = l.offset + out * in;
  OverPoints(threads, c, static_cast<double>(k) * out * aug, [&](long n0, long n1) {
    for (long n = n0; n < n1; n++) {
      const double* zn = z + static_cast<size_t>(n) * aug;
      for (long r = 0; r < k; r++) {
        double* dst = rows + static_cast<size_t>(n * k + r) * width;
        const double* src = x + static_cast<size_t>(n * k + r) * out;
        for (long p = 0; p < out; p++) {
          const double v = src[p];
          double* at = dst + l.offset + p * in;
          for (long q = 0; q < in; q++) at[q] = v * zn[q];
          if (l.bias) dst[biasAt + p] = v * zn[in];
        }
      }
    }
  });
}

}  // namespace curvature
