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
//
// The binding checks argument counts and types (TypeError) and that every buffer is long
// enough for the shapes given (RangeError), so that no call reads or writes past a buffer.
// Shape consistency beyond that is the caller's job (the core checks shapes at its edge).
#include <napi.h>

#include <cblas.h>
#include <lapacke.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>

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
                             InstanceMethod("dpotrf", &OpenBlasAddon::Dpotrf),
                             InstanceMethod("dpotri", &OpenBlasAddon::Dpotri),
                             InstanceMethod("setNumThreads", &OpenBlasAddon::SetNumThreads),
                             InstanceMethod("getNumThreads", &OpenBlasAddon::GetNumThreads),
                             InstanceMethod("config", &OpenBlasAddon::Config),
                             InstanceMethod("corename", &OpenBlasAddon::Corename),
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

  Napi::Value Corename(const Napi::CallbackInfo& info) {
    Args{info, "corename"}.Count(0);
    const char* s = openblas_get_corename();
    return Napi::String::New(info.Env(), s ? s : "");
  }
};

}  // namespace

NODE_API_ADDON(OpenBlasAddon)
