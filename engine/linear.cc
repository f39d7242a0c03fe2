#include "engine/linear.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "common/check.h"
#include "ops/elementwise.h"
#include "ops/gemm_bf16_rows.h"
#include "ops/gemm_packed.h"
#include "ops/quant_matmul.h"

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

namespace {
WeightView ViewOf(const TensorView& t) {
  const auto type = QuantTypeFromDType(t.dtype);
  OKO_CHECK(type.has_value() && t.shape.size() == 2, "weight '{}': dtype {} shape {} (need a "
            "2-D F32, BF16 or F16 tensor)", t.name, DTypeName(t.dtype), ShapeString(t.shape));
  return WeightView{*type, t.data, static_cast<size_t>(t.shape[0]),
                    static_cast<size_t>(t.shape[1]), t.nbytes};
}
}  // namespace

OwnedWeight OwnedF32(std::vector<float> values, size_t rows, size_t cols) {
  OKO_CHECK(values.size() == rows * cols, "{} values for a [{}, {}] matrix", values.size(), rows, cols);
  auto storage = std::make_shared<std::vector<float>>(std::move(values));
  const auto* data = reinterpret_cast<const std::byte*>(storage->data());
  return {WeightView{QuantType::kF32, data, rows, cols, rows * cols * sizeof(float)}, storage};
}

Linear::Linear(const TensorView* weight, const TensorView* bias, ComputeMode mode)
    : Linear(ViewOf(*weight), bias, mode) {}

Linear::Linear(OwnedWeight weight, const TensorView* bias, ComputeMode mode)
    : Linear(weight.view, bias, mode) {
  storage_ = std::move(weight.storage);
}

Linear::Linear(const WeightView& weight, const TensorView* bias, ComputeMode mode)
    : w_(weight), N_(static_cast<int64_t>(weight.rows)), K_(static_cast<int64_t>(weight.cols)),
      mode_(mode) {
  OKO_CHECK(w_.nbytes >= w_.rows * w_.row_bytes(), "{} weight [{}, {}]: {} bytes, expected {}",
            QuantTypeName(w_.type), w_.rows, w_.cols, w_.nbytes, w_.rows * w_.row_bytes());
  OKO_CHECK(IsPlain() || w_.cols % QuantBlock(w_.type) == 0, "{} weight: K={} not a multiple "
            "of {}", QuantTypeName(w_.type), w_.cols, QuantBlock(w_.type));
  if (bias != nullptr) bias_ = WidenToF32(*bias);
}

DType Linear::dtype() const {
  switch (w_.type) {
    case QuantType::kBF16: return DType::kBF16;
    case QuantType::kF16: return DType::kF16;
    default: return DType::kF32;
  }
}

namespace {
bool IsPlainType(QuantType t) { return !IsBlockQuant(t); }

// The packed bf16 kernel (vdpbf16ps): bf16 mode, bf16 weights, K even.
bool PackedBf16Runs(QuantType t, ComputeMode mode, size_t K) {
  return mode == ComputeMode::kBf16 && t == QuantType::kBF16 && K % 2 == 0 &&
         PackedGemmBf16Supported();
}

// The packed f32 kernel: f32 mode, and f16 weights in bf16 mode (exact: rounding f16 to
// bf16 would drop 3 bits).
bool PackedF32Runs(QuantType t, ComputeMode mode) {
  return (mode == ComputeMode::kF32 || t == QuantType::kF16) && PackedGemmF32Supported();
}

// oneDNN: bf16 mode where the bf16 kernel cannot run (f32 weights rounded once to bf16);
// in f32 mode only f32 weights (widened bf16/f16 go through the Highway kernels, so
// nothing is copied).
bool OnednnRuns(QuantType t, ComputeMode mode) {
  if (mode == ComputeMode::kBf16) return t != QuantType::kF16;
  return t == QuantType::kF32;
}

// Decode of one or several sequences (M < kMinPackedRows) in the bf16 mode: the rows
// kernel on bf16 dot products (ops/gemm_bf16_rows.h), x rounded to bf16 as the prefill's;
// each row the same whatever M, so a sequence in a batch gets what it gets alone.
bool UsesBf16Rows(QuantType type, ComputeMode mode, size_t M, size_t K) {
  return mode == ComputeMode::kBf16 && type == QuantType::kBF16 && M >= 1 &&
         M <= std::min(kBf16RowsMaxM, kMinPackedRows - 1) && K % 2 == 0 && Bf16RowsSupported();
}

// Prefill of quantized weights in the fast mode where the bf16 packed kernel runs: the
// dequantized slabs and x rounded to bf16 (2x the f32 FMA rate on Zen 4).
bool QuantSlabsBf16(ComputeMode mode, size_t K) {
  return mode == ComputeMode::kBf16 && K % 2 == 0 && PackedGemmBf16Supported();
}
}  // namespace

