// Scalar reference code of the GGML block formats (see quant_formats.h). Written from the
// published layouts (ggml-common.h) and gguf-py's quants.py; no code copied.
// The arithmetic must round exactly like ggml's C: no fused multiply-adds here (with
// -march=native GCC would contract a*b+c), hence -ffp-contract=off (CMakeLists.txt).

#include "ops/quant_formats.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "ops/quant_kquant.h"

namespace oko {

std::optional<QuantType> QuantTypeFromName(std::string_view name) {
  for (const auto& i : kQuantTypes) {
    if (i.name.size() != name.size()) continue;
    bool eq = true;
    for (size_t c = 0; c < name.size(); ++c)
      eq = eq && std::toupper(static_cast<unsigned char>(name[c])) == i.name[c];
    if (eq) return i.type;
  }
  return std::nullopt;
}

std::optional<QuantType> QuantTypeFromDType(DType t) {
  switch (t) {
    case DType::kF32: return QuantType::kF32;
    case DType::kF16: return QuantType::kF16;
    case DType::kBF16: return QuantType::kBF16;
    default: return std::nullopt;
  }
}

std::optional<QuantType> QuantTypeFromGgml(uint32_t ggml_type) {
  for (const auto& i : kQuantTypes)
    if (i.ggml_type == ggml_type) return i.type;
  return std::nullopt;
}

namespace {

inline float H(uint16_t h) { return F16ToF32(h); }

void DequantQ8_0(const BlockQ8_0* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += 32) {
    const float d = H(b[i].d);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void DequantQ4_0(const BlockQ4_0* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += 32) {
    const float d = H(b[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((b[i].qs[j] & 0xF) - 8) * d;
      y[j + 16] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantQ4_1(const BlockQ4_1* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += 32) {
    const float d = H(b[i].d), m = H(b[i].m);
    for (int j = 0; j < 16; ++j) {
      const float p0 = static_cast<float>(b[i].qs[j] & 0xF) * d;
      const float p1 = static_cast<float>(b[i].qs[j] >> 4) * d;
      y[j] = p0 + m;
      y[j + 16] = p1 + m;
    }
  }
}

template <typename B>
uint32_t Qh(const B& b) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, 4);
  return qh;
}

void DequantQ5_0(const BlockQ5_0* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += 32) {
    const float d = H(b[i].d);
    const uint32_t qh = Qh(b[i]);
    for (int j = 0; j < 16; ++j) {
      const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      y[j] = static_cast<float>(((b[i].qs[j] & 0xF) | h0) - 16) * d;
      y[j + 16] = static_cast<float>(((b[i].qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void DequantQ5_1(const BlockQ5_1* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, y += 32) {
    const float d = H(b[i].d), m = H(b[i].m);
    const uint32_t qh = Qh(b[i]);
    for (int j = 0; j < 16; ++j) {
      const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      const float p0 = static_cast<float>((b[i].qs[j] & 0xF) | h0) * d;
      const float p1 = static_cast<float>((b[i].qs[j] >> 4) | h1) * d;
      y[j] = p0 + m;
      y[j + 16] = p1 + m;
    }
  }
}

void DequantQ4_K(const BlockQ4_K* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = H(b[i].d), dmin = H(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int j = 0; j < 8; j += 2, q += 32) {
      uint8_t sc, m;
      ScaleMinK4(j, b[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      ScaleMinK4(j + 1, b[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) {
        const float p = d1 * static_cast<float>(q[l] & 0xF);
        *y++ = p - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const float p = d2 * static_cast<float>(q[l] >> 4);
        *y++ = p - m2;
      }
    }
  }
}

void DequantQ5_K(const BlockQ5_K* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = H(b[i].d), dmin = H(b[i].dmin);
    const uint8_t* ql = b[i].qs;
    const uint8_t* qh = b[i].qh;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 8; j += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      ScaleMinK4(j, b[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      ScaleMinK4(j + 1, b[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) {
        const float p = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0));
        *y++ = p - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const float p = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0));
        *y++ = p - m2;
      }
    }
  }
}

void DequantQ6_K(const BlockQ6_K* b, float* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i) {
    const float d = H(b[i].d);
    const uint8_t* ql = b[i].ql;
    const uint8_t* qh = b[i].qh;
    const int8_t* sc = b[i].scales;
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * static_cast<float>(q1);
        y[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
        y[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
        y[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
      }
    }
  }
}

// ---- Quantizers (ggml's reference algorithms) ----

// Round to nearest, ties to even, for |f| < 2^22 (ggml's nearest_int magic number).
inline int NearestInt(float f) {
  const float v = f + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

void QuantQ8_0(const float* x, BlockQ8_0* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += 32) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < 32; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

// The value of largest magnitude (the first one on ties), with its sign.
inline float SignedAbsMax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void QuantQ4_0(const float* x, BlockQ4_0* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += 32) {
    const float d = SignedAbsMax(x, 32) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantQ4_1(const float* x, BlockQ4_1* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += 32) {
    float min = x[0], max = x[0];
    for (int j = 1; j < 32; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    y[i].m = F32ToF16(min);
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
      const int q1 =
          std::min(15, static_cast<int>(static_cast<int8_t>((x[j + 16] - min) * id + 0.5f)));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantQ5_0(const float* x, BlockQ5_0* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += 32) {
    const float d = SignedAbsMax(x, 32) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
      const int q1 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 16.5f)));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void QuantQ5_1(const float* x, BlockQ5_1* y, size_t nb) {
  for (size_t i = 0; i < nb; ++i, x += 32) {
    float min = x[0], max = x[0];
    for (int j = 1; j < 32; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    y[i].m = F32ToF16(min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
      const int q1 = static_cast<uint8_t>((x[j + 16] - min) * id + 0.5f);
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
      qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

// Scale and min for n values in [0, nmax] minimising the weighted squared error: start from
// the min/max grid, then try nstep+1 nearby grids and refit scale and min by least squares
// (ggml's make_qkx2_quants with use_mad = false). Returns the scale; *neg_min = -min >= 0.
float MakeQkx2(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
               uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
    L[i] = static_cast<uint8_t>(l);
    const float diff = scale * L[i] + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        cur_error += w[i] * (diff * diff);
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

// Q4_K (nmax 15) and Q5_K (nmax 31): 8 sub-blocks of 32 with a scale and a min each,
// both quantized to 6 bits against the super-block's d and dmin. Writes the levels to L.
template <typename B>
void QuantKScalesMins(const float* x, B& y, uint8_t* L, int nmax, float rmin, int nstep) {
  float mins[8], scales[8], weights[256];
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[32 * j + l] = av_x + std::fabs(x[32 * j + l]);
  }
  KQuantSearch(nmax, rmin, 0.1f, nstep, x, weights, scales, mins, L);  // 8 lanes at once
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(y.scales, 0, 12);
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = std::min<uint8_t>(63, static_cast<uint8_t>(NearestInt(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(NearestInt(inv_min * mins[j])));
    if (j < 4) {
      y.scales[j] = ls;
      y.scales[j + 4] = lm;
    } else {
      y.scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      y.scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      y.scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  y.d = F32ToF16(max_scale / 63.f);
  y.dmin = F32ToF16(max_min / 63.f);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    ScaleMinK4(j, y.scales, &sc, &m);
    const float d = F16ToF32(y.d) * sc;
    if (d == 0.0f) continue;
    const float dm = F16ToF32(y.dmin) * m;
    for (int ii = 0; ii < 32; ++ii)
      L[32 * j + ii] = static_cast<uint8_t>(std::clamp(NearestInt((x[32 * j + ii] + dm) / d), 0, nmax));
  }
}

void QuantQ4_K(const float* x, BlockQ4_K* y, size_t nb) {
  uint8_t L[256];
  for (size_t i = 0; i < nb; ++i, x += 256) {
    QuantKScalesMins(x, y[i], L, 15, -1.0f, 20);
    uint8_t* q = y[i].qs;
    for (int j = 0; j < 256; j += 64, q += 32)
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void QuantQ5_K(const float* x, BlockQ5_K* y, size_t nb) {
  uint8_t L[256];
  for (size_t i = 0; i < nb; ++i, x += 256) {
    QuantKScalesMins(x, y[i], L, 31, -0.5f, 15);
    std::memset(y[i].qh, 0, 32);
    uint8_t* ql = y[i].qs;
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < 256; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n + j], l2 = L[n + j + 32];
        if (l1 > 15) {
          l1 -= 16;
          y[i].qh[j] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          y[i].qh[j] |= m2;
        }
        ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
    }
  }
}

constexpr float kGroupMaxEps = 1e-15f;

// Symmetric scale for n values in [-nmax, nmax-1], weights x^2 (ggml's make_qx_quants with
// rmse_type 1, no importance): 19 grids around nmax/max, best by weighted least squares.
float MakeQx(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + std::clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

void QuantQ6_K(const float* x, BlockQ6_K* y, size_t nb) {
  int8_t L[256];
  float scales[16];
  for (size_t i = 0; i < nb; ++i, x += 256) {
    float max_scale = 0, max_abs_scale = 0;
    Q6KSearch(x, scales, L);  // 16 lanes of MakeQx(16, 32, ...)
    for (int ib = 0; ib < 16; ++ib) {
      const float scale = scales[ib];
      if (std::fabs(scale) > max_abs_scale) {
        max_abs_scale = std::fabs(scale);
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = F32ToF16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib)
      y[i].scales[ib] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
    for (int j = 0; j < 16; ++j) {
      const float d = F16ToF32(y[i].d) * y[i].scales[j];
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = static_cast<int8_t>(std::clamp(NearestInt(x[16 * j + ii] / d), -32, 31) + 32);
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
        const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                     ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
    }
  }
}

}  // namespace

void QuantizeActivationsQ8K(const float* x, BlockQ8K* out, size_t cols) {
  OKO_CHECK(cols % 256 == 0, "Q8K activations: {} values, not a multiple of 256", cols);
  for (size_t i = 0; i < cols / 256; ++i, x += 256) {
    float amax = 0.0f;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[j]));
    BlockQ8K& b = out[i];
    b.d = amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int s = 0; s < 16; ++s) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) {
        const int q = std::clamp(NearestInt(x[16 * s + j] * id), -127, 127);
        b.qs[16 * s + j] = static_cast<int8_t>(q);
        sum += q;
      }
      b.sums[s] = static_cast<int16_t>(sum);
    }
  }
}

void KQuantSearchScalar(int nmax, float rmin, float rdelta, int nstep, const float* x,
                        const float* w, float* scales, float* neg_mins, uint8_t* L) {
  uint8_t Laux[32];
  for (int j = 0; j < 8; ++j)
    scales[j] = MakeQkx2(32, nmax, x + 32 * j, w + 32 * j, L + 32 * j, &neg_mins[j], Laux, rmin,
                         rdelta, nstep);
}

void Q6KSearchScalar(const float* x, float* scales, int8_t* L) {
  for (int ib = 0; ib < 16; ++ib) scales[ib] = MakeQx(16, 32, x + 16 * ib, L + 16 * ib);
}

void DequantizeRow(QuantType type, const void* src, float* dst, size_t cols) {
  const size_t block = QuantBlock(type);
  OKO_CHECK(cols % block == 0, "{} row of {} values is not a multiple of its block {}",
            QuantTypeName(type), cols, block);
  const size_t nb = cols / block;
  switch (type) {
    case QuantType::kF32: std::memcpy(dst, src, cols * 4); return;
    case QuantType::kF16:
      for (size_t i = 0; i < cols; ++i) dst[i] = F16ToF32(static_cast<const uint16_t*>(src)[i]);
      return;
    case QuantType::kBF16:
      for (size_t i = 0; i < cols; ++i) dst[i] = Bf16ToF32(static_cast<const uint16_t*>(src)[i]);
      return;
    case QuantType::kQ8_0: return DequantQ8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
    case QuantType::kQ4_0: return DequantQ4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
    case QuantType::kQ4_1: return DequantQ4_1(static_cast<const BlockQ4_1*>(src), dst, nb);
    case QuantType::kQ5_0: return DequantQ5_0(static_cast<const BlockQ5_0*>(src), dst, nb);
    case QuantType::kQ5_1: return DequantQ5_1(static_cast<const BlockQ5_1*>(src), dst, nb);
    case QuantType::kQ4_K: return DequantQ4_K(static_cast<const BlockQ4_K*>(src), dst, nb);
    case QuantType::kQ5_K: return DequantQ5_K(static_cast<const BlockQ5_K*>(src), dst, nb);
    case QuantType::kQ6_K: return DequantQ6_K(static_cast<const BlockQ6_K*>(src), dst, nb);
  }
}

void QuantizeRow(QuantType type, const float* src, void* dst, size_t cols) {
  const size_t block = QuantBlock(type);
  OKO_CHECK(cols % block == 0, "{} row of {} values is not a multiple of its block {}",
            QuantTypeName(type), cols, block);
  const size_t nb = cols / block;
  switch (type) {
    case QuantType::kF32: std::memcpy(dst, src, cols * 4); return;
    case QuantType::kF16:
      for (size_t i = 0; i < cols; ++i) static_cast<uint16_t*>(dst)[i] = F32ToF16(src[i]);
      return;
    case QuantType::kBF16:
      for (size_t i = 0; i < cols; ++i) static_cast<uint16_t*>(dst)[i] = F32ToBf16(src[i]);
      return;
    case QuantType::kQ8_0: return QuantQ8_0(src, static_cast<BlockQ8_0*>(dst), nb);
    case QuantType::kQ4_0: return QuantQ4_0(src, static_cast<BlockQ4_0*>(dst), nb);
    case QuantType::kQ4_1: return QuantQ4_1(src, static_cast<BlockQ4_1*>(dst), nb);
    case QuantType::kQ5_0: return QuantQ5_0(src, static_cast<BlockQ5_0*>(dst), nb);
    case QuantType::kQ5_1: return QuantQ5_1(src, static_cast<BlockQ5_1*>(dst), nb);
    case QuantType::kQ4_K: return QuantQ4_K(src, static_cast<BlockQ4_K*>(dst), nb);
    case QuantType::kQ5_K: return QuantQ5_K(src, static_cast<BlockQ5_K*>(dst), nb);
    case QuantType::kQ6_K: return QuantQ6_K(src, static_cast<BlockQ6_K*>(dst), nb);
  }
}

bool CanInterleave(const WeightView& w, size_t group) {
  return IsBlockQuant(w.type) && w.interleave == 1 && group > 1 && w.rows > 0 && w.rows % group == 0;
}

namespace {
// Visits the pieces of w's row-major rows [n_begin, n_end) with their offsets in the
// interleaved layout of `group` rows: fn(row-major offset, interleaved offset, bytes).
// A block's whole dwords, then (blocks of 4k + 2 bytes) its f16 d, those of the group's
// rows after its dwords. Q8_0, Q4_0 and Q5_0 blocks start with d, so their dwords start
// 2 bytes in; Q6_K's ends with it.
template <typename Fn>
void ForEachPiece(const WeightView& w, size_t group, size_t n_begin, size_t n_end, Fn fn) {
  const size_t rb = w.row_bytes(), bb = Info(w.type).block_bytes, dwords = bb / 4;
  const bool d_first = bb % 4 != 0 && w.type != QuantType::kQ6_K;
  const size_t dwords_at = d_first ? 2 : 0, d_at = d_first ? 0 : 4 * dwords;
  for (size_t r = n_begin; r < n_end; ++r) {
    const size_t lane = r % group;
    for (size_t i = 0; i < rb / bb; ++i) {
      const size_t from = r * rb + i * bb, to = r / group * group * rb + i * group * bb;
      for (size_t k = 0; k < dwords; ++k) fn(from + dwords_at + 4 * k, to + (k * group + lane) * 4, 4);
      if (bb % 4 != 0) fn(from + d_at, to + dwords * group * 4 + lane * 2, 2);
    }
  }
}
}  // namespace

WeightView InterleaveRows(const WeightView& w, size_t group, std::byte* out) {
  OKO_CHECK(CanInterleave(w, group), "{} weight [{}, {}] cannot be interleaved in groups of {}",
            QuantTypeName(w.type), w.rows, w.cols, group);
  ForEachPiece(w, group, 0, w.rows, [&](size_t from, size_t to, size_t n) { std::memcpy(out + to, w.data + from, n); });
  WeightView v = w;
  v.data = out;
  v.interleave = group;
  return v;
}

void CopyRowMajorRows(const WeightView& w, size_t n_begin, size_t n_end, std::byte* out) {
  OKO_CHECK(n_begin <= n_end && n_end <= w.rows, "rows [{}, {}) outside {}", n_begin, n_end, w.rows);
  const size_t rb = w.row_bytes();
  if (w.interleave == 1) {
    if (n_end > n_begin) std::memcpy(out, w.data + n_begin * rb, (n_end - n_begin) * rb);
    return;
  }
  const size_t skip = n_begin * rb;
  ForEachPiece(w, w.interleave, n_begin, n_end,
               [&](size_t to, size_t from, size_t n) { std::memcpy(out + to - skip, w.data + from, n); });
}

}  // namespace oko
