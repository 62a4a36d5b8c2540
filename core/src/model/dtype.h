// Names of the dense weight dtypes (as used in config.json's torch_dtype and on the command line), the
// device string parser, and the intra-op thread setting.
#pragma once

#include <string>

#include <ATen/ATen.h>

namespace qpruner::model {

// "float32"/"fp32"/"f32", "bfloat16"/"bf16", "float16"/"fp16"/"half". Throws ConfigError otherwise.
at::ScalarType parseDtype(const std::string& name);
std::string dtypeName(at::ScalarType t);      // "float32", "bfloat16", "float16"
std::string safetensorsDtype(at::ScalarType t); // "F32", "BF16", "F16"
at::ScalarType fromSafetensorsDtype(const std::string& name); // throws FormatError

// "cpu", "cuda", "cuda:N". Throws ConfigError when CUDA is asked for but libtorch has none.
at::Device parseDevice(const std::string& name);

// The dtype activations use for weights of `weightDtype` on `device`: the CPU has no fp16 matmul, so fp16
// weights compute in fp32 there; everything else computes in its own dtype.
at::ScalarType computeDtypeFor(at::ScalarType weightDtype, const at::Device& device);

// Intra-op threads: n > 0 sets n, n <= 0 uses the hardware's core count. Returns the count in force.
int setIntraOpThreads(int n);

} // namespace qpruner::model
