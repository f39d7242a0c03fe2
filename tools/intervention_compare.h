// --compare (run, logits): the next-token distribution without and with the
// interventions, and two continuations side by side.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loaders/tokenizer.h"

namespace oko {

struct NextTokenComparison {
  double kl = 0;  // KL(without || with), nats
  std::vector<std::pair<int32_t, double>> top_without, top_with;  // (id, probability)
};

// The softmax of two logit rows [V] compared: KL divergence and each one's top k.
NextTokenComparison CompareNextToken(const float* without, const float* with, int64_t V, size_t k = 5);

// "KL(without || with) = 0.42 nats" and a table of the top tokens (their text when a
// tokenizer is given, else ids).
std::string FormatComparison(const NextTokenComparison& c, const Tokenizer* tokenizer);

// Two texts in columns of `width` characters under their titles.
std::string SideBySide(const std::string& left_title, const std::string& left, const std::string& right_title,
                       const std::string& right, size_t width = 38);

}  // namespace oko
