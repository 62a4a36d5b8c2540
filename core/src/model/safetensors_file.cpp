#include "model/safetensors_file.h"

#include <string_view>
#include <vector>

#include "io/atomic_output.h"
#include "io/mapped_file.h"
#include "io/safetensors_header.h"
#include "model/dtype.h"
#include "model/mapped_tensor.h"
#include "qpruner/error.h"

namespace qpruner::model {

void writeSafetensorsFile(const std::filesystem::path& path, const std::map<std::string, at::Tensor>& tensors,
                          const std::map<std::string, std::string>& metadata)
{
    std::map<std::string, at::Tensor> cpu;
    std::map<std::string, io::SafetensorsEntry> entries;
    for (const auto& [name, t] : tensors) {
        const at::Tensor c = t.detach().to(at::kCPU).contiguous();
        entries[name] = io::SafetensorsEntry{safetensorsDtype(c.scalar_type()),
                                             std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), 0, 0};
        cpu[name] = c;
    }
    const std::string header = io::buildSafetensorsHeader(entries, metadata);
    std::vector<std::string_view> pieces{header};
    for (const auto& [name, t] : cpu) // map order == header order
        pieces.emplace_back(static_cast<const char*>(t.data_ptr()),
                            static_cast<size_t>(t.numel()) * t.element_size());
    io::writeFileAtomic(path, pieces);
}

SafetensorsContents readSafetensorsFile(const std::filesystem::path& path)
{
    const auto mapped = io::MappedFile::open(path);
    const auto h = io::parseSafetensorsHeader(mapped->data(), mapped->size(), mapped->size(), path);
    SafetensorsContents r;
    r.metadata = h.metadata;
    for (const auto& [name, e] : h.tensors) {
        at::ScalarType dtype;
        try {
            dtype = fromSafetensorsDtype(e.dtype);
        } catch (const FormatError& err) {
            throw FormatError(path.string() + ": tensor '" + name + "': " + err.what());
        }
        r.tensors[name] = mappedTensor(mapped, h.dataStart + e.begin, e.shape, dtype).clone();
    }
    return r;
}

} // namespace qpruner::model
