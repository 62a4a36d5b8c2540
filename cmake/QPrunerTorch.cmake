# libtorch lookup and the precompiled torch header.
#
# <torch/torch.h> costs ~16 s and ~1 GB per translation unit, so nothing includes it: sources include
# the narrow ATen headers they need, and every torch-using target precompiles core/src/torch_pch.h once.
find_package(Torch REQUIRED)

# The CPU build of libtorch that Debian ships and the CUDA libtorch of a PyTorch wheel both work;
# QPRUNER_HAVE_CUDA tells the code which one it was built against.
if(TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  set(QPRUNER_TORCH_HAS_CUDA ON)
else()
  set(QPRUNER_TORCH_HAS_CUDA OFF)
endif()

set(QPRUNER_TORCH_PCH "${CMAKE_SOURCE_DIR}/core/src/torch_pch.h")

# Adds the precompiled torch header to a target that links torch. Qt's keywords are switched off in every
# such target, because Qt's `slots`/`signals`/`emit` macros break libtorch headers.
function(qpruner_use_torch target)
  target_compile_definitions(${target} PRIVATE QT_NO_KEYWORDS)
  if(NOT QPRUNER_NO_PCH)
    target_precompile_headers(${target} PRIVATE "${QPRUNER_TORCH_PCH}")
  endif()
endfunction()
