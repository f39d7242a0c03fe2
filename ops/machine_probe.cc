#include "ops/machine_probe.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/machine_probe.cc"
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace oko {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// kReadStreams parts of the range read side by side, as the GEMV reads its weight rows
// (ops/matmul.cc GemvStreams): one stream left the memory system idle between a
// thread's few outstanding misses, and the probe then measured less than decode itself
// streamed (Zen 2, 2 threads: 35.0 GB/s while decode read weights at 39.4, "114% of
// the limit"; 1 thread 12.5 vs 6 streams 19.0 in bench/ops matmul_bench's read loop).
constexpr size_t kReadStreams = 6;

uint64_t ReadBytesChecksumT(const uint8_t* p, size_t n) {
  const hn::ScalableTag<uint32_t> d;
  const size_t N = hn::Lanes(d);
  const auto* w = reinterpret_cast<const uint32_t*>(p);
  const size_t words = n / 4;
  const size_t part = words / kReadStreams / N * N;
  hn::Vec<decltype(d)> acc[kReadStreams];
  for (auto& a : acc) a = hn::Zero(d);
  for (size_t i = 0; i < part; i += N)
    for (size_t s = 0; s < kReadStreams; ++s) acc[s] = hn::Add(acc[s], hn::LoadU(d, w + s * part + i));
  for (size_t i = kReadStreams * part; i + N <= words; i += N) acc[0] = hn::Add(acc[0], hn::LoadU(d, w + i));
  auto sum = acc[0];
  for (size_t s = 1; s < kReadStreams; ++s) sum = hn::Add(sum, acc[s]);
  // The lanes summed as uint32_t (wrapping, as the vector adds): Highway 1.0.3's
  // SumOfLanes on AVX-512 adds them as signed int (_mm512_reduce_add_epi32), an overflow
  // UBSan reports.
  HWY_ALIGN uint32_t lanes[hn::MaxLanes(d)];
  hn::Store(sum, d, lanes);
  uint32_t total = 0;
  for (size_t i = 0; i < N; ++i) total += lanes[i];
  return total;
}

// Twelve independent accumulator chains hide the FMA latency. They start from distinct
// values: identical chains are merged by the compiler into one, which then runs at the
// latency, not the throughput, while the count assumes twelve (this probe once reported
// 8x the true rate that way).
double FmaF32FlopsT(size_t iterations) {
  const hn::ScalableTag<float> d;
  const auto m = hn::Set(d, 0.999999f), c = hn::Set(d, 1e-7f);
  auto a0 = hn::Set(d, 1.00f), a1 = hn::Set(d, 1.01f), a2 = hn::Set(d, 1.02f);
  auto a3 = hn::Set(d, 1.03f), a4 = hn::Set(d, 1.04f), a5 = hn::Set(d, 1.05f);
  auto a6 = hn::Set(d, 1.06f), a7 = hn::Set(d, 1.07f), a8 = hn::Set(d, 1.08f);
  auto a9 = hn::Set(d, 1.09f), a10 = hn::Set(d, 1.10f), a11 = hn::Set(d, 1.11f);
  for (size_t i = 0; i < iterations; ++i) {
    a0 = hn::MulAdd(a0, m, c); a1 = hn::MulAdd(a1, m, c); a2 = hn::MulAdd(a2, m, c);
    a3 = hn::MulAdd(a3, m, c); a4 = hn::MulAdd(a4, m, c); a5 = hn::MulAdd(a5, m, c);
    a6 = hn::MulAdd(a6, m, c); a7 = hn::MulAdd(a7, m, c); a8 = hn::MulAdd(a8, m, c);
    a9 = hn::MulAdd(a9, m, c); a10 = hn::MulAdd(a10, m, c); a11 = hn::MulAdd(a11, m, c);
  }
  const auto sum = hn::Add(hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)),
                                   hn::Add(hn::Add(a4, a5), hn::Add(a6, a7))),
                           hn::Add(hn::Add(a8, a9), hn::Add(a10, a11)));
  volatile float sink = hn::GetLane(sum);
  (void)sink;
  return 2.0 * 12 * hn::Lanes(d) * static_cast<double>(iterations);
}