LinearPath ChooseLinearPath(QuantType type, ComputeMode mode, size_t M, size_t K) {
  if (M == 1 || UsesBf16Rows(type, mode, M, K)) return LinearPath::kRows;
  if (!IsPlainType(type))
    return M < kMinPackedRows || !PackedGemmF32Supported() ? LinearPath::kRows : LinearPath::kQuantSlabs;
  // AMX tiles (through oneDNN's kernels) beat the vdpbf16ps kernel wherever they exist.
  if (M >= kMinOnednnRows && mode == ComputeMode::kBf16 && type == QuantType::kBF16 &&
      OnednnAmxBf16Supported())
    return LinearPath::kOnednn;
  if (M >= kMinPackedRows && PackedBf16Runs(type, mode, K)) return LinearPath::kPackedBf16;
  if (M >= kMinPackedRows && PackedF32Runs(type, mode)) return LinearPath::kPackedF32;
  return M < kMinOnednnRows || !OnednnRuns(type, mode) ? LinearPath::kRows : LinearPath::kOnednn;
}

Arithmetic LinearArithmetic(LinearPath path, QuantType type, ComputeMode mode, size_t M, size_t K, Phase rows) {
  switch (path) {
    case LinearPath::kRows:
      if (UsesBf16Rows(type, mode, M, K)) return Arithmetic::kBf16Dot;
      if (!IsPlainType(type) && rows == Phase::kDecode && mode == ComputeMode::kBf16 && QuantInt8Supported(type))
        return Arithmetic::kInt8Dot;
      return Arithmetic::kF32Fma;
    case LinearPath::kPackedBf16: return Arithmetic::kBf16Dot;
    case LinearPath::kPackedF32: return Arithmetic::kF32Fma;
    case LinearPath::kQuantSlabs: return QuantSlabsBf16(mode, K) ? Arithmetic::kBf16Dot : Arithmetic::kF32Fma;
    case LinearPath::kOnednn:
      if (mode != ComputeMode::kBf16) return Arithmetic::kF32Fma;
      return OnednnAmxBf16Supported() ? Arithmetic::kAmxBf16 : Arithmetic::kBf16Dot;
  }
  return Arithmetic::kF32Fma;
}

std::string_view ArithmeticName(Arithmetic a) {
  switch (a) {
    case Arithmetic::kF32Fma: return "f32 FMA";
    case Arithmetic::kBf16Dot: return "bf16 dot";
    case Arithmetic::kInt8Dot: return "int8 dot";
    case Arithmetic::kAmxBf16: return "AMX bf16";
  }
  return "?";
}

std::string LinearPathName(LinearPath path, QuantType type, ComputeMode mode, size_t M, size_t K,
                           Phase rows, size_t interleave) {
  const std::string_view t = QuantTypeName(type);
  switch (path) {
    case LinearPath::kRows: {
      const std::string shape = M == 1 ? "GEMV" : fmt::format("{}-row GEMV", M);
      const Arithmetic a = LinearArithmetic(path, type, mode, M, K, rows);  // never AMX here
      if (a == Arithmetic::kBf16Dot) return fmt::format("{} {}, bf16 dot", t, shape);
      if (a == Arithmetic::kInt8Dot) {
        const std::string layout = interleave > 1 ? fmt::format(", {} rows interleaved", interleave) : "";
        return fmt::format("{} {}, int8 dot on 8-bit x{}", t, shape, layout);
      }
      return fmt::format("{} {}, {}f32 FMA", t, shape, IsPlainType(type) ? "" : "dequantized to ");
    }
    case LinearPath::kPackedBf16: return fmt::format("{} packed GEMM, bf16 dot", t);
    case LinearPath::kPackedF32: return fmt::format("{} packed GEMM, f32 FMA", t);
    case LinearPath::kQuantSlabs:
      return QuantSlabsBf16(mode, K) ? fmt::format("{} slabs dequantized to bf16, packed GEMM, bf16 dot", t)
                                     : fmt::format("{} slabs dequantized, packed f32 GEMM", t);
    case LinearPath::kOnednn:
      return fmt::format("{} oneDNN {}{}", t, mode == ComputeMode::kBf16 ? "bf16" : "f32",
                         mode == ComputeMode::kBf16 && OnednnAmxBf16Supported() ? " (AMX)" : "");
  }
  return "?";
}

LinearPath Linear::path(size_t M) const {
  return ChooseLinearPath(w_.type, mode_, M, static_cast<size_t>(K_));
}

