#include "ops/gemm_onednn.h"

#include <cpuid.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "common/check.h"
#include "ops/elementwise.h"

namespace oko {

namespace {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// 0 = leave OpenMP's default. Applied in Run() on the calling thread, because
// omp_set_num_threads only affects the thread that calls it.
std::atomic<int> g_threads{0};

// M used to pick oneDNN's preferred blocked weight layout (a typical prefill chunk).
constexpr dnnl::memory::dim kLayoutM = 128;

dnnl::memory::dim D(size_t v) { return static_cast<dnnl::memory::dim>(v); }

struct Buffers {
  std::vector<uint16_t> x_bf16;
  std::vector<float> x_dense, y_dense;
};
}  // namespace

struct OnednnMatMul::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  ComputeMode mode;
  dt act_dt;
  dnnl::memory::desc w_md;  // blocked layout chosen by oneDNN for this CPU
  dnnl::memory weights;
  dnnl::memory::desc bias_md;
  dnnl::memory bias;
  struct Prim {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul mm;
  };
  std::mutex prims_mutex;        // contexts on different threads share the weights
  std::map<size_t, Prim> prims;  // by M; a node stays valid while others are added
  std::atomic<const char*> last_impl{""};

  const Prim& PrimFor(size_t M, size_t K, size_t N) {
    std::lock_guard lock(prims_mutex);
    auto it = prims.find(M);
    if (it == prims.end()) {
      auto pd = MakePd(M, K, N, w_md);
      dnnl::matmul mm(pd);
      it = prims.emplace(M, Prim{std::move(pd), std::move(mm)}).first;
    }
    return it->second;
  }

  dnnl::matmul::primitive_desc MakePd(size_t M, size_t K, size_t N,
                                      const dnnl::memory::desc& wd) const {
    const dnnl::memory::desc src({D(M), D(K)}, act_dt, tag::ab);
    const dnnl::memory::desc dst({D(M), D(N)}, dt::f32, tag::ab);
    const auto desc = bias ? dnnl::matmul::desc(src, wd, bias_md, dst)
                           : dnnl::matmul::desc(src, wd, dst);
    return dnnl::matmul::primitive_desc(desc, eng);
  }
};

OnednnMatMul::OnednnMatMul(const void* w, DType w_dtype, size_t N, size_t K, const float* bias,
                           ComputeMode mode)
    : impl_(std::make_unique<Impl>()), N_(N), K_(K) {
  OKO_CHECK(w_dtype == DType::kF32 || w_dtype == DType::kBF16 || w_dtype == DType::kF16,
            "weight dtype {} not supported (F32, BF16, F16)", DTypeName(w_dtype));
  OKO_CHECK(N > 0 && K > 0, "empty weight [{}, {}]", N, K);
  Impl& im = *impl_;
  im.mode = mode;
  im.act_dt = mode == ComputeMode::kBf16 ? dt::bf16 : dt::f32;
  if (bias != nullptr) {
    im.bias_md = dnnl::memory::desc({1, D(N)}, dt::f32, tag::ab);
    im.bias = dnnl::memory(im.bias_md, im.eng);
    std::copy(bias, bias + N, static_cast<float*>(im.bias.get_data_handle()));
  }

  // The [N, K] row-major buffer is the {K, N} matrix in `ba` order. Weights already of
  // the compute type are used in place: brgemm packs blocks of them as it goes (within
  // ~5% of a reordered copy at the Qwen3-0.6B shapes, measured with the two side by side)
  // and the model's weights are not held twice in memory. Others are converted once by
  // oneDNN's reorder into its blocked layout (f32 -> bf16 rounds to nearest even; f16 is
  // widened to f32 first, exactly).
  const dt w_dt = w_dtype == DType::kBF16 ? dt::bf16 : w_dtype == DType::kF32 ? dt::f32 : dt::f16;
  if (w_dt == im.act_dt) {
    im.w_md = dnnl::memory::desc({D(K), D(N)}, w_dt, tag::ba);
    im.weights = dnnl::memory(im.w_md, im.eng, const_cast<void*>(w));
    return;
  }
  std::vector<float> widened;
  const void* src = w;
  dt src_dt = w_dtype == DType::kBF16 ? dt::bf16 : dt::f32;
  if (w_dtype == DType::kF16) {
    widened.resize(N * K);
    F16ToF32Row(static_cast<const uint16_t*>(w), widened.data(), N * K);
    src = widened.data();
  }
  const dnnl::memory::desc user_md({D(K), D(N)}, src_dt, tag::ba);
  const dnnl::memory::desc any_md({D(K), D(N)}, im.act_dt, tag::any);
  im.w_md = im.MakePd(kLayoutM, K, N, any_md).weights_desc();
  im.weights = dnnl::memory(im.w_md, im.eng);
  dnnl::memory user(user_md, im.eng, const_cast<void*>(src));
  dnnl::stream strm(im.eng);
  dnnl::reorder(user, im.weights).execute(strm, user, im.weights);
  strm.wait();
}

