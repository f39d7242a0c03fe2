// What a model costs in memory beyond its (memory-mapped) weights, computed from its
// config before anything is allocated, so that a KV cache larger than the machine is
// refused with its size instead of aborting or swapping (docs/CLI.md "Resources").
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "engine/model.h"
#include "loaders/hf_config.h"

namespace oko {

struct MemoryEstimate {
  uint64_t kv_cache = 0;     // K and V of every layer, ring slack included
  uint64_t activations = 0;  // per-batch buffers and per-thread attention scratch
  uint64_t total() const { return kv_cache + activations; }
};

// Upper-bound-ish estimate of Model's allocations for these options (engine/model.cc,
// engine/kv_cache.cc); `threads` as resolved (0: every core).
MemoryEstimate EstimateMemory(const ModelConfig& config, const EngineOptions& options);

// Physical memory of this machine in bytes (0 if unknown).
uint64_t PhysicalMemoryBytes();

// Threads the machine has (at least 1) and the most -t accepts (4 per core: more only
// adds waiting, and tens of thousands of threads hang the pool).
int HardwareThreads();
int MaxThreads();

// "137438953472 bytes (128.0 GiB)"; units up to EiB.
std::string HumanBytes(double bytes);
std::string BytesAndHuman(uint64_t bytes);

}  // namespace oko