void Linear::Forward(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                     size_t y_stride, Phase rows) {
  switch (path(M)) {
    case LinearPath::kRows: {
      thread_local std::vector<uint8_t> xq;
      const RowsCall call = PrepareRows(x, x_stride, M, y, y_stride, rows, &xq);
      pool.ParallelFor(N_, 16, [&](size_t b, size_t e, int) { Rows(call, b, e); }, 4);
      return;
    }
    case LinearPath::kQuantSlabs: return ForwardQuant(pool, x, x_stride, M, y, y_stride);
    case LinearPath::kPackedBf16: return ForwardBf16(pool, x, x_stride, M, y, y_stride);
    case LinearPath::kPackedF32: return ForwardF32(pool, x, x_stride, M, y, y_stride);
    case LinearPath::kOnednn: return ForwardOnednn(pool, x, x_stride, M, y, y_stride);
  }
}

bool Linear::RunsByRows(size_t M) const { return path(M) == LinearPath::kRows; }

Linear::RowsCall Linear::PrepareRows(const float* x, size_t x_stride, size_t M, float* y,
                                     size_t y_stride, Phase rows, std::vector<uint8_t>* xq,
                                     const RowsCall* same_x) const {
  RowsCall call{x, x_stride, M, y, y_stride};
  const bool lent = same_x != nullptr && same_x->xq != nullptr && same_x->x == x &&
                    same_x->x_stride == x_stride && same_x->M == M;
  // Decode in the fast mode: int8 dot products on 8-bit activations where the kernel has
  // them (llama.cpp's arithmetic), x quantized once here rather than once per task; the
  // f32 mode and prefill stay exact on the dequantized weights.
  if (rows == Phase::kDecode && !IsPlain() && mode_ == ComputeMode::kBf16 &&
      QuantInt8Supported(w_.type)) {
    call.compute = QuantCompute::kInt8;
    call.xq_for = w_.type;
    if (lent && same_x->compute == QuantCompute::kInt8 && SameInt8Activations(same_x->xq_for, w_.type)) {
      call.xq = same_x->xq;
      return call;
    }
    const size_t bytes = Int8ActivationBytes(w_.type, K_);
    uint8_t* rows = Int8ActivationRows(*xq, w_.type, K_, M);
    for (size_t m = 0; m < M; ++m) QuantizeInt8Activations(w_.type, x + m * x_stride, K_, rows + m * bytes);
    call.xq = rows;
  }
  if (UsesBf16Rows(w_.type, mode_, M, static_cast<size_t>(K_))) {
    call.xq_for = QuantType::kBF16;
    if (lent && same_x->compute == QuantCompute::kExact && same_x->xq_for == QuantType::kBF16) {
      call.xq = same_x->xq;
      return call;
    }
    const size_t bytes = M * K_ * sizeof(uint16_t);
    if (xq->size() < bytes) xq->resize(bytes);
    RoundRowsToBf16(x, x_stride, M, K_, reinterpret_cast<uint16_t*>(xq->data()));
    call.xq = xq->data();
  }
  return call;
}

void Linear::Rows(const RowsCall& c, size_t n0, size_t n1) const {
  const float* bias = bias_.empty() ? nullptr : bias_.data();
  if (!IsPlain()) {
    QuantMatMulArgs args{c.x, c.x_stride, w_, bias, c.y, c.y_stride, c.M, c.compute};
    args.xq = c.xq;
    return c.M == 1 ? GemvQuantRows(args, n0, n1) : GemmQuantRows(args, n0, n1);
  }
  if (c.xq != nullptr)  // UsesBf16Rows: x rounded to bf16 by PrepareRows
    return GemmBf16Rows(static_cast<const uint16_t*>(c.xq), c.M, K_, reinterpret_cast<const uint16_t*>(w_.data),
                        bias, c.y, c.y_stride, n0, n1);
  const MatMulArgs args{c.x, c.x_stride, w_.data, dtype(), bias, c.y, c.y_stride, c.M,
                        static_cast<size_t>(K_), static_cast<size_t>(N_)};
  c.M == 1 ? GemvRows(args, n0, n1) : GemmRows(args, n0, n1);
}

void Linear::AddLora(size_t adapter, float scaling, std::vector<float> a,
                     const std::vector<float>& b, size_t rank) {
  const size_t N = static_cast<size_t>(N_);
  OKO_CHECK(a.size() == rank * static_cast<size_t>(K_) && b.size() == N * rank,
            "LoRA A {} / B {} values for rank {} of a [{}, {}] weight", a.size(), b.size(), rank, N_, K_);
  LoraTerm t{adapter, scaling, rank, nullptr, std::vector<float>(rank * N)};
  for (size_t n = 0; n < N; ++n)
    for (size_t k = 0; k < rank; ++k) t.bt[k * N + n] = b[n * rank + k];
  t.a = std::make_unique<Linear>(OwnedF32(std::move(a), rank, K_), nullptr, ComputeMode::kF32);
  lora_.push_back(std::move(t));
}

