// Whole safetensors files of libtorch tensors: writing one atomically (the model writer's and the adapters'
// format), and reading a small one back into memory (adapters, optimizer state).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <ATen/ATen.h>

namespace qpruner::model {

// Writes `tensors` (any device or layout; CPU contiguous copies are made only where needed) in name order, with
// `metadata` as "__metadata__", to `path` atomically (io::writeFileAtomic). Throws FileError, and ConfigError for a
// dtype safetensors cannot name.
void writeSafetensorsFile(const std::filesystem::path& path, const std::map<std::string, at::Tensor>& tensors,
                          const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

struct SafetensorsContents {
    std::map<std::string, at::Tensor> tensors; // CPU tensors owning their memory
    std::map<std::string, std::string> metadata;
};

// Reads every tensor of `path` into memory. Throws FileError when it cannot be read, FormatError for a truncated or
// malformed file (io::parseSafetensorsHeader) or a dtype libtorch has no type for.
SafetensorsContents readSafetensorsFile(const std::filesystem::path& path);

} // namespace qpruner::model
