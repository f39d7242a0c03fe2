#include "engine/rope_table.h"

#include <cmath>
#include <numbers>

namespace oko {

namespace {
// HF `_compute_llama3_parameters`: long wavelengths are slowed by `factor`, short ones
// kept, and the band in between interpolated smoothly.
float Llama3Scale(float inv_freq, const RopeScaling& s) {
  const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  const double wavelen = 2 * std::numbers::pi / inv_freq;
  if (wavelen < high_wavelen) return inv_freq;
  if (wavelen > low_wavelen) return static_cast<float>(inv_freq / s.factor);
  const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
  return static_cast<float>((1 - smooth) * inv_freq / s.factor + smooth * inv_freq);
}
}  // namespace

RopeTable::RopeTable(int64_t head_dim, double theta, const RopeScaling& scaling)
    : half_(head_dim / 2), inv_freq_(half_) {
  for (int64_t i = 0; i < half_; ++i) {
    // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in f32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    float f = static_cast<float>(1.0 / std::pow(theta, static_cast<double>(exponent)));
    if (scaling.type == "linear") f = static_cast<float>(f / scaling.factor);
    if (scaling.type == "llama3") f = Llama3Scale(f, scaling);
    if (scaling.type == "rope_freqs") f /= scaling.freq_factors[i];  // as ggml_rope_ext
    inv_freq_[i] = f;
  }
}

void RopeTable::Reserve(int64_t n) {
  if (n <= size_) return;
  int64_t new_size = size_ == 0 ? 1024 : size_;
  while (new_size < n) new_size *= 2;
  cos_.resize(new_size * half_);
  sin_.resize(new_size * half_);
  for (int64_t p = size_; p < new_size; ++p) {
    for (int64_t i = 0; i < half_; ++i) {
      // The angle is an f32 product as in HF (position_ids.float() @ inv_freq).
      const float angle = static_cast<float>(p) * inv_freq_[i];
      cos_[p * half_ + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin_[p * half_ + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  size_ = new_size;
}

}  // namespace oko
