#include "engine/linear.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "ops/elementwise.h"
#include "ops/gemm_packed.h"

namespace oko {

namespace {
// Below this many rows the weight-streaming multi-row kernel beats oneDNN's per-call
// overhead (bench/ops here: oneDNN bf16 ~90 GFLOP/s at M=4, GemmRows ~44, both ~51 at M=2).
constexpr size_t kMinOnednnRows = 4;
// The packed kernels compute whole blocks of 16 rows: below 12 rows oneDNN and GemmRows
// waste less (the bf16 kernel: ~220 GFLOP/s x M/16).
constexpr size_t kMinPackedRows = 12;

std::vector<float> WidenToF32(const TensorView& t) {
  std::vector<float> out(t.numel());
  if (t.dtype == DType::kF32) std::memcpy(out.data(), t.data, t.nbytes);
  if (t.dtype == DType::kBF16) Bf16ToF32Row(t.as<uint16_t>(), out.data(), out.size());
  if (t.dtype == DType::kF16) F16ToF32Row(t.as<uint16_t>(), out.data(), out.size());
  return out;
}
}  // namespace

Linear::Linear(const TensorView* weight, const TensorView* bias, ComputeMode mode)
    : w_(weight), N_(weight->shape[0]), K_(weight->shape[1]), mode_(mode) {
  if (bias != nullptr) bias_ = WidenToF32(*bias);
}

bool Linear::UsesBf16Kernel() const {
  return mode_ == ComputeMode::kBf16 && w_->dtype == DType::kBF16 && K_ % 2 == 0 &&
         PackedGemmBf16Supported();
}

bool Linear::UsesF32Kernel() const {
  // f32 mode, and f16 weights in bf16 mode: exact (rounding f16 to bf16 would drop 3 bits).
  return (mode_ == ComputeMode::kF32 || w_->dtype == DType::kF16) && PackedGemmF32Supported();
}

bool Linear::UsesOnednn() const {
  // bf16 mode (where the bf16 kernel cannot run): bf16 GEMM, f32 weights rounded once.
  // f32 mode: only for f32 weights; widened bf16/f16 weights go through the Highway kernel
  // so nothing is copied.
  if (mode_ == ComputeMode::kBf16) return w_->dtype != DType::kF16;
  return w_->dtype == DType::kF32;
}

void Linear::Forward(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                     size_t y_stride) {
  const MatMulArgs args{x, x_stride, w_->data, w_->dtype, bias_.empty() ? nullptr : bias_.data(),
                        y, y_stride, M, static_cast<size_t>(K_), static_cast<size_t>(N_)};
  if (M == 1) {
    pool.ParallelFor(N_, 16, [&](size_t b, size_t e, int) { GemvRows(args, b, e); }, 4);
    return;
  }
  if (M >= kMinPackedRows && UsesBf16Kernel()) return ForwardBf16(pool, x, x_stride, M, y, y_stride);
  if (M >= kMinPackedRows && UsesF32Kernel()) return ForwardF32(pool, x, x_stride, M, y, y_stride);
  if (M >= kMinOnednnRows && UsesOnednn()) return ForwardOnednn(pool, x, x_stride, M, y, y_stride);
  pool.ParallelFor(N_, 16, [&](size_t b, size_t e, int) { GemmRows(args, b, e); }, 4);
}

// Activations are packed by the whole pool, then the columns of W split over it. The
// packed buffer belongs to the calling thread, shared by every Linear it runs, and grows
// to the largest prefill seen.
void Linear::ForwardBf16(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                         size_t y_stride) {
  thread_local std::vector<uint32_t> buffer;
  if (buffer.size() < PackedBf16Words(M, K_)) buffer.resize(PackedBf16Words(M, K_));
  uint32_t* packed = buffer.data();  // the workers name their own thread_local otherwise
  pool.ParallelFor(PackedBlocks(M), 1, [&](size_t b0, size_t b1, int) {
    PackBf16Rows(x, x_stride, M, K_, b0, b1, packed);
  });
  const auto* w = w_->as<uint16_t>();
  const float* bias = bias_.empty() ? nullptr : bias_.data();
  pool.ParallelFor(N_, 8, [&](size_t n0, size_t n1, int) {
    GemmBf16Packed(packed, M, K_, w, bias, y, y_stride, n0, n1);
  }, 4);
}

void Linear::ForwardF32(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                        size_t y_stride) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < PackedF32Floats(M, K_)) buffer.resize(PackedF32Floats(M, K_));
  float* packed = buffer.data();
  pool.ParallelFor(PackedBlocks(M), 1, [&](size_t b0, size_t b1, int) {
    PackF32Rows(x, x_stride, M, K_, b0, b1, packed);
  });
  const float* bias = bias_.empty() ? nullptr : bias_.data();
  pool.ParallelFor(N_, 8, [&](size_t n0, size_t n1, int) {
    GemmF32Packed(packed, M, K_, w_->data, w_->dtype, bias, y, y_stride, n0, n1);
  }, 4);
}

void Linear::ForwardOnednn(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                           size_t y_stride) {
  // Built on the first prefill, once, whichever context runs it.
  std::call_once(slices_once_, [&] {
    // Slices of whole 64-row blocks (oneDNN's weight blocking), one per worker.
    const size_t parts = static_cast<size_t>(pool.size());
    const size_t rows = (static_cast<size_t>(N_) + parts - 1) / parts;
    const size_t step = std::max<size_t>(64, (rows + 63) / 64 * 64);
    const size_t esize = DTypeSize(w_->dtype);
    for (size_t n0 = 0; n0 < static_cast<size_t>(N_); n0 += step) {
      const size_t n = std::min(step, static_cast<size_t>(N_) - n0);
      slices_.push_back(std::make_unique<OnednnMatMul>(
          w_->data + n0 * K_ * esize, w_->dtype, n, K_,
          bias_.empty() ? nullptr : bias_.data() + n0, mode_));
    }
  });
  pool.Run(slices_.size(), [&](size_t s, int) {
    const size_t n0 = s * slices_[0]->N();
    slices_[s]->Run(x, x_stride, M, y + n0, y_stride);
  });
}

}  // namespace oko
