// Tensors that view a memory-mapped file without copying (the map stays alive while they do).
#pragma once

#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "io/mapped_file.h"

namespace qpruner::model {

// A CPU tensor over bytes [offset, offset + numel * element size) of `file`. Copies only when the data is
// not aligned to the element size.
at::Tensor mappedTensor(const std::shared_ptr<io::MappedFile>& file, uint64_t offset,
                        const std::vector<int64_t>& shape, at::ScalarType dtype);

} // namespace qpruner::model
