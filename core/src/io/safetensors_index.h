// Where a model directory's safetensors weights are: one model.safetensors, or the shards named by
// model.safetensors.index.json (with the tensor -> shard map, checked when the shards are read).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace qpruner::io {

struct SafetensorsShards {
    std::vector<std::filesystem::path> files;        // absolute shard paths, sorted
    std::map<std::string, std::string> weightMap;    // tensor -> shard file name (empty for a single file)
    std::filesystem::path indexFile;                 // empty for a single file
};

// Throws FileError when the directory has neither file, FormatError for a malformed index.
SafetensorsShards findSafetensorsShards(const std::filesystem::path& dir);

} // namespace qpruner::io