size_t Linear::max_lora_rank() const {
  size_t r = 0;
  for (const LoraTerm& t : lora_) r = std::max(r, t.rank);
  return r;
}

void Linear::ForwardLora(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                         size_t y_stride, std::span<const float> scales, float* scratch) {
  const size_t N = static_cast<size_t>(N_);
  for (LoraTerm& t : lora_) {
    const float scale = scales[t.adapter] * t.scaling;
    if (scale == 0.0f) continue;
    t.a->Forward(pool, x, x_stride, M, scratch, t.rank, Phase::kPrefill);  // xa = x A^T (f32)
    // y += (scale xa) B^T, as rank rows of B^T scaled and added: contiguous along N.
    pool.ParallelFor(N, 16, [&](size_t n0, size_t n1, int) {
      for (size_t m = 0; m < M; ++m)
        for (size_t k = 0; k < t.rank; ++k)
          AddScaledInplace(y + m * y_stride + n0, t.bt.data() + k * N + n0,
                           scale * scratch[m * t.rank + k], n1 - n0);
    });
  }
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
  const auto* w = reinterpret_cast<const uint16_t*>(w_.data);
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
    GemmF32Packed(packed, M, K_, w_.data, dtype(), bias, y, y_stride, n0, n1);
  }, 4);
}

// Quantized weights, M >= 12 (smaller M runs by rows): x packed once as in ForwardF32,
// then each task dequantizes slabs of kSlabRows rows of W (exactly, ops/quant_matmul.h)
// into a buffer of its thread and runs a packed GEMM on them: the dequantization (~1 op
// per weight) is amortized over the M rows. The exact mode runs the f32 kernel; the fast
// mode on AVX512-BF16 rounds the slab and x to bf16 for the bf16 kernel (QuantSlabsBf16).
void Linear::ForwardQuant(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                          size_t y_stride) {
  const float* bias = bias_.empty() ? nullptr : bias_.data();
  constexpr size_t kSlabRows = 8;  // the packed kernels' tile width
  const bool bf16 = QuantSlabsBf16(mode_, static_cast<size_t>(K_));
  thread_local std::vector<float> buffer;
  const size_t floats = bf16 ? PackedBf16Words(M, K_) : PackedF32Floats(M, K_);  // 4-byte words
  if (buffer.size() < floats) buffer.resize(floats);
  float* packed = buffer.data();
  auto* packed_bf16 = reinterpret_cast<uint32_t*>(buffer.data());
  pool.ParallelFor(PackedBlocks(M), 1, [&](size_t b0, size_t b1, int) {
    if (bf16) return PackBf16Rows(x, x_stride, M, K_, b0, b1, packed_bf16);
    PackF32Rows(x, x_stride, M, K_, b0, b1, packed);
  });
  pool.ParallelFor(N_, kSlabRows, [&](size_t n0, size_t n1, int) {
    thread_local std::vector<float> slab;
    thread_local std::vector<uint16_t> slab_bf16;
    if (slab.size() < kSlabRows * K_) slab.resize(kSlabRows * K_);
    if (bf16 && slab_bf16.size() < kSlabRows * K_) slab_bf16.resize(kSlabRows * K_);
    for (size_t s = n0; s < n1; s += kSlabRows) {
      const size_t rows = std::min(kSlabRows, n1 - s);
      DequantizeWeightRows(w_, s, s + rows, slab.data());
      const float* b = bias ? bias + s : nullptr;
      if (bf16) {
        F32ToBf16Row(slab.data(), slab_bf16.data(), rows * K_);
        GemmBf16Packed(packed_bf16, M, K_, slab_bf16.data(), b, y + s, y_stride, 0, rows);
      } else {
        GemmF32Packed(packed, M, K_, slab.data(), DType::kF32, b, y + s, y_stride, 0, rows);
      }
    }
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
    const size_t esize = DTypeSize(dtype());
    for (size_t n0 = 0; n0 < static_cast<size_t>(N_); n0 += step) {
      const size_t n = std::min(step, static_cast<size_t>(N_) - n0);
      slices_.push_back(std::make_unique<OnednnMatMul>(
          w_.data + n0 * K_ * esize, dtype(), n, K_,
          bias_.empty() ? nullptr : bias_.data() + n0, mode_));
    }
  });
  pool.Run(slices_.size(), [&](size_t s, int) {
    const size_t n0 = s * slices_[0]->N();
    slices_[s]->Run(x, x_stride, M, y + n0, y_stride);
  });
}

}  // namespace oko
