#include "engine/linear.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"
#include "ops/elementwise.h"

namespace oko {

namespace {
// Below this many rows the weight-streaming multi-row kernel beats oneDNN (measured in
// bench/ops: oneDNN bf16 ~190 GFLOP/s at M=4, GemmRows ~45).
constexpr size_t kMinOnednnRows = 4;

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

bool Linear::UsesOnednn() const {
  // bf16 mode: bf16 GEMM (weights bf16 or rounded once). f32 mode: only for f32 weights;
  // widened bf16/f16 weights go through the Highway kernel so nothing is copied.
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
  if (M >= kMinOnednnRows && UsesOnednn()) return ForwardOnednn(pool, x, x_stride, M, y, y_stride);
  pool.ParallelFor(N_, 16, [&](size_t b, size_t e, int) { GemmRows(args, b, e); }, 4);
}

void Linear::ForwardOnednn(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                           size_t y_stride) {
  if (slices_.empty()) {
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
  }
  pool.Run(slices_.size(), [&](size_t s, int) {
    const size_t n0 = s * slices_[0]->N();
    slices_[s]->Run(x, x_stride, M, y + n0, y_stride);
  });
}

}  // namespace oko
