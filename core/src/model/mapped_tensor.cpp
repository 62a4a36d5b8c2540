#include "model/mapped_tensor.h"

#include <cstring>

namespace qpruner::model {

at::Tensor mappedTensor(const std::shared_ptr<io::MappedFile>& file, uint64_t offset,
                        const std::vector<int64_t>& shape, at::ScalarType dtype)
{
    uint8_t* p = file->data() + offset;
    const auto opts = at::TensorOptions().dtype(dtype);
    const size_t elem = c10::elementSize(dtype);
    if (reinterpret_cast<uintptr_t>(p) % elem != 0) {
        auto t = at::empty(shape, opts);
        std::memcpy(t.data_ptr(), p, static_cast<size_t>(t.numel()) * elem);
        return t;
    }
    auto keep = file; // the deleter owns a reference to the mapping
    return at::from_blob(p, shape, [keep](void*) mutable { keep.reset(); }, opts);
}

} // namespace qpruner::model
