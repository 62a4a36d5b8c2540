#include "model/dtype.h"

#include <thread>

#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include "qpruner/error.h"

namespace qpruner::model {

at::ScalarType parseDtype(const std::string& name)
{
    if (name == "float32" || name == "fp32" || name == "f32")
        return at::kFloat;
    if (name == "bfloat16" || name == "bf16")
        return at::kBFloat16;
    if (name == "float16" || name == "fp16" || name == "half")
        return at::kHalf;
    throw ConfigError("unknown dtype '" + name + "' (expected float32, bfloat16 or float16)");
}

std::string dtypeName(at::ScalarType t)
{
    switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kDouble: return "float64";
    default: return c10::toString(t);
    }
}

std::string safetensorsDtype(at::ScalarType t)
{
    switch (t) {
    case at::kFloat: return "F32";
    case at::kBFloat16: return "BF16";
    case at::kHalf: return "F16";
    case at::kByte: return "U8";
    case at::kChar: return "I8";
    case at::kInt: return "I32";
    case at::kLong: return "I64";
    case at::kDouble: return "F64";
    default: throw ConfigError(std::string("dtype ") + c10::toString(t) + " cannot be stored in safetensors here");
    }
}

at::ScalarType fromSafetensorsDtype(const std::string& name)
{
    if (name == "F32") return at::kFloat;
    if (name == "BF16") return at::kBFloat16;
    if (name == "F16") return at::kHalf;
    if (name == "U8") return at::kByte;
    if (name == "I8") return at::kChar;
    if (name == "I32") return at::kInt;
    if (name == "I64") return at::kLong;
    if (name == "F64") return at::kDouble;
    throw FormatError("unsupported safetensors dtype '" + name + "'");
}

at::Device parseDevice(const std::string& name)
{
    if (name == "cpu")
        return at::Device(at::kCPU);
    if (name.rfind("cuda", 0) == 0) {
        if (!at::hasCUDA())
            throw ConfigError("device '" + name + "' requested but this build of libtorch has no CUDA support "
                              "(or no GPU is visible); use --device cpu");
        try {
            return at::Device(name);
        } catch (const std::exception&) {
            throw ConfigError("invalid device '" + name + "' (expected cpu, cuda or cuda:N)");
        }
    }
    throw ConfigError("invalid device '" + name + "' (expected cpu, cuda or cuda:N)");
}

namespace {

std::optional<at::ScalarType>& processSlot()
{
    static std::optional<at::ScalarType> forced;
    return forced;
}

// A run's own compute dtype (ScopedComputeDtype) on the thread that runs it.
struct ThreadSlot {
    bool active = false;
    std::optional<at::ScalarType> forced;
};
thread_local ThreadSlot threadSlot;

std::optional<at::ScalarType> overrideSlot() { return threadSlot.active ? threadSlot.forced : processSlot(); }

// The policy's dtype alone (no strings: computeDtypeFor runs per linear call).
at::ScalarType pick(at::ScalarType storage, const at::Device& device, const CpuFeatures& cpu,
                    std::optional<at::ScalarType> forced)
{
    if (forced) {
        if (device.is_cpu() && *forced == at::kHalf)
            throw ConfigError("--compute-dtype float16: libtorch has no fp16 matmul on the CPU (use float32 or "
                              "bfloat16)");
        return *forced;
    }
    if (!device.is_cpu())
        return storage;
    if (storage == at::kHalf)
        return at::kFloat;
    if (storage == at::kBFloat16)
        return cpu.nativeBf16() ? at::kBFloat16 : at::kFloat;
    return storage;
}

} // namespace

ComputeChoice chooseComputeDtype(at::ScalarType storage, const at::Device& device, const CpuFeatures& cpu,
                                 std::optional<at::ScalarType> forced)
{
    const at::ScalarType dt = pick(storage, device, cpu, forced);
    const std::string stored = dtypeName(storage) + " weights compute in " + dtypeName(dt);
    std::string why;
    if (forced) {
        why = "forced by --compute-dtype (or the run's compute_dtype)";
        if (device.is_cpu() && dt == at::kBFloat16 && !cpu.nativeBf16())
            why += "; this CPU has no native bf16, so bf16 matmuls are far slower than float32";
    } else if (!device.is_cpu()) {
        why = "their own dtype on " + device.str();
    } else if (storage == at::kHalf) {
        why = "libtorch has no fp16 matmul on the CPU";
    } else if (storage == at::kBFloat16) {
        why = dt == at::kBFloat16 ? "this CPU has native bf16"
                                  : "this CPU has no AVX512_BF16 or AMX-BF16, where bf16 matmuls are ~50x slower "
                                    "than float32";
    } else {
        why = "their own dtype";
    }
    return {dt, stored + ": " + why + " (CPU: " + cpu.describe() + ")"};
}

void setComputeDtypeOverride(std::optional<at::ScalarType> dtype) { processSlot() = dtype; }

ScopedComputeDtype::ScopedComputeDtype(std::optional<at::ScalarType> dtype)
    : active_(threadSlot.active), previous_(threadSlot.forced)
{
    threadSlot.active = true;
    threadSlot.forced = dtype;
}

ScopedComputeDtype::~ScopedComputeDtype()
{
    threadSlot.active = active_;
    threadSlot.forced = previous_;
}

std::optional<at::ScalarType> computeDtypeOverride() { return overrideSlot(); }

std::optional<at::ScalarType> parseComputeDtype(const std::string& name)
{
    if (name == "auto" || name.empty())
        return std::nullopt;
    return parseDtype(name);
}

ComputeChoice computeChoiceFor(at::ScalarType storage, const at::Device& device)
{
    return chooseComputeDtype(storage, device, hostCpuFeatures(), overrideSlot());
}

at::ScalarType computeDtypeFor(at::ScalarType weightDtype, const at::Device& device)
{
    return pick(weightDtype, device, hostCpuFeatures(), overrideSlot());
}

int setIntraOpThreads(int n)
{
    if (n <= 0) {
        const unsigned hw = std::thread::hardware_concurrency();
        n = hw > 0 ? static_cast<int>(hw) : 1;
    }
    at::set_num_threads(n);
    return at::get_num_threads();
}

} // namespace qpruner::model
