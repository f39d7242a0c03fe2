// OnednnMatMul: prefill GEMM through oneDNN 2.6 matmul, y[M, N] = x[M, K] · W[N, K]^T.
// Weights of the compute type (bf16 in kBf16 mode, f32 in kF32 mode) are used in place,
// not copied: w must outlive the object. Others are converted once, at construction, into
// oneDNN's blocked layout for this CPU (the one it picks for M = 128). Primitives are
// created once per M and cached in the object.
// Modes: kF32 (exact: f32 activations and weights widened to f32), kBf16 (activations
// rounded to bf16 with RNE, bf16 weights, f32 accumulation: AVX512-BF16 fast path; f32
// or f16 weights are rounded to bf16 RNE at construction).
// Construction of f16 weights allocates a temporary f32 copy (N*K*4 bytes).
// Primitives are cached per M; the first Run of a new M pays the JIT (~1 ms), later runs
// ~3 us of overhead. oneDNN 2.6 runs row-padded src or dst with its scalar reference
// code, so activations are packed densely first (kBf16: rounded to bf16; kF32: copied
// when x_stride != K) and y_stride != N is produced densely and copied out; these
// buffers belong to the calling thread (shared by all its matmuls) and grow to the
// largest M seen. Dense x and y (stride = K, N) avoid the copies.
// Reference: f64 matmul of the same (rounded, in kBf16) inputs. Tolerance:
// 1e-5 * sum_k |w x| abs.
// Threads: oneDNN runs on OpenMP. Run() applies the SetOnednnThreads count on the calling
// thread (OpenMP's thread count is per calling thread). Run may be called from several
// threads at once (contexts on different threads share the weights).
#pragma once

#include <cstddef>
#include <map>
#include <memory>

#include "common/dtype.h"

namespace oko {

enum class ComputeMode { kF32, kBf16 };

class OnednnMatMul {
 public:
  // w: [N, K] row-major of w_dtype (f32, bf16, f16); bias [N] f32 or nullptr (copied).
  OnednnMatMul(const void* w, DType w_dtype, size_t N, size_t K, const float* bias,
               ComputeMode mode);
  ~OnednnMatMul();
  OnednnMatMul(const OnednnMatMul&) = delete;
  OnednnMatMul& operator=(const OnednnMatMul&) = delete;

  // x [M, K] with row stride x_stride; y [M, N] with row stride y_stride.
  void Run(const float* x, size_t x_stride, size_t M, float* y, size_t y_stride);
  size_t N() const { return N_; }
  size_t K() const { return K_; }
  // Bytes of the weights it reads (in place or its converted copy).
  size_t weight_bytes() const;
  // oneDNN's implementation name for the last Run (e.g. "brg:avx512_core_bf16"); "ref"
  // means its slow reference code. "" before the first Run.
  const char* impl_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t N_, K_;
};

// Whether oneDNN can run bf16 matmuls on this CPU (it needs AVX-512); kBf16 mode needs it.
bool OnednnBf16Supported();
// Whether its bf16 matmuls run on AMX tiles: the CPU has AMX-BF16, the kernel granted this
// process the tile state (arch_prctl ARCH_REQ_XCOMP_PERM, asked here once) and oneDNN may
// use AMX (ONEDNN_MAX_CPU_ISA can forbid it).
bool OnednnAmxBf16Supported();

// Sets the OpenMP thread count oneDNN uses (call once, with the engine's thread count).
void SetOnednnThreads(int threads);

}  // namespace oko
