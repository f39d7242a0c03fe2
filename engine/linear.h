// Linear: one weight matrix of the model, y = x W^T (+ b), W [N, K] memory-mapped as stored.
// Decode (M = 1) streams W through the Highway GEMV split over the thread pool (bf16
// weights in bf16 mode on AVX512-BF16: the bf16-dot rows kernel, as batches below). Prefill
// (M >= 12) runs the packed AVX-512 kernels (ops/gemm_packed.h: x packed once, columns of
// W split over the pool): bf16 mode with bf16 weights on vdpbf16ps (or oneDNN's AMX
// kernels where the CPU has tiles), f32 mode (and f16 weights in either mode) exactly in f32. The rest: oneDNN (f32 weights rounded once to
// bf16 in bf16 mode; small M) or the Highway multi-row kernel (exact). One to 11 rows in
// bf16 mode on bf16 weights: the bf16-dot rows kernel (ops/gemm_bf16_rows.h, x rounded to
// bf16 as prefill rounds it, each row the same whatever M).
//
// Quantized weights (any QuantType of ops/quant_formats.h, e.g. from QuantizeForLoad in
// engine/quant_plan.h or mapped from a GGUF file): decode runs GemvQuantRows, in f32 mode
// exactly (dequantize in registers, f32 FMAs), in bf16 mode with int8 dot products on
// activations rounded to 8 bits per block (every block format on AVX2/AVX-512:
// llama.cpp's arithmetic), exactly on other targets; smaller batches (several sequences
// decoding together) run GemmQuantRows the same way, each row as it would alone. Prefill
// with M >= 12 dequantizes slabs of 8 rows of W and runs a packed GEMM on them: exactly in
// f32 mode; in bf16 mode on AVX512-BF16, slabs and x rounded to bf16 for vdpbf16ps (KL to
// the exact logits 1.2-2.2e-4 on the golden GGUF prompts, llama.cpp's 0.8-1.4e-3).
//
// oneDNN runs inside our pool, one single-threaded matmul per slice of W's rows per
// worker, rather than on its own OpenMP team: two thread pools spinning on two cores
// fight (DEPS.md), and ours already balances slices across workers.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "engine/profiler.h"
#include "engine/thread_pool.h"
#include "loaders/safetensors.h"
#include "ops/gemm_onednn.h"
#include "ops/matmul.h"
#include "ops/quant_formats.h"
#include "ops/quant_matmul.h"

namespace oko {

// Owned bytes of a weight in one format (what QuantizeForLoad returns), 64-byte aligned.
struct OwnedWeight {
  WeightView view;  // points into storage
  std::shared_ptr<const void> storage;
};

// An f32 matrix [rows, cols] (values.size() == rows * cols) as an OwnedWeight.
OwnedWeight OwnedF32(std::vector<float> values, size_t rows, size_t cols);

// The kernel family a Forward of M rows runs: what Forward dispatches on and what
// `oko bench` and `oko info` report per op (one decision, so the report cannot drift).
enum class LinearPath : uint8_t {
  kRows,        // Highway row kernels: the GEMV, or several rows per pass over W (small M)
  kPackedBf16,  // x packed once, AVX512-BF16 dot on bf16 weights (ops/gemm_packed.h)
  kPackedF32,   // x packed once, f32 FMA on weights widened in registers
  kQuantSlabs,  // block-quantized W dequantized in slabs of 8 rows, packed f32 GEMM
  kOnednn,      // oneDNN matmul per slice of W's rows (AMX tiles where the CPU has them)
};
// Pure on its arguments and this CPU's features.
LinearPath ChooseLinearPath(QuantType type, ComputeMode mode, size_t M, size_t K);
// The arithmetic a path's products run in, so which of the machine's measured peaks
// bounds it (engine/machine_limits.h).
enum class Arithmetic : uint8_t { kF32Fma, kBf16Dot, kInt8Dot, kAmxBf16 };
Arithmetic LinearArithmetic(LinearPath path, QuantType type, ComputeMode mode, size_t M, size_t K, Phase rows);
// "f32 FMA", "bf16 dot", "int8 dot", "AMX bf16".
std::string_view ArithmeticName(Arithmetic a);
// "BF16 GEMV, f32 FMA", "Q4_K 4-row GEMV, int8 dot on 8-bit x", "BF16 packed GEMM, f32 FMA";
// interleave: the weight's WeightView::interleave ("..., 16 rows interleaved").
std::string LinearPathName(LinearPath path, QuantType type, ComputeMode mode, size_t M, size_t K,
                           Phase rows, size_t interleave);

class Linear {
 public:
  // A safetensors weight used in place (F32, BF16, F16).
  Linear(const TensorView* weight, const TensorView* bias, ComputeMode mode);
  // A weight in any format, used in place: the bytes must outlive the Linear (e.g. a
  // mapped GGUF tensor).
  Linear(const WeightView& weight, const TensorView* bias, ComputeMode mode);
  // A weight whose bytes the Linear keeps alive (e.g. from QuantizeForLoad).
  Linear(OwnedWeight weight, const TensorView* bias, ComputeMode mode);

