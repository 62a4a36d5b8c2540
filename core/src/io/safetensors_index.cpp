#include "io/safetensors_index.h"

#include <set>

#include "io/json_file.h"
#include "qpruner/error.h"

namespace qpruner::io {

SafetensorsShards findSafetensorsShards(const std::filesystem::path& dir)
{
    SafetensorsShards s;
    const auto single = dir / "model.safetensors";
    const auto index = dir / "model.safetensors.index.json";
    if (std::filesystem::exists(single)) {
        s.files.push_back(single);
        return s;
    }
    if (!std::filesystem::exists(index))
        throw FileError(dir.string() + ": no model.safetensors or model.safetensors.index.json");
    s.indexFile = index;
    const auto j = readJsonFile(index);
    if (!j.contains("weight_map") || !j.at("weight_map").is_object())
        throw FormatError(index.string() + ": missing object 'weight_map'");
    std::set<std::string> shards;
    for (auto it = j.at("weight_map").begin(); it != j.at("weight_map").end(); ++it) {
        if (!it.value().is_string())
            throw FormatError(index.string() + ": weight_map entry '" + it.key() + "' is not a file name");
        const auto shard = it.value().get<std::string>();
        if (shard.find('/') != std::string::npos || shard == "..")
            throw FormatError(index.string() + ": shard name '" + shard + "' must be a file in the model directory");
        shards.insert(shard);
        s.weightMap[it.key()] = shard;
    }
    for (const auto& name : shards)
        s.files.push_back(dir / name);
    return s;
}

} // namespace qpruner::io