#if HWY_TARGET == HWY_AVX3_DL
// Raw vdpbf16ps: Highway 1.0.3 has no bf16 dot (DEPS.md); the attribute must repeat the
// target string, as clang replaces rather than merges it.
__attribute__((target(HWY_TARGET_STR ",avx512bf16"))) double DotBf16FlopsT(size_t iterations) {
  const __m512bh m = (__m512bh)_mm512_set1_epi16(0x3f80);  // bf16 1.0
  // Distinct starts, as above.
  __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2),
         a3 = _mm512_set1_ps(3), a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5),
         a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7), a8 = _mm512_set1_ps(8),
         a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
  for (size_t i = 0; i < iterations; ++i) {
    a0 = _mm512_dpbf16_ps(a0, m, m); a1 = _mm512_dpbf16_ps(a1, m, m);
    a2 = _mm512_dpbf16_ps(a2, m, m); a3 = _mm512_dpbf16_ps(a3, m, m);
    a4 = _mm512_dpbf16_ps(a4, m, m); a5 = _mm512_dpbf16_ps(a5, m, m);
    a6 = _mm512_dpbf16_ps(a6, m, m); a7 = _mm512_dpbf16_ps(a7, m, m);
    a8 = _mm512_dpbf16_ps(a8, m, m); a9 = _mm512_dpbf16_ps(a9, m, m);
    a10 = _mm512_dpbf16_ps(a10, m, m); a11 = _mm512_dpbf16_ps(a11, m, m);
  }
  __m512 s = _mm512_add_ps(
      _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                    _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))),
      _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return 2.0 * 12 * 32 * static_cast<double>(iterations);  // 32 bf16 pairs per vector
}

// vpdpbusd on 512-bit registers, the int8 kernels' product (ops/quant_matmul.cc): 64
// u8 x s8 products a vector, 2 ops each (multiply, add), as the kernels' GFLOP/s count
// them. Inline asm: distinct chains the compiler cannot merge or hoist (an intrinsic
// version ran one instruction per iteration, reporting 2.5x the true rate). Zen 4, 1
// thread: 466 GOP/s, one vpdpbusd a cycle.
double DotInt8OpsT(size_t iterations) {
  const __m512i u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-5);
  __m512i a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1), a2 = _mm512_set1_epi32(2),
          a3 = _mm512_set1_epi32(3), a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5),
          a6 = _mm512_set1_epi32(6), a7 = _mm512_set1_epi32(7), a8 = _mm512_set1_epi32(8),
          a9 = _mm512_set1_epi32(9), a10 = _mm512_set1_epi32(10), a11 = _mm512_set1_epi32(11);
  for (size_t i = 0; i < iterations; ++i) {
    asm volatile(
        "vpdpbusd %[s], %[u], %[a0]\n\tvpdpbusd %[s], %[u], %[a1]\n\tvpdpbusd %[s], %[u], %[a2]\n\t"
        "vpdpbusd %[s], %[u], %[a3]\n\tvpdpbusd %[s], %[u], %[a4]\n\tvpdpbusd %[s], %[u], %[a5]\n\t"
        "vpdpbusd %[s], %[u], %[a6]\n\tvpdpbusd %[s], %[u], %[a7]\n\tvpdpbusd %[s], %[u], %[a8]\n\t"
        "vpdpbusd %[s], %[u], %[a9]\n\tvpdpbusd %[s], %[u], %[a10]\n\tvpdpbusd %[s], %[u], %[a11]"
        : [a0] "+v"(a0), [a1] "+v"(a1), [a2] "+v"(a2), [a3] "+v"(a3), [a4] "+v"(a4), [a5] "+v"(a5),
          [a6] "+v"(a6), [a7] "+v"(a7), [a8] "+v"(a8), [a9] "+v"(a9), [a10] "+v"(a10), [a11] "+v"(a11)
        : [u] "v"(u), [s] "v"(s));
  }
  __m512i sum = _mm512_setzero_si512();
  for (const __m512i& a : {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11}) sum = _mm512_add_epi32(sum, a);
  volatile int sink = _mm512_cvtsi512_si32(sum);
  (void)sink;
  return 2.0 * 12 * 64 * static_cast<double>(iterations);  // 64 byte products per vector
}
#else
double DotBf16FlopsT(size_t) { return 0.0; }
double DotInt8OpsT(size_t) { return 0.0; }
#endif

}  // namespace HWY_NAMESPACE
}  // namespace oko
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace oko {
HWY_EXPORT(ReadBytesChecksumT);
HWY_EXPORT(FmaF32FlopsT);
HWY_EXPORT(DotBf16FlopsT);
HWY_EXPORT(DotInt8OpsT);

uint64_t ReadBytesChecksum(const uint8_t* p, size_t n) {
  return HWY_DYNAMIC_DISPATCH(ReadBytesChecksumT)(p, n);
}
double FmaF32Flops(size_t iterations) { return HWY_DYNAMIC_DISPATCH(FmaF32FlopsT)(iterations); }
const char* SimdTargetName() {
  const int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  return hwy::TargetName(targets & -targets);  // the lowest bit is the best target
}
double DotBf16Flops(size_t iterations) {
  if (!__builtin_cpu_supports("avx512bf16")) return 0.0;
  return HWY_DYNAMIC_DISPATCH(DotBf16FlopsT)(iterations);
}
double DotInt8Ops(size_t iterations) { return HWY_DYNAMIC_DISPATCH(DotInt8OpsT)(iterations); }
}  // namespace oko
#endif
