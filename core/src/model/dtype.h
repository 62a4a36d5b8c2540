// Names of the dense weight dtypes (as used in config.json's torch_dtype and on the command line), the
// device string parser, the compute dtype policy, and the intra-op thread setting.
#pragma once

#include <optional>
#include <string>

#include <ATen/ATen.h>

#include "model/cpu_features.h"

namespace qpruner::model {

// "float32"/"fp32"/"f32", "bfloat16"/"bf16", "float16"/"fp16"/"half". Throws ConfigError otherwise.
at::ScalarType parseDtype(const std::string& name);
std::string dtypeName(at::ScalarType t);      // "float32", "bfloat16", "float16"
std::string safetensorsDtype(at::ScalarType t); // "F32", "BF16", "F16"
at::ScalarType fromSafetensorsDtype(const std::string& name); // throws FormatError

// "cpu", "cuda", "cuda:N". Throws ConfigError when CUDA is asked for but libtorch has none.
at::Device parseDevice(const std::string& name);

// Which dtype activations and matmuls use for weights stored in `storage`, and why. Storage and compute are
// separate: on a CPU without native bf16 (no AVX512_BF16 / AMX-BF16) libtorch's bf16 matmul takes a generic
// path ~50x slower than fp32, so bf16 weights compute in fp32 there (converted block by block, never as a
// whole copy); fp16 always computes in fp32 on the CPU (no fp16 matmul); CUDA computes in the stored dtype.
struct ComputeChoice {
    at::ScalarType dtype = at::kFloat;
    std::string reason;
};

// The policy as a pure function of its inputs (tests give it any CPU). `forced` (--compute-dtype) wins; fp16 forced
// on the CPU is a ConfigError.
ComputeChoice chooseComputeDtype(at::ScalarType storage, const at::Device& device, const CpuFeatures& cpu,
                                 std::optional<at::ScalarType> forced = std::nullopt);

// The process-wide --compute-dtype (nullopt: chosen per CPU). fp16 on the CPU is refused when a model uses it.
void setComputeDtypeOverride(std::optional<at::ScalarType> dtype);
std::optional<at::ScalarType> computeDtypeOverride();
// While alive, `dtype` is this thread's override in place of the process-wide one (nullopt: chosen per CPU even
// where the process has an override). A pipeline run carries its config's compute_dtype this way, so runs on the
// GUI's worker threads do not touch each other's choice. Nests; the destructor restores the previous state.
class ScopedComputeDtype {
public:
    explicit ScopedComputeDtype(std::optional<at::ScalarType> dtype);
    ~ScopedComputeDtype();
    ScopedComputeDtype(const ScopedComputeDtype&) = delete;
    ScopedComputeDtype& operator=(const ScopedComputeDtype&) = delete;

private:
    bool active_;
    std::optional<at::ScalarType> previous_;
};
// "auto" -> nullopt, else parseDtype().
std::optional<at::ScalarType> parseComputeDtype(const std::string& name);

// chooseComputeDtype() on this machine with this thread's override (ScopedComputeDtype), else the process-wide one.
ComputeChoice computeChoiceFor(at::ScalarType storage, const at::Device& device);
at::ScalarType computeDtypeFor(at::ScalarType weightDtype, const at::Device& device);

// Intra-op threads: n > 0 sets n, n <= 0 uses the hardware's core count. Returns the count in force.
int setIntraOpThreads(int n);

} // namespace qpruner::model
