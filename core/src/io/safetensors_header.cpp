#include "io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "qpruner/error.h"

namespace qpruner::io {

int dtypeSize(const std::string& dtype, const std::filesystem::path& file)
{
    if (dtype == "F64" || dtype == "I64" || dtype == "U64")
        return 8;
    if (dtype == "F32" || dtype == "I32" || dtype == "U32")
        return 4;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16")
        return 2;
    if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2")
        return 1;
    throw FormatError((file.empty() ? std::string("safetensors") : file.string()) + ": unknown dtype '" +
                      dtype + "'");
}

SafetensorsHeader parseSafetensorsHeader(const uint8_t* bytes, uint64_t available, uint64_t fileSize,
                                         const std::filesystem::path& file)
{
    const std::string name = file.string();
    if (available < 8 || fileSize < 8)
        throw FileError(name + ": truncated safetensors file (" + std::to_string(fileSize) +
                        " bytes, the 8-byte header length is missing)");
    uint64_t headerLen = 0;
    for (int i = 7; i >= 0; --i)
        headerLen = (headerLen << 8) | bytes[i];
    if (headerLen > fileSize - 8)
        throw FileError(name + ": truncated safetensors file: header length " + std::to_string(headerLen) +
                        " exceeds the file size " + std::to_string(fileSize));
    if (headerLen > available - 8)
        throw FileError(name + ": header not fully read");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(reinterpret_cast<const char*>(bytes + 8),
                                  reinterpret_cast<const char*>(bytes + 8 + headerLen));
    } catch (const nlohmann::json::parse_error& e) {
        throw FormatError(name + ": invalid safetensors JSON header: " + e.what());
    }
    if (!j.is_object())
        throw FormatError(name + ": safetensors header is not a JSON object");

    SafetensorsHeader h;
    h.dataStart = 8 + headerLen;
    const uint64_t dataSize = fileSize - h.dataStart;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "__metadata__") {
            if (it.value().is_object())
                for (auto m = it.value().begin(); m != it.value().end(); ++m)
                    if (m.value().is_string())
                        h.metadata[m.key()] = m.value().get<std::string>();
            continue;
        }
        const auto& v = it.value();
        const std::string where = name + ": tensor '" + it.key() + "'";
        if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
            throw FormatError(where + ": entry needs dtype, shape and data_offsets");
        SafetensorsEntry e;
        try {
            e.dtype = v.at("dtype").get<std::string>();
            e.shape = v.at("shape").get<std::vector<int64_t>>();
            const auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
            if (off.size() != 2)
                throw FormatError(where + ": data_offsets must have two entries");
            e.begin = off[0];
            e.end = off[1];
        } catch (const nlohmann::json::exception& ex) {
            throw FormatError(where + ": malformed entry: " + ex.what());
        }
        uint64_t numel = 1;
        for (int64_t d : e.shape) {
            if (d < 0)
                throw FormatError(where + ": negative dimension");
            numel *= static_cast<uint64_t>(d);
        }
        const uint64_t expect = numel * static_cast<uint64_t>(dtypeSize(e.dtype, file));
        if (e.end < e.begin || e.end - e.begin != expect)
            throw FormatError(where + ": data_offsets span " + std::to_string(e.end - e.begin) +
                              " bytes, shape and dtype need " + std::to_string(expect));
        if (e.end > dataSize)
            throw FileError(where + ": data ends at byte " + std::to_string(h.dataStart + e.end) +
                            " but the file has " + std::to_string(fileSize) + " bytes (truncated file?)");
        ranges.emplace_back(e.begin, e.end);
        h.tensors.emplace(it.key(), std::move(e));
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i)
        if (ranges[i].first < ranges[i - 1].second)
            throw FormatError(name + ": overlapping tensor data ranges");
    return h;
}

SafetensorsHeader readSafetensorsHeader(const std::filesystem::path& file)
{
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
        throw FileError(file.string() + ": file not found");
    const uint64_t fileSize = std::filesystem::file_size(file, ec);
    if (ec)
        throw FileError(file.string() + ": cannot stat: " + ec.message());
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw FileError(file.string() + ": cannot open for reading");
    uint8_t lenBytes[8] = {};
    in.read(reinterpret_cast<char*>(lenBytes), 8);
    if (in.gcount() != 8)
        return parseSafetensorsHeader(lenBytes, static_cast<uint64_t>(in.gcount()), fileSize, file);
    uint64_t headerLen = 0;
    for (int i = 7; i >= 0; --i)
        headerLen = (headerLen << 8) | lenBytes[i];
    if (headerLen > fileSize - 8)
        return parseSafetensorsHeader(lenBytes, 8, fileSize, file); // throws "truncated"
    std::vector<uint8_t> buf(8 + headerLen);
    std::memcpy(buf.data(), lenBytes, 8);
    in.read(reinterpret_cast<char*>(buf.data() + 8), static_cast<std::streamsize>(headerLen));
    return parseSafetensorsHeader(buf.data(), 8 + static_cast<uint64_t>(in.gcount()), fileSize, file);
}

std::string buildSafetensorsHeader(std::map<std::string, SafetensorsEntry>& tensors,
                                   const std::map<std::string, std::string>& metadata)
{
    nlohmann::ordered_json j;
    if (!metadata.empty())
        j["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (auto& [name, e] : tensors) {
        uint64_t numel = 1;
        for (int64_t d : e.shape)
            numel *= static_cast<uint64_t>(d);
        e.begin = offset;
        e.end = offset + numel * static_cast<uint64_t>(dtypeSize(e.dtype));
        offset = e.end;
        j[name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
    }
    std::string text = j.dump();
    while ((8 + text.size()) % 8 != 0)
        text.push_back(' ');
    std::string out(8, '\0');
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i)
        out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + text;
}

} // namespace qpruner::io