  int64_t N() const { return N_; }
  int64_t K() const { return K_; }
  QuantType format() const { return w_.type; }
  ComputeMode mode() const { return mode_; }
  LinearPath path(size_t M) const;
  const WeightView& weight() const { return w_; }
  size_t weight_bytes() const { return w_.nbytes; }

  // y[M, N] = x[M, K] W^T (+ b); row strides in elements. `rows`: kPrefill, M positions of
  // a prompt; kDecode, the next position of M sequences, where quantized weights in the
  // fast mode take 8-bit activations and give each row what it would give alone.
  void Forward(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
               size_t y_stride, Phase rows);

  // Forward split by the caller, where it runs the row kernels (decode and small batches:
  // RunsByRows), so that several matrices reading one input share one pool job
  // (engine/forward.cc): PrepareRows once per call, then Rows over disjoint ranges of
  // [0, N) from any workers. `xq` holds x quantized for the int8 decode kernels, or
  // rounded to bf16; `same_x`, the call of another matrix on the same x, lends its xq
  // where it holds the same encoding (q, k and v, gate and up: x encoded once, on the
  // thread that starts the job while the others wait: Qwen3-0.6B Q8_0, 8 sequences, 2
  // threads, 263-286 -> 277-297 tok/s, alternated).
  struct RowsCall {
    const float* x;
    size_t x_stride, M;
    float* y;
    size_t y_stride;
    QuantCompute compute = QuantCompute::kExact;
    const void* xq = nullptr;  // quantized: x in 8-bit blocks (kInt8); bf16 weights: x in bf16
    QuantType xq_for = QuantType::kF32;  // the weight type xq was encoded for
  };
  bool RunsByRows(size_t M) const;
  RowsCall PrepareRows(const float* x, size_t x_stride, size_t M, float* y, size_t y_stride,
                       Phase rows, std::vector<uint8_t>* xq, const RowsCall* same_x = nullptr) const;
  void Rows(const RowsCall& call, size_t n0, size_t n1) const;

  // LoRA terms (PEFT's unmerged form, loaders/lora_adapter.h), added while the model is
  // built: adapter number `adapter` contributes scaling * (x A^T) B^T, A [rank, K] and
  // B [N, rank] in f32.
  void AddLora(size_t adapter, float scaling, std::vector<float> a, const std::vector<float>& b,
               size_t rank);
  bool has_lora() const { return !lora_.empty(); }
  size_t max_lora_rank() const;
  // y[M, N] += sum over terms of scales[adapter] * scaling * (x A^T) B^T, in f32; a term
  // whose scale is 0 costs nothing. scratch: at least M * max_lora_rank() floats.
  // Cost: 2 M rank (K + N) flop per term; A and B are read once per call.
  void ForwardLora(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                   size_t y_stride, std::span<const float> scales, float* scratch);

 private:
  struct LoraTerm {
    size_t adapter;
    float scaling;
    size_t rank;
    std::unique_ptr<Linear> a;  // x A^T through the ordinary kernels
    std::vector<float> bt;      // B^T [rank, N]: the update is rank rows scaled and added
  };
  bool IsPlain() const { return !IsBlockQuant(w_.type); }
  DType dtype() const;  // of a plain weight
  WeightView w_;
  std::shared_ptr<const void> storage_;
  std::vector<float> bias_;
  int64_t N_, K_;
  ComputeMode mode_;
  void ForwardBf16(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                   size_t y_stride);
  void ForwardF32(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                  size_t y_stride);
  void ForwardQuant(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                    size_t y_stride);
  void ForwardOnednn(ThreadPool& pool, const float* x, size_t x_stride, size_t M, float* y,
                     size_t y_stride);
  // One per slice of rows of W, created on the first prefill call (which may come from
  // any of the contexts sharing this weight).
  std::once_flag slices_once_;
  std::vector<std::unique_ptr<OnednnMatMul>> slices_;
  std::vector<LoraTerm> lora_;
};

}  // namespace oko
