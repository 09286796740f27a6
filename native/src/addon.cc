// OpenBLAS/LAPACK kernels for the curvature service's linear-algebra module.
//
// Context-aware (Napi::Addon), so every worker thread can load it. Its one piece of per-process
// state is a mutex that lets one threaded kernel call into OpenBLAS at a time, whichever worker
// thread makes it: OpenBLAS's pthreads build has one thread pool per process, and its history
// has deadlocks among concurrent callers (OpenMathLib/OpenBLAS #660, #937, #1117, #2126).
// Serialising costs no throughput (dgemm n = 800, 2 workers x 2 threads: 118.8 GFLOP/s in
// aggregate with the lock, 114.7 without). A caller blocks at most one kernel call's time, and
// the worker pool checks its stop flag between calls, not during one.
//
// All matrices are ROW-MAJOR with a leading dimension. BLAS calls go through CBLAS
// with CblasRowMajor (CBLAS swaps operands internally, no copies). LAPACK has no row-major
// form without transposition copies, so potrf/potri call LAPACKE's *_work column-major entry
// points on the same memory: a row-major lower triangle is a column-major upper triangle, and
// for a symmetric matrix A = Aᵀ, so 'U' there computes exactly our lower factor/inverse.
// The same reading serves potrs (a row-major nrhs × n right-hand side with ld ≥ n IS the
// column-major n × nrhs matrix LAPACK solves for, no copy) and syevr (dsyevr/dsyevd read the
// same triangle); only syevr's eigenvectors are transposed, into the n × m layout with
// eigenvectors as columns that the callers use.
//
// The binding checks argument counts and types (TypeError) and that every buffer is long
// enough for the shapes given (RangeError), so that no call reads or writes past a buffer.
// Shape consistency beyond that is the caller's job (the core checks shapes at its edge).
#include <napi.h>

#include <cblas.h>
#include <lapacke.h>

#include "scatter.h"

#include <sys/mman.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

/**
 * Held for the length of every call into OpenBLAS that may use its thread pool (see the file
 * comment); calls with one thread run in their caller's thread, side by side as before.
 */
std::unique_lock<std::mutex> SerialiseThreaded() {
  static std::mutex m;
  std::unique_lock<std::mutex> lock(m, std::defer_lock);
  if (openblas_get_num_threads() > 1) lock.lock();
  return lock;
}

constexpr double kMaxInt = static_cast<double>(std::numeric_limits<int>::max());
/** Numbers below which jsonRows formats in its caller's thread alone (a thread costs tens of µs to start, 8,192 numbers ≈ 0.5 ms). */
constexpr uint64_t kJsonNumbersPerThread = 8192;

struct Args {
  const Napi::CallbackInfo& info;
  const char* fn;

  void Count(size_t n) const {
    if (info.Length() != n) {
      throw Napi::TypeError::New(info.Env(), std::string(fn) + ": expected " + std::to_string(n) +
                                                 " arguments, got " + std::to_string(info.Length()));
    }
  }

  [[noreturn]] void Fail(size_t i, const char* what) const {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(i) +
                                               " must be " + what);
  }

  bool Bool(size_t i) const {
    if (!info[i].IsBoolean()) Fail(i, "a boolean");
    return info[i].As<Napi::Boolean>().Value();
  }

  double Num(size_t i) const {
    if (!info[i].IsNumber()) Fail(i, "a number");
    return info[i].As<Napi::Number>().DoubleValue();
  }

  /** A non-negative integer that fits BLAS's 32-bit int. */
  int Dim(size_t i) const {
    if (!info[i].IsNumber()) Fail(i, "a non-negative integer");
    const double v = info[i].As<Napi::Number>().DoubleValue();
    if (!(v >= 0) || v > kMaxInt || std::floor(v) != v) Fail(i, "a non-negative integer below 2^31");
    return static_cast<int>(v);
  }

  Napi::Float64Array F64(size_t i) const {
    if (!info[i].IsTypedArray() ||
        info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      Fail(i, "a Float64Array");
    }
    return info[i].As<Napi::Float64Array>();
  }

  /**
   * A rows × cols row-major matrix with leading dimension ld must fit in `arr`. Returns the
   * leading dimension to hand to BLAS: an empty matrix may come with any ld (say k = lda = 0),
   * which BLAS would refuse although it never reads the matrix, so it gets a valid one.
   */
  int Fits(const Napi::Float64Array& arr, const char* name, int rows, int cols, int ld) const {
    const int minLd = cols > 1 ? cols : 1;
    if (rows == 0 || cols == 0) return ld < minLd ? minLd : ld;
    if (ld < minLd) {
      throw Napi::RangeError::New(info.Env(), std::string(fn) + ": leading dimension of " + name + " (" +
                                                  std::to_string(ld) + ") is below its column count (" +
                                                  std::to_string(cols) + ")");
    }
    const uint64_t need = static_cast<uint64_t>(rows - 1) * static_cast<uint64_t>(ld) + static_cast<uint64_t>(cols);
    if (arr.ElementLength() < need) {
      throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + name + " holds " +
                                                  std::to_string(arr.ElementLength()) + " elements, the shape needs " +
                                                  std::to_string(need));
    }
    return ld;
  }
};