OnednnMatMul::~OnednnMatMul() = default;

size_t OnednnMatMul::weight_bytes() const { return impl_->w_md.get_size(); }

void OnednnMatMul::Run(const float* x, size_t x_stride, size_t M, float* y, size_t y_stride) {
  OKO_CHECK(x_stride >= K_ && y_stride >= N_, "strides x={} y={} for K={} N={}", x_stride,
            y_stride, K_, N_);
  if (M == 0) return;
  Impl& im = *impl_;
  if (const int t = g_threads.load(std::memory_order_relaxed); t > 0 && omp_get_max_threads() != t)
    omp_set_num_threads(t);

  // oneDNN 2.6 falls back to its reference (scalar) matmul when src or dst rows are
  // padded, so activations are packed densely: rounded to bf16 (kBf16 mode) or copied
  // (kF32 mode with x_stride != K), and a strided y is produced densely and copied out.
  // The buffers belong to the calling thread, shared by every matmul it runs, and grow
  // to the largest seen: held per object they took 0.8 GB over the 0.6B model's slices.
  thread_local Buffers buffers;
  auto& [x_bf16, x_dense, y_dense] = buffers;
  const void* src = x;
  if (im.mode == ComputeMode::kBf16) {
    if (x_bf16.size() < M * K_) x_bf16.resize(M * K_);
    for (size_t m = 0; m < M; ++m) F32ToBf16Row(x + m * x_stride, x_bf16.data() + m * K_, K_);
    src = x_bf16.data();
  } else if (x_stride != K_) {
    if (x_dense.size() < M * K_) x_dense.resize(M * K_);
    for (size_t m = 0; m < M; ++m)
      std::copy(x + m * x_stride, x + m * x_stride + K_, x_dense.data() + m * K_);
    src = x_dense.data();
  }
  float* dst = y;
  if (y_stride != N_) {
    if (y_dense.size() < M * N_) y_dense.resize(M * N_);
    dst = y_dense.data();
  }
  const Impl::Prim& prim = im.PrimFor(M, K_, N_);
  dnnl::memory src_mem(prim.pd.src_desc(), im.eng, const_cast<void*>(src));
  dnnl::memory dst_mem(prim.pd.dst_desc(), im.eng, dst);
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, im.weights}, {DNNL_ARG_DST, dst_mem}};
  if (im.bias) args.emplace(DNNL_ARG_BIAS, im.bias);
  dnnl::stream strm(im.eng);  // a stream is not shared between threads
  prim.mm.execute(strm, args);
  strm.wait();
  im.last_impl = prim.pd.impl_info_str();
  if (dst != y)
    for (size_t m = 0; m < M; ++m) std::copy(dst + m * N_, dst + (m + 1) * N_, y + m * y_stride);
}

const char* OnednnMatMul::impl_name() const { return impl_->last_impl; }

bool OnednnBf16Supported() {
  static const bool supported = [] {
    try {
      const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
      const dnnl::memory::desc src({1, 32}, dt::bf16, tag::ab), w({32, 32}, dt::bf16, tag::ba);
      const dnnl::memory::desc dst({1, 32}, dt::f32, tag::ab);
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, w, dst), eng);
      return true;
    } catch (const dnnl::error&) {
      return false;  // oneDNN 2.6 has bf16 matmuls from AVX-512 (avx512_core) up
    }
  }();
  return supported;
}

namespace {
// CPUID.(EAX=7, ECX=0):EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
bool CpuHasAmxBf16() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
  return ((d >> 22) & 1) != 0 && ((d >> 24) & 1) != 0;
}

// Linux (5.16+) gives a process the AMX tile data state only when it asks: without it
// the first tile instruction faults. oneDNN asks too; asking twice is harmless.
bool KernelGrantsAmxTiles() {
  constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureXtileData = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) != 0) return false;
  unsigned long features = 0;
  return syscall(SYS_arch_prctl, kArchGetXcompPerm, &features) == 0 &&
         ((features >> kXfeatureXtileData) & 1) != 0;
}
}  // namespace

bool OnednnAmxBf16Supported() {
  static const bool supported = [] {
    if (!CpuHasAmxBf16() || !KernelGrantsAmxTiles() || !OnednnBf16Supported()) return false;
    // ONEDNN_MAX_CPU_ISA may hold oneDNN below AMX.
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto amx = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_amx);
    return (isa & amx) == amx;
  }();
  return supported;
}

void SetOnednnThreads(int threads) {
  OKO_CHECK(threads > 0, "threads={}", threads);
  g_threads.store(threads, std::memory_order_relaxed);
  omp_set_num_threads(threads);
}

}  // namespace oko
