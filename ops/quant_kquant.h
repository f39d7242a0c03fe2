// KQuantSearch: the scale and min search of ggml's Q4_K/Q5_K reference quantizer
// (make_qkx2_quants, no importance matrix) for the 8 sub-blocks of 32 of one super-block:
// x, w [256] (values, weights); scales[8], neg_mins[8] (-min >= 0), L[256] levels in
// [0, nmax]. KQuantSearchScalar is the plain reference (quant_formats.cc); KQuantSearch
// runs the 8 searches in SIMD lanes with the same IEEE operations: bit-identical results
// on every target (tests/ops/quant_kquant_test).
// Threads: pure. Allocates nothing. Cost: (nstep + 2) passes of ~12 flop per value.
#pragma once

#include <cstdint>

namespace oko {

void KQuantSearch(int nmax, float rmin, float rdelta, int nstep, const float* x, const float* w,
                  float* scales, float* neg_mins, uint8_t* L);
void KQuantSearchScalar(int nmax, float rmin, float rdelta, int nstep, const float* x,
                        const float* w, float* scales, float* neg_mins, uint8_t* L);

// Q6KSearch: the 16 symmetric scale searches of ggml's Q6_K reference quantizer
// (make_qx_quants(16, 32, ..., rmse_type 1)) on one super-block: x [256]; scales[16];
// L[256] levels + 32 in [0, 63] (0 for a sub-block of zeros). Bit-identical to the scalar
// Q6KSearchScalar on every target.
void Q6KSearch(const float* x, float* scales, int8_t* L);
void Q6KSearchScalar(const float* x, float* scales, int8_t* L);

}  // namespace oko