class OpenBlasAddon : public Napi::Addon<OpenBlasAddon> {
 public:
  OpenBlasAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod("dgemm", &OpenBlasAddon::Dgemm),
                             InstanceMethod("dsyrk", &OpenBlasAddon::Dsyrk),
                             InstanceMethod("dtrsm", &OpenBlasAddon::Dtrsm),
                             InstanceMethod("dsymm", &OpenBlasAddon::Dsymm),
                             InstanceMethod("dpotrf", &OpenBlasAddon::Dpotrf),
                             InstanceMethod("dpotri", &OpenBlasAddon::Dpotri),
                             InstanceMethod("dpotrs", &OpenBlasAddon::Dpotrs),
                             InstanceMethod("dsyevr", &OpenBlasAddon::Dsyevr),
                             InstanceMethod("setNumThreads", &OpenBlasAddon::SetNumThreads),
                             InstanceMethod("getNumThreads", &OpenBlasAddon::GetNumThreads),
                             InstanceMethod("config", &OpenBlasAddon::Config),
                             InstanceMethod("corename", &OpenBlasAddon::Corename),
                             InstanceMethod("jsonRows", &OpenBlasAddon::JsonRows),
                             InstanceMethod("scatterOwnBlock", &OpenBlasAddon::ScatterOwnBlock),
                             InstanceMethod("scatterBlock", &OpenBlasAddon::ScatterBlock),
                             InstanceMethod("mirrorLower", &OpenBlasAddon::MirrorLower),
                             InstanceMethod("populate", &OpenBlasAddon::Populate),
                             InstanceMethod("allFinite", &OpenBlasAddon::AllFinite),
                             InstanceMethod("khatriRao", &OpenBlasAddon::KhatriRao),
                             InstanceMethod("symmetricKhatriRao", &OpenBlasAddon::SymmetricKhatriRao),
                             InstanceMethod("packLower", &OpenBlasAddon::PackLower),
                             InstanceMethod("transposeEach", &OpenBlasAddon::TransposeEach),
                             InstanceMethod("scaleColumns", &OpenBlasAddon::ScaleColumns),
                             InstanceMethod("layerRows", &OpenBlasAddon::LayerRows),
                         });
  }

 private:
  // dgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
  Napi::Value Dgemm(const Napi::CallbackInfo& info) {
    const Args g{info, "dgemm"};
    g.Count(13);
    const bool ta = g.Bool(0), tb = g.Bool(1);
    const int m = g.Dim(2), n = g.Dim(3), k = g.Dim(4);
    const double alpha = g.Num(5);
    Napi::Float64Array a = g.F64(6);
    Napi::Float64Array b = g.F64(8);
    const double beta = g.Num(10);
    Napi::Float64Array c = g.F64(11);
    const int lda = g.Fits(a, "A", ta ? k : m, ta ? m : k, g.Dim(7));
    const int ldb = g.Fits(b, "B", tb ? n : k, tb ? k : n, g.Dim(9));
    const int ldc = g.Fits(c, "C", m, n, g.Dim(12));
    if (m == 0 || n == 0) return info.Env().Undefined();
    const std::unique_lock<std::mutex> serial = SerialiseThreaded();
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                a.Data(), lda, b.Data(), ldb, beta, c.Data(), ldc);
    return info.Env().Undefined();
  }

  // dsyrk(trans, n, k, alpha, a, lda, beta, c, ldc): lower triangle of C only.
  Napi::Value Dsyrk(const Napi::CallbackInfo& info) {
    const Args g{info, "dsyrk"};
    g.Count(9);
    const bool tr = g.Bool(0);
    const int n = g.Dim(1), k = g.Dim(2);
    const double alpha = g.Num(3);
    Napi::Float64Array a = g.F64(4);
    const double beta = g.Num(6);
    Napi::Float64Array c = g.F64(7);
    const int lda = g.Fits(a, "A", tr ? k : n, tr ? n : k, g.Dim(5));
    const int ldc = g.Fits(c, "C", n, n, g.Dim(8));
    if (n == 0) return info.Env().Undefined();
    const std::unique_lock<std::mutex> serial = SerialiseThreaded();
    cblas_dsyrk(CblasRowMajor, CblasLower, tr ? CblasTrans : CblasNoTrans, n, k, alpha, a.Data(), lda, beta,
                c.Data(), ldc);
    return info.Env().Undefined();
  }

  // dtrsm(left, trans, m, n, a, lda, b, ldb): B (m × n) ← op(L)⁻¹·B (left) or B·op(L)⁻¹ (right),
  // L the lower triangle of A (non-unit diagonal; the strict upper triangle is not read).
  Napi::Value Dtrsm(const Napi::CallbackInfo& info) {
    const Args g{info, "dtrsm"};
    g.Count(8);
    const bool left = g.Bool(0), tr = g.Bool(1);
    const int m = g.Dim(2), n = g.Dim(3);
    Napi::Float64Array a = g.F64(4);
    Napi::Float64Array b = g.F64(6);
    const int order = left ? m : n;
    const int lda = g.Fits(a, "A", order, order, g.Dim(5));
    const int ldb = g.Fits(b, "B", m, n, g.Dim(7));
    if (m == 0 || n == 0) return info.Env().Undefined();
    const std::unique_lock<std::mutex> serial = SerialiseThreaded();
    cblas_dtrsm(CblasRowMajor, left ? CblasLeft : CblasRight, CblasLower, tr ? CblasTrans : CblasNoTrans, CblasNonUnit, m, n,
                1.0, a.Data(), lda, b.Data(), ldb);
    return info.Env().Undefined();
  }

  // dsymm(left, m, n, alpha, a, lda, b, ldb, beta, c, ldc): C (m × n) ← α·A·B + β·C (left, A m × m)
  // or α·B·A + β·C (right, A n × n), A symmetric with its lower triangle referenced.
  Napi::Value Dsymm(const Napi::CallbackInfo& info) {
    const Args g{info, "dsymm"};
    g.Count(11);
    const bool left = g.Bool(0);
    const int m = g.Dim(1), n = g.Dim(2);
    const double alpha = g.Num(3);
    Napi::Float64Array a = g.F64(4);
    Napi::Float64Array b = g.F64(6);
    const double beta = g.Num(8);
    Napi::Float64Array c = g.F64(9);
    const int order = left ? m : n;
    const int lda = g.Fits(a, "A", order, order, g.Dim(5));
    const int ldb = g.Fits(b, "B", m, n, g.Dim(7));
    const int ldc = g.Fits(c, "C", m, n, g.Dim(10));
    if (m == 0 || n == 0) return info.Env().Undefined();
    const std::unique_lock<std::mutex> serial = SerialiseThreaded();
    cblas_dsymm(CblasRowMajor, left ? CblasLeft : CblasRight, CblasLower, m, n, alpha, a.Data(), lda, b.Data(), ldb, beta,
                c.Data(), ldc);
    return info.Env().Undefined();
  }

  // dpotrf(n, a, lda) -> info. Row-major lower = column-major upper (see the file comment).
  Napi::Value Dpotrf(const Napi::CallbackInfo& info) {
    const Args g{info, "dpotrf"};
    g.Count(3);
    const int n = g.Dim(0);
    Napi::Float64Array a = g.F64(1);
    const int lda = g.Fits(a, "A", n, n, g.Dim(2));
    if (n == 0) return Napi::Number::New(info.Env(), 0);
    double* p = a.Data();
    const std::unique_lock<std::mutex> serial = SerialiseThreaded();
    lapack_int r = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', n, p, lda);
    if (r == 0) {
      // OpenBLAS's own dpotrf tests `ajj <= 0`, which lets a NaN pivot through; LAPACK's
      // reference (and the TypeScript backend) report it. A NaN propagates down the diagonal,
      // so the first non-positive-or-NaN diagonal entry of the factor is that pivot.
      for (int j = 0; j < n; j++) {
        const double d = p[static_cast<size_t>(j) * lda + j];
        if (!(d > 0)) {
          r = j + 1;
          break;
        }
      }
    }
    return Napi::Number::New(info.Env(), r);
  }

  // dpotri(n, a, lda) -> info.
  Napi::Value Dpotri(const Napi::CallbackInfo& info) {
    const Args g{info, "dpotri"};
    g.Count(3);
    const int n = g.Dim(0);
    Napi::Float64Array a = g.F64(1);
    const int lda = g.Fits(a, "A", n, n, g.Dim(2));
    if (n == 0) return Napi::Number::New(info.Env(), 0);
    const std::unique_lock<std::mutex> serial = SerialiseThreaded();
    const lapack_int r = LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'U', n, a.Data(), lda);
    return Napi::Number::New(info.Env(), r);
  }

  // dpotrs(n, nrhs, a, lda, b, ldb) -> info. A holds L (lower, from dpotrf); B is row-major
  // nrhs × n, one right-hand side a row, overwritten by the solutions: column-major that is the
  // n × nrhs B of LAPACK's A·X = B with A = Uᵀ·U, U = Lᵀ the column-major upper triangle.
  Napi::Value Dpotrs(const Napi::CallbackInfo& info) {
    const Args g{info, "dpotrs"};
    g.Count(6);
    const int n = g.Dim(0), nrhs = g.Dim(1);
    Napi::Float64Array a = g.F64(2);
    Napi::Float64Array b = g.F64(4);
    const int lda = g.Fits(a, "A", n, n, g.Dim(3));
    const int ldb = g.Fits(b, "B", nrhs, n, g.Dim(5));
    if (n == 0 || nrhs == 0) return Napi::Number::New(info.Env(), 0);
    const std::unique_lock<std::mutex> serial = SerialiseThreaded();
    const lapack_int r = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'U', n, nrhs, a.Data(), lda, b.Data(), ldb);
    return Napi::Number::New(info.Env(), r);
  }

  // dsyevr(n, a, lda, lo, hi, w, z, ldz) -> { info, m }: eigenpairs lo..hi-1 (0-based, ascending)
  // of the symmetric A whose row-major lower triangle is read (column-major 'U'). w gets the
  // m = hi - lo eigenvalues; z (or null: values only) the row-major n × m matrix of eigenvectors
  // as columns, ld ldz >= m. A NaN or infinity in the triangle gives info = -2 (argument 2, a)
  // with nothing written: LAPACK has no defined behaviour for it.
  //
  // Two LAPACK drivers, as the TypeScript backend does (typescript-eigen.ts): with eigenvectors
  // for more than n/4 pairs, divide and conquer for all of them (dsyevd) and keep the slice;
  // otherwise dsyevr, whose index range runs bisection and inverse iteration (dstebz, dstein)
  // and whose values-only run is dsterf. Not dsyevr's full range: it uses MRRR (dstemr), whose
  // vectors measured here were orthogonal to only 4e-12 (n = 2000, random spectrum) and 5e-11
  // (a Hessian-like spectrum, most eigenvalues near 0), against 2e-15..5e-15 from dsyevd, which
  // was as fast or faster (n = 2000: 1.2-1.7 s vs 1.7-1.8 s; and dstein took 7.1 s for the top
  // 1999 of the Hessian-like matrix where dsyevd took 1.3 s for all).
  Napi::Value Dsyevr(const Napi::CallbackInfo& info) {
    const Args g{info, "dsyevr"};
    g.Count(8);
    const Napi::Env env = info.Env();
    const int n = g.Dim(0);
    Napi::Float64Array a = g.F64(1);
    const int lda = g.Fits(a, "A", n, n, g.Dim(2));
    const int lo = g.Dim(3), hi = g.Dim(4);
    if (lo > hi || hi > n) {
      throw Napi::RangeError::New(env, "dsyevr: the index range " + std::to_string(lo) + ".." + std::to_string(hi) +
                                           " is not within 0 <= lo <= hi <= n = " + std::to_string(n));
    }
    const int m = hi - lo;
    Napi::Float64Array w = g.F64(5);
    if (w.ElementLength() < static_cast<size_t>(m)) {
      throw Napi::RangeError::New(env, "dsyevr: w holds " + std::to_string(w.ElementLength()) +
                                           " elements, the range needs " + std::to_string(m));
    }
    const bool wantz = !info[6].IsNull();
    Napi::Float64Array z;
    int ldz = g.Dim(7);
    if (wantz) {
      if (!info[6].IsTypedArray() || info[6].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
        g.Fail(6, "a Float64Array or null");
      }
      z = info[6].As<Napi::Float64Array>();
      ldz = g.Fits(z, "Z", n, m, ldz);
    }
    const auto result = [&env](lapack_int status, lapack_int found) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("info", Napi::Number::New(env, status));
      o.Set("m", Napi::Number::New(env, found));
      return o;
    };
    if (m == 0) return result(0, 0);
    const double* p = a.Data();
    for (int i = 0; i < n; i++) {
      const double* row = p + static_cast<size_t>(i) * lda;
      for (int j = 0; j <= i; j++) {
        if (!std::isfinite(row[j])) return result(-2, 0);
      }
    }
    if (wantz && static_cast<int64_t>(m) * 4 > n) return DivideAndConquer(n, a.Data(), lda, lo, hi, w.Data(), z.Data(), ldz, result);

    // dsyevr writes all n entries of W (workspace beyond the m found) and Z column-major n × m.
    const bool all = lo == 0 && hi == n;
    const char jobz = wantz ? 'V' : 'N', range = all ? 'A' : 'I';
    std::vector<double> wAll(static_cast<size_t>(n));
    std::vector<double> zCol(wantz ? static_cast<size_t>(n) * m : 1);
    std::vector<lapack_int> isuppz(2 * static_cast<size_t>(n));
    const int ldzCol = wantz ? n : 1;
    lapack_int found = 0;
    double workSize = 0;
    lapack_int iworkSize = 0;
    lapack_int r = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, jobz, range, 'U', n, a.Data(), lda, 0.0, 0.0, lo + 1, hi,
                                       0.0, &found, wAll.data(), zCol.data(), ldzCol, isuppz.data(), &workSize, -1,
                                       &iworkSize, -1);
    if (r != 0) return result(r, 0);
    std::vector<double> work(static_cast<size_t>(workSize));
    std::vector<lapack_int> iwork(static_cast<size_t>(iworkSize));
    {
      const std::unique_lock<std::mutex> serial = SerialiseThreaded();
      r = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, jobz, range, 'U', n, a.Data(), lda, 0.0, 0.0, lo + 1, hi, 0.0, &found,
                              wAll.data(), zCol.data(), ldzCol, isuppz.data(), work.data(),
                              static_cast<lapack_int>(work.size()), iwork.data(),
                              static_cast<lapack_int>(iwork.size()));
    }
    const int got = found < 0 ? 0 : (found > m ? m : static_cast<int>(found));
    double* wOut = w.Data();
    for (int j = 0; j < got; j++) wOut[j] = wAll[j];
    // column j of Z (contiguous) becomes column j of the row-major z
    if (wantz) TransposeInto(n, got, zCol.data(), n, z.Data(), ldz);
    return result(r, found);
  }

  // The dsyevd branch of Dsyevr: A's lower triangle (row-major) copied as the column-major upper
  // triangle of an n × n matrix (z itself when all n pairs are wanted, else a scratch), solved in
  // place, the wanted columns transposed into z. `a` is not written.
  template <typename Result>
  static Napi::Value DivideAndConquer(int n, const double* a, int lda, int lo, int hi, double* w, double* z, int ldz,
                                      const Result& result) {
    const bool all = lo == 0 && hi == n;
    std::vector<double> scratch(all ? 0 : static_cast<size_t>(n) * n);
    double* q = all ? z : scratch.data();
    const int ldq = all ? ldz : n;
    for (int c = 0; c < n; c++) {
      const double* src = a + static_cast<size_t>(c) * lda;
      double* dst = q + static_cast<size_t>(c) * ldq;
      for (int r = 0; r <= c; r++) dst[r] = src[r];
    }
    std::vector<double> wAll(static_cast<size_t>(n));
    double workSize = 0;
    lapack_int iworkSize = 0;
    lapack_int r = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'U', n, q, ldq, wAll.data(), &workSize, -1, &iworkSize, -1);
    if (r != 0) return result(r, 0);
    std::vector<double> work(static_cast<size_t>(workSize));
    std::vector<lapack_int> iwork(static_cast<size_t>(iworkSize));
    {
      const std::unique_lock<std::mutex> serial = SerialiseThreaded();
      r = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'U', n, q, ldq, wAll.data(), work.data(),
                              static_cast<lapack_int>(work.size()), iwork.data(), static_cast<lapack_int>(iwork.size()));
    }
    if (r != 0) return result(r, 0);
    const int m = hi - lo;
    for (int j = 0; j < m; j++) w[j] = wAll[static_cast<size_t>(lo) + j];
    if (all) {
      TransposeSquareInPlace(n, z, ldz);
    } else {
      TransposeInto(n, m, q + static_cast<size_t>(lo) * n, n, z, ldz);
    }
    return result(0, m);
  }

  // z[i*ldz + j] = col[j*ldc + i] for i < rows, j < cols: column-major rows × cols into row-major.
  static void TransposeInto(int rows, int cols, const double* col, int ldc, double* z, int ldz) {
    constexpr int kTile = 32;
    for (int j0 = 0; j0 < cols; j0 += kTile) {
      const int j1 = j0 + kTile < cols ? j0 + kTile : cols;
      for (int i0 = 0; i0 < rows; i0 += kTile) {
        const int i1 = i0 + kTile < rows ? i0 + kTile : rows;
        for (int i = i0; i < i1; i++) {
          double* row = z + static_cast<size_t>(i) * ldz;
          for (int j = j0; j < j1; j++) row[j] = col[static_cast<size_t>(j) * ldc + i];
        }
      }
    }
  }

  static void TransposeSquareInPlace(int n, double* q, int ldq) {
    constexpr int kTile = 32;
    for (int i0 = 0; i0 < n; i0 += kTile) {
      const int i1 = i0 + kTile < n ? i0 + kTile : n;
      for (int j0 = i0; j0 < n; j0 += kTile) {
        const int j1 = j0 + kTile < n ? j0 + kTile : n;
        for (int i = i0; i < i1; i++) {
          for (int j = (j0 == i0 ? i + 1 : j0); j < j1; j++) {
            std::swap(q[static_cast<size_t>(i) * ldq + j], q[static_cast<size_t>(j) * ldq + i]);
          }
        }
      }
    }
  }

  Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
    const Args g{info, "setNumThreads"};
    g.Count(1);
    const int t = g.Dim(0);
    if (t < 1) g.Fail(0, "a positive integer");
    const std::unique_lock<std::mutex> serial = SerialiseThreaded();
    openblas_set_num_threads(t);
    return info.Env().Undefined();
  }

  Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
    Args{info, "getNumThreads"}.Count(0);
    return Napi::Number::New(info.Env(), openblas_get_num_threads());
  }

  Napi::Value Config(const Napi::CallbackInfo& info) {
    Args{info, "config"}.Count(0);
    const char* s = openblas_get_config();
    return Napi::String::New(info.Env(), s ? s : "");
  }

  // JSON text of rows rowStart … rowEnd − 1 of a row-major array nested to its shape (the rows
  // of rowLength numbers; blocks[d] = rows per block of leading dimension d, outermost first):
  // "," before every row but the first, "[" for each block a row opens, the row, "]" for each it
  // closes. Numbers in the shortest form that reads back to the same double (std::to_chars,
  // C++17), and −0 as 0, as JavaScript's String(x) writes it. Not BLAS: it lives here because
  // this is the service's one native module (formatting is where JSON answers spend their time).
  Napi::Value JsonRows(const Napi::CallbackInfo& info) {
    const Args g{info, "jsonRows"};
    g.Count(5);
    const Napi::Float64Array data = g.F64(0);
    const int row = g.Dim(1);
    const Napi::Float64Array blocks = g.F64(2);
    const int start = g.Dim(3), end = g.Dim(4);
    if (row < 1 || start > end) g.Fail(1, "a positive row length, with rowStart ≤ rowEnd");
    const uint64_t need = static_cast<uint64_t>(end) * static_cast<uint64_t>(row);
    if (data.ElementLength() < need) {
      throw Napi::RangeError::New(info.Env(), "jsonRows: data holds " + std::to_string(data.ElementLength()) +
                                                  " elements, the rows need " + std::to_string(need));
    }
    const size_t nb = blocks.ElementLength();
    std::vector<uint64_t> per(nb);
    for (size_t d = 0; d < nb; d++) {
      const double v = blocks[d];
      if (!(v >= 1) || std::floor(v) != v) g.Fail(2, "a Float64Array of positive integers");
      per[d] = static_cast<uint64_t>(v);
    }
    // Rows in parts on OpenBLAS's thread count (the cores the service gives one kernel call), each part
    // written through a pointer into its own stretch of one Buffer of the most its rows can take (a
    // number is at most 24 characters); the stretches are then moved together.
    const double* x = data.Data();
    const uint64_t rowBound = static_cast<uint64_t>(row) * 25 + 2 * nb + 3;
    const uint64_t rows = static_cast<uint64_t>(end - start);
    const uint64_t numbers = rows * static_cast<uint64_t>(row);
    const int parts = static_cast<int>(std::max<uint64_t>(1, std::min<uint64_t>({static_cast<uint64_t>(std::max(1, openblas_get_num_threads())), rows, numbers / kJsonNumbersPerThread})));
    Napi::Buffer<char> out = Napi::Buffer<char>::New(info.Env(), std::max<uint64_t>(1, rows * rowBound));
    char* const block = out.Data();
    std::vector<uint64_t> firstRow(parts + 1), lengths(parts, 0);
    for (int k = 0; k <= parts; k++) firstRow[k] = start + rows * k / parts;
    const auto part = [&](int k) {
      char* const begin = block + (firstRow[k] - start) * rowBound;
      char* o = begin;
      for (uint64_t r = firstRow[k]; r < firstRow[k + 1]; r++) {
        if (r > 0) *o++ = ',';
        for (size_t d = 0; d < nb; d++) if (r % per[d] == 0) *o++ = '[';
        *o++ = '[';
        const double* v = x + r * static_cast<uint64_t>(row);
        for (int j = 0; j < row; j++) {
          if (j > 0) *o++ = ',';
          const double value = v[j] == 0 ? 0.0 : v[j];
          o = std::to_chars(o, o + 24, value).ptr;
        }
        *o++ = ']';
        for (size_t d = nb; d-- > 0;) if ((r + 1) % per[d] == 0) *o++ = ']';
      }
      lengths[k] = static_cast<uint64_t>(o - begin);
    };
    std::vector<std::thread> pool;
    for (int k = 1; k < parts; k++) pool.emplace_back(part, k);
    part(0);
    for (std::thread& t : pool) t.join();
    uint64_t total = lengths[0];
    for (int k = 1; k < parts; k++) {
      std::memmove(block + total, block + (firstRow[k] - start) * rowBound, lengths[k]);
      total += lengths[k];
    }
    // the text alone: a view of its first `total` bytes (Buffer.prototype.subarray)
    return out.Get("subarray").As<Napi::Function>().Call(out, {Napi::Number::New(info.Env(), 0), Napi::Number::New(info.Env(), static_cast<double>(total))});
  }

  // The block form's scatter kernels (scatter.h), on OpenBLAS's thread count (the cores the
  // service gives one kernel call; they take no lock, calling no OpenBLAS). Each binding checks, before the kernel runs,
  // that every index it can touch is inside its buffer: the target's rows are filtered by the
  // kernel (rowStart ≤ r < rowEnd, all inside `data`), the columns it writes are the layers'
  // parameter ranges less colOffset (checked to lie in [0, stride)), and T holds the rows read.

  /** The target of arguments i … i+4 (data, stride, rowStart, rowEnd, colOffset). */
  curvature::Target TargetOf(const Args& g, size_t i, bool mirror) const {
    Napi::Float64Array data = g.F64(i);
    const int stride = g.Dim(i + 1), rowStart = g.Dim(i + 2), rowEnd = g.Dim(i + 3), colOffset = g.Dim(i + 4);
    if (rowEnd < rowStart) g.Fail(i + 3, "at least rowStart");
    if (data.ElementLength() < static_cast<uint64_t>(rowEnd - rowStart) * static_cast<uint64_t>(stride)) {
      throw Napi::RangeError::New(g.info.Env(), std::string(g.fn) + ": the target holds " + std::to_string(data.ElementLength()) +
                                                    " elements, its rows need " + std::to_string(static_cast<uint64_t>(rowEnd - rowStart) * stride));
    }
    return {data.Data(), static_cast<size_t>(stride), rowStart, rowEnd, colOffset, mirror};
  }

  /** The layer of arguments i … i+3 (offset, in, out, bias), whose columns must lie in the target's. */
  curvature::Layer LayerOf(const Args& g, size_t i, const curvature::Target& h) const {
    const curvature::Layer l{g.Dim(i), g.Dim(i + 1), g.Dim(i + 2), g.Bool(i + 3)};
    const long first = l.offset - h.colOffset, end = first + l.out * l.aug();
    if (first < 0 || end > static_cast<long>(h.stride)) {
      throw Napi::RangeError::New(g.info.Env(), std::string(g.fn) + ": the layer's columns " + std::to_string(first) + " … " +
                                                    std::to_string(end) + " are outside the target's stride " + std::to_string(h.stride));
    }
    return l;
  }

  void NeedT(const Args& g, const Napi::Float64Array& t, uint64_t need) const {
    if (t.ElementLength() < need) {
      throw Napi::RangeError::New(g.info.Env(), std::string(g.fn) + ": T holds " + std::to_string(t.ElementLength()) +
                                                    " elements, the rows need " + std::to_string(need));
    }
  }

  // scatterOwnBlock(data, stride, rowStart, rowEnd, colOffset, offset, in, out, bias, t, i0, i1)
  Napi::Value ScatterOwnBlock(const Napi::CallbackInfo& info) {
    const Args g{info, "scatterOwnBlock"};
    g.Count(12);
    const curvature::Target h = TargetOf(g, 0, false);
    const curvature::Layer l = LayerOf(g, 5, h);
    Napi::Float64Array t = g.F64(9);
    const int i0 = g.Dim(10), i1 = g.Dim(11);
    if (i0 > i1 || i1 > l.out) g.Fail(11, "at most the layer's outputs, with i0 ≤ i1");
    const uint64_t aug = static_cast<uint64_t>(l.aug());
    const auto pairs = [](uint64_t r) { return r * (r + 1) / 2; };
    NeedT(g, t, (pairs(i1) - pairs(i0)) * pairs(aug));
    curvature::ScatterOwnBlock(h, l, t.Data(), i0, i1, openblas_get_num_threads());
    return info.Env().Undefined();
  }

  // scatterBlock(data, stride, rowStart, rowEnd, colOffset, mirror, lOffset, lIn, lOut, lBias,
  //              mOffset, mIn, mOut, mBias, t, a0, na, nb, aIsI)
  Napi::Value ScatterBlock(const Napi::CallbackInfo& info) {
    const Args g{info, "scatterBlock"};
    g.Count(19);
    const bool mirror = g.Bool(5);
    const curvature::Target h = TargetOf(g, 0, mirror);
    // without mirroring only layer m's columns are written; the layer-l range is checked all the same
    const curvature::Layer l = LayerOf(g, 6, h);
    const curvature::Layer m = LayerOf(g, 10, h);
    Napi::Float64Array t = g.F64(14);
    const int a0 = g.Dim(15), na = g.Dim(16), nb = g.Dim(17);
    const bool aIsI = g.Bool(18);
    const long iEnd = aIsI ? a0 + static_cast<long>(na) : nb, jEnd = aIsI ? nb : a0 + static_cast<long>(na);
    if (iEnd > l.out || jEnd > l.aug()) g.Fail(16, "such that the rows (i, j) lie in layer l");
    NeedT(g, t, static_cast<uint64_t>(na) * m.out * nb * m.aug());
    curvature::ScatterBlock(h, l, m, t.Data(), a0, na, nb, aIsI, openblas_get_num_threads());
    return info.Env().Undefined();
  }

  // mirrorLower(a, lda, r0, r1, c0, c1): a[j][i] = a[i][j] for r0 ≤ i < r1, c0 ≤ j < min(c1, i).
  Napi::Value MirrorLower(const Napi::CallbackInfo& info) {
    const Args g{info, "mirrorLower"};
    g.Count(6);
    Napi::Float64Array a = g.F64(0);
    const int r0 = g.Dim(2), r1 = g.Dim(3), c0 = g.Dim(4), c1 = g.Dim(5);
    const int lda = g.Fits(a, "A", r1, r1, g.Dim(1));
    if (r0 > r1 || c0 > c1) g.Fail(3, "at least r0 (and c1 at least c0)");
    curvature::MirrorLower(a.Data(), static_cast<size_t>(lda), r0, r1, c0, c1, openblas_get_num_threads());
    return info.Env().Undefined();
  }

  // The per-point row kernels (scatter.h): each checks that every array holds the c points' entries it reads or writes.

  /** Refuses an array of fewer than `need` entries (argument i, named `name`). */
  void Holds(const Args& g, const Napi::Float64Array& a, const char* name, uint64_t need) const {
    if (a.ElementLength() < need) {
      throw Napi::RangeError::New(g.info.Env(), std::string(g.fn) + ": " + name + " holds " + std::to_string(a.ElementLength()) +
                                                    " elements, the points need " + std::to_string(need));
    }
  }

  static uint64_t PairsOf(uint64_t r) { return r * (r + 1) / 2; }

  // khatriRao(x, nx, y, ny, c, out): out[n][j·ny + q] = x[n][j]·y[n][q].
  Napi::Value KhatriRao(const Napi::CallbackInfo& info) {
    const Args g{info, "khatriRao"};
    g.Count(6);
    Napi::Float64Array x = g.F64(0), y = g.F64(2), out = g.F64(5);
    const uint64_t nx = g.Dim(1), ny = g.Dim(3), c = g.Dim(4);
    Holds(g, x, "x", c * nx);
    Holds(g, y, "y", c * ny);
    Holds(g, out, "out", c * nx * ny);
    curvature::KhatriRao(x.Data(), nx, y.Data(), ny, c, out.Data(), openblas_get_num_threads());
    return info.Env().Undefined();
  }

  // symmetricKhatriRao(z, nz, c, out): out[n][j(j+1)/2 + q] = z[n][j]·z[n][q], q ≤ j.
  Napi::Value SymmetricKhatriRao(const Napi::CallbackInfo& info) {
    const Args g{info, "symmetricKhatriRao"};
    g.Count(4);
    Napi::Float64Array z = g.F64(0), out = g.F64(3);
    const uint64_t nz = g.Dim(1), c = g.Dim(2);
    Holds(g, z, "z", c * nz);
    Holds(g, out, "out", c * PairsOf(nz));
    curvature::SymmetricKhatriRao(z.Data(), nz, c, out.Data(), openblas_get_num_threads());
    return info.Env().Undefined();
  }

  // packLower(x, r, c, out): out[n][i(i+1)/2 + p] = x[n][i][p], p ≤ i.
  Napi::Value PackLower(const Napi::CallbackInfo& info) {
    const Args g{info, "packLower"};
    g.Count(4);
    Napi::Float64Array x = g.F64(0), out = g.F64(3);
    const uint64_t r = g.Dim(1), c = g.Dim(2);
    Holds(g, x, "x", c * r * r);
    Holds(g, out, "out", c * PairsOf(r));
    curvature::PackLower(x.Data(), r, c, out.Data(), openblas_get_num_threads());
    return info.Env().Undefined();
  }

  // transposeEach(x, c, r, q, out): out[n][j][i] = x[n][i][j] for each of c r × q matrices.
  Napi::Value TransposeEach(const Napi::CallbackInfo& info) {
    const Args g{info, "transposeEach"};
    g.Count(5);
    Napi::Float64Array x = g.F64(0), out = g.F64(4);
    const uint64_t c = g.Dim(1), r = g.Dim(2), q = g.Dim(3);
    Holds(g, x, "x", c * r * q);
    Holds(g, out, "out", c * r * q);
    curvature::TransposeEach(x.Data(), c, r, q, out.Data(), openblas_get_num_threads());
    return info.Env().Undefined();
  }

  // scaleColumns(x, c, r, w, d): x[n][i][j] *= d[n][j] for each of c r × w matrices.
  Napi::Value ScaleColumns(const Napi::CallbackInfo& info) {
    const Args g{info, "scaleColumns"};
    g.Count(5);
    Napi::Float64Array x = g.F64(0), d = g.F64(4);
    const uint64_t c = g.Dim(1), r = g.Dim(2), w = g.Dim(3);
    Holds(g, x, "x", c * r * w);
    Holds(g, d, "d", c * w);
    curvature::ScaleColumns(x.Data(), c, r, w, d.Data(), openblas_get_num_threads());
    return info.Env().Undefined();
  }

  // layerRows(x, c, k, offset, in, out, bias, z, rows, width): a layer's columns of c·k Jacobian rows.
  Napi::Value LayerRows(const Napi::CallbackInfo& info) {
    const Args g{info, "layerRows"};
    g.Count(10);
    Napi::Float64Array x = g.F64(0), z = g.F64(7), rows = g.F64(8);
    const uint64_t c = g.Dim(1), k = g.Dim(2), width = g.Dim(9);
    const curvature::Layer l{g.Dim(3), g.Dim(4), g.Dim(5), g.Bool(6)};
    const uint64_t aug = static_cast<uint64_t>(l.aug());
    if (static_cast<uint64_t>(l.offset) + static_cast<uint64_t>(l.out) * aug > width) g.Fail(9, "at least the layer's last column + 1");
    Holds(g, x, "x", c * k * static_cast<uint64_t>(l.out));
    Holds(g, z, "z", c * aug);
    Holds(g, rows, "rows", c * k * width);
    curvature::LayerRows(x.Data(), c, k, l, z.Data(), rows.Data(), width, openblas_get_num_threads());
    return info.Env().Undefined();
  }

  // allFinite(a) -> whether no entry is NaN or ±Infinity (on OpenBLAS's thread count).
  Napi::Value AllFinite(const Napi::CallbackInfo& info) {
    const Args g{info, "allFinite"};
    g.Count(1);
    Napi::Float64Array a = g.F64(0);
    return Napi::Boolean::New(info.Env(), curvature::AllFinite(a.Data(), a.ElementLength(), openblas_get_num_threads()));
  }

  // populate(a, threads) -> bytes populated: faults in the pages of a's memory (the whole pages
  // inside it) at once, split over `threads` threads, by madvise(MADV_POPULATE_WRITE) (Linux
  // 5.14+). The contents stay as they are (zero for a fresh Float64Array). Writing a fresh W × W
  // matrix in the block form's scattered order otherwise pays one page fault per 4 KiB page as it
  // goes: 734 MB, 0.7 s of faults scattered, 0.11 s populated on 2 threads (measured 2026-12-01).
  // A hint: 0 where the kernel refuses (older kernels: EINVAL), and nothing else changes.
  Napi::Value Populate(const Napi::CallbackInfo& info) {
    const Args g{info, "populate"};
    g.Count(2);
    Napi::Float64Array a = g.F64(0);
    const int threads = std::max(1, std::min(g.Dim(1), 16));
#ifdef MADV_POPULATE_WRITE
    constexpr int kPopulateWrite = MADV_POPULATE_WRITE;
#else
    constexpr int kPopulateWrite = 23;  // linux/mman.h, absent from older C library headers
#endif
    constexpr uintptr_t kPage = 4096;
    const uintptr_t begin = reinterpret_cast<uintptr_t>(a.Data());
    const uintptr_t first = (begin + kPage - 1) & ~(kPage - 1);
    const uintptr_t last = (begin + a.ElementLength() * sizeof(double)) & ~(kPage - 1);
    if (last <= first) return Napi::Number::New(info.Env(), 0);
    const uintptr_t pages = (last - first) / kPage;
    const uintptr_t per = (pages + threads - 1) / threads;
    std::vector<int> status(threads, 0);
    const auto part = [&](int k) {
      const uintptr_t s = first + std::min(pages, per * k) * kPage, e = first + std::min(pages, per * (k + 1)) * kPage;
      if (e > s) status[k] = madvise(reinterpret_cast<void*>(s), e - s, kPopulateWrite);
    };
    std::vector<std::thread> pool;
    for (int k = 1; k < threads; k++) pool.emplace_back(part, k);
    part(0);
    for (std::thread& t : pool) t.join();
    for (int st : status) if (st != 0) return Napi::Number::New(info.Env(), 0);
    return Napi::Number::New(info.Env(), static_cast<double>(last - first));
  }

  Napi::Value Corename(const Napi::CallbackInfo& info) {
    Args{info, "corename"}.Count(0);
    const char* s = openblas_get_corename();
    return Napi::String::New(info.Env(), s ? s : "");
  }
};

}  // namespace

NODE_API_ADDON(OpenBlasAddon)
