// Typed access to the fields of a JSON object, with messages that name the file and the
// field ("config.json: 'rope_scaling.factor' must be a number, got "x"").
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace oko {

// Sizes have their limits in common/limits.h; any other integer field stays below 2^40
// so that products of fields cannot overflow; token ids fit int32.
constexpr int64_t kMaxConfigInt = int64_t{1} << 40;
constexpr int64_t kMaxTokenId = INT32_MAX;

class JsonFields {
 public:
  using json = nlohmann::json;

  // `prefix` names the enclosing object in messages, e.g. "rope_scaling.".
  JsonFields(const json& j, const std::string& path, std::string prefix = "")
      : j_(j), path_(path), prefix_(std::move(prefix)) {}

  const json* Get(const char* key) const {
    auto it = j_.find(key);
    return (it == j_.end() || it->is_null()) ? nullptr : &*it;
  }
  Status Int(const char* key, int64_t* out, bool required, int64_t min_value = 1,
             int64_t max_value = kMaxConfigInt) const {
    const json* v = Get(key);
    if (v == nullptr) return required ? Errorf("{}: missing '{}'", path_, Name(key)) : Status{};
    if (!v->is_number_integer())
      return Errorf("{}: '{}' must be an integer, got {}", path_, Name(key), v->dump());
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(max_value))
      return Errorf("{}: '{}' is {}, over oko's limit of {}", path_, Name(key),
                    v->get<uint64_t>(), max_value);
    *out = v->get<int64_t>();
    if (*out < min_value)
      return Errorf("{}: '{}' must be >= {}, got {}", path_, Name(key), min_value, *out);
    if (*out > max_value)
      return Errorf("{}: '{}' is {}, over oko's limit of {}", path_, Name(key), *out, max_value);
    return {};
  }
  Status Double(const char* key, double* out) const {
    const json* v = Get(key);
    if (v == nullptr) return {};
    if (!v->is_number())
      return Errorf("{}: '{}' must be a number, got {}", path_, Name(key), v->dump());
    *out = v->get<double>();
    return {};
  }
  Status Bool(const char* key, bool* out) const {
    const json* v = Get(key);
    if (v == nullptr) return {};
    if (!v->is_boolean())
      return Errorf("{}: '{}' must be true or false, got {}", path_, Name(key), v->dump());
    *out = v->get<bool>();
    return {};
  }
  Status String(const char* key, std::string* out) const {
    const json* v = Get(key);
    if (v == nullptr) return {};
    if (!v->is_string())
      return Errorf("{}: '{}' must be a string, got {}", path_, Name(key), v->dump());
    *out = v->get<std::string>();
    return {};
  }
  // An id or a list of ids (eos_token_id may be either); ids are int32 in the tokenizer.
  Status Ids(const char* key, std::vector<int64_t>* out) const {
    const json* v = Get(key);
    if (v == nullptr) return {};
    auto add = [&](const json& x) -> Status {
      if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > kMaxTokenId ||
          (x.is_number_unsigned() && x.get<uint64_t>() > uint64_t{kMaxTokenId}))
        return Errorf("{}: '{}' must be a token id or a list of ids, got {}", path_, Name(key),
                      v->dump());
      const int64_t id = x.get<int64_t>();
      if (std::find(out->begin(), out->end(), id) == out->end()) out->push_back(id);
      return {};
    };
    if (v->is_array()) {
      for (const auto& x : *v) OKO_RETURN_IF_ERROR(add(x));
      return {};
    }
    return add(*v);
  }

 private:
  std::string Name(const char* key) const { return prefix_ + key; }
  const json& j_;
  const std::string& path_;
  std::string prefix_;
};

}  // namespace oko
