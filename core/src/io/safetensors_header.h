// The safetensors container: an 8-byte little-endian header length, a JSON header mapping tensor names to
// {dtype, shape, data_offsets}, then the raw data. Torch-free: parsing, validation and writing the header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace qpruner::io {

struct SafetensorsEntry {
    std::string dtype;          // "F32", "F16", "BF16", "U8", "I8", "I32", "I64", ...
    std::vector<int64_t> shape;
    uint64_t begin = 0;         // byte offsets relative to the start of the data section
    uint64_t end = 0;
};

struct SafetensorsHeader {
    uint64_t dataStart = 0;                          // file offset of the data section
    std::map<std::string, SafetensorsEntry> tensors; // sorted by name
    std::map<std::string, std::string> metadata;     // "__metadata__"
};

// Bytes per element of a safetensors dtype; throws FormatError for unknown dtypes.
int dtypeSize(const std::string& dtype, const std::filesystem::path& file = {});

// Parses and validates the header of `bytes` (the whole file or at least its header) against `fileSize`:
// offsets inside the file, sizes equal to the shape times the element size, no overlaps.
SafetensorsHeader parseSafetensorsHeader(const uint8_t* bytes, uint64_t available, uint64_t fileSize,
                                         const std::filesystem::path& file);

// Reads only the header of a file on disk.
SafetensorsHeader readSafetensorsHeader(const std::filesystem::path& file);

// Serialises a header for tensors laid out in map order; fills in begin/end and returns the header bytes
// (length prefix included, padded with spaces to a multiple of 8 so the data is aligned).
std::string buildSafetensorsHeader(std::map<std::string, SafetensorsEntry>& tensors,
                                   const std::map<std::string, std::string>& metadata);

} // namespace qpruner::io
