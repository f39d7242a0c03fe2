// Limits on what oko reads: every input that could make it allocate without bound or run
// forever has a cap here, far above what real Hugging Face files need, and an error that
// names the file and the limit when it is crossed (exit status 2). Template limits (loop
// iterations, output bytes, recursion) live with the template engine (loaders/jinja_*.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace oko {

// Whole files read into memory. Real sizes: config.json ~1 KB, an index ~50 KB per 1000
// tensors, tokenizer_config.json up to a few MB (added_tokens_decoder), tokenizer.json
// up to ~35 MB (Gemma 3), chat templates up to ~20 KB.
inline constexpr uint64_t kMaxReadFileBytes = uint64_t{1} << 30;  // any other file
inline constexpr uint64_t kMaxConfigJsonBytes = uint64_t{16} << 20;
inline constexpr uint64_t kMaxIndexJsonBytes = uint64_t{64} << 20;
inline constexpr uint64_t kMaxTokenizerConfigBytes = uint64_t{64} << 20;
inline constexpr uint64_t kMaxTokenizerJsonBytes = uint64_t{1} << 30;
inline constexpr uint64_t kMaxTemplateBytes = uint64_t{1} << 20;
inline constexpr uint64_t kMaxMessagesBytes = uint64_t{64} << 20;  // oko template --messages
inline constexpr uint64_t kMaxStdinTextBytes = uint64_t{256} << 20;  // oko tokenize from stdin

// Safetensors (the header itself is capped at 100 MiB, loaders/safetensors.h).
inline constexpr uint64_t kMaxTensorsPerFile = uint64_t{1} << 16;
inline constexpr uint64_t kMaxTensorNameBytes = 1024;
inline constexpr uint64_t kMaxTensorRank = 8;

// GGUF (loaders/gguf.h). Real files: ~25 keys plus the tokenizer's arrays (up to ~300k
// strings of merges), a chat template of a few KB, a few hundred tensors of rank 1-2.
inline constexpr uint64_t kMaxGgufMetadataKeys = uint64_t{1} << 16;
inline constexpr uint64_t kMaxGgufKeyBytes = 65535;  // the spec's limit on a key
inline constexpr uint64_t kMaxGgufStringBytes = uint64_t{64} << 20;
inline constexpr uint64_t kMaxGgufArrayLength = uint64_t{1} << 24;
inline constexpr uint64_t kMaxGgufArrayDepth = 4;    // arrays of arrays of ...
inline constexpr uint64_t kMaxGgufValues = uint64_t{1} << 25;  // all array elements of a file
inline constexpr uint64_t kMaxGgufTensorDims = 4;    // GGML_MAX_DIMS
inline constexpr uint64_t kMaxGgufAlignment = uint64_t{1} << 16;

// Tokenizer: the largest token id + 1 (real vocabularies: 32k-262k) and the longest token.
inline constexpr int64_t kMaxVocabSize = int64_t{1} << 24;
inline constexpr uint64_t kMaxTokenBytes = uint64_t{1} << 16;

// config.json dimensions (real maxima today: 128 layers, hidden 16384, vocab 262144).
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxHidden = int64_t{1} << 17;
inline constexpr int64_t kMaxIntermediate = int64_t{1} << 20;
inline constexpr int64_t kMaxHeads = 1024;
inline constexpr int64_t kMaxHeadDim = 1024;

// LoRA adapters (published adapters use r = 4..256) and how many --lora flags at once.
inline constexpr int64_t kMaxLoraRank = 4096;
inline constexpr size_t kMaxLoraAdapters = 64;

// oko serve (docs/SERVER.md): a request body (a chat of ~4M characters), the stop
// sequences of one request (OpenAI's limit), the slots one server runs.
inline constexpr uint64_t kMaxRequestBodyBytes = uint64_t{16} << 20;
inline constexpr uint64_t kMaxStopSequences = 4;
inline constexpr int64_t kMaxServerSlots = 256;
inline constexpr int64_t kMaxServerQueue = 4096;
// Alternatives reported per generated token: OpenAI's limits (chat 20, completions 5).
inline constexpr int64_t kMaxTopLogprobs = 20;
inline constexpr int64_t kMaxCompletionLogprobs = 5;

}  // namespace oko
