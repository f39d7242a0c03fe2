// Kernels that measure the machine's limits (engine/machine_limits.h times them):
// a streaming read (the decode roofline's bandwidth) and FMA throughput in f32 and
// through the AVX512-BF16 dot product (the prefill roofline's peak), and the int8 dot
// product's (batched decode of quantized weights).
#pragma once

#include <cstddef>
#include <cstdint>

namespace oko {

// Reads n bytes (n a multiple of 64) with full-width loads, in 6 streams side by side
// (the GEMV's access pattern); returns the wrapping sum of its u32 words, so the
// loads cannot be optimised away.
uint64_t ReadBytesChecksum(const uint8_t* p, size_t n);

// Runs `iterations` rounds of independent f32 FMAs on registers; returns the FLOPs done.
double FmaF32Flops(size_t iterations);

// The same with vdpbf16ps (2 FLOPs per bf16 pair); returns 0 when the CPU or the build
// lacks AVX512-BF16.
double DotBf16Flops(size_t iterations);

// The same with vpdpbusd on 512-bit vectors (2 ops per u8 x s8 product), the int8
// kernels' arithmetic on AVX512-VNNI (the AVX3_DL target); returns 0 on other targets,
// whose int8 kernels run other instructions.
double DotInt8Ops(size_t iterations);

// The Highway target every op dispatches to on this CPU ("AVX3_DL", "AVX2", ...).
const char* SimdTargetName();

}  // namespace oko
