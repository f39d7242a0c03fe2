// Runs a parsed template: scopes as jinja2 has them (a for loop's body is its own scope,
// an if is not; a macro sees where it was defined), the `loop` object, namespace
// assignment, and hard limits so that no template can run forever or fill memory.
#pragma once

#include <cstdint>
#include <string>

#include "loaders/jinja_ast.h"

namespace oko::jinja {

struct RenderLimits {
  size_t max_output_bytes = size_t{16} << 20;
  // Iterations of all for loops of one render together.
  int64_t max_loop_iterations = int64_t{1} << 20;
  // Expression evaluations of one render; a string result also costs one step per 16
  // bytes, so repeatedly building huge strings exhausts the budget too (at most 512 MiB
  // of string results per render).
  int64_t max_steps = int64_t{1} << 25;
};

// Renders `body` with `variables` as the template's context. Throws TemplateError.
std::string RenderTemplate(const Body& body, const Dict& variables, const RenderLimits& limits);

}  // namespace oko::jinja
