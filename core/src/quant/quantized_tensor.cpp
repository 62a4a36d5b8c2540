// QuantizedTensor: dispatch to the per-format tensor kernels, whole and ranged dequantization, and the
// validation of tensors read from a checkpoint against storedTensors().
#include "quant/quantized_tensor.h"

#include <algorithm>

#include "model/dtype.h"
#include "qpruner/error.h"
#include "quant/cpu_dequant.h"
#include "quant/tensor_kernels.h"

namespace qpruner::quant {

namespace {

std::string shapeText(at::IntArrayRef shape)
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

std::string dtypeText(const at::Tensor& t)
{
    try {
        return model::safetensorsDtype(t.scalar_type());
    } catch (const ConfigError&) {
        return c10::toString(t.scalar_type());
    }
}

void requireQuantized(const QuantSpec& spec, const char* what)
{
    if (!spec.isQuantized())
        throw ConfigError(std::string(what) + ": " + spec.name() +
                          " is a dense format; convert the weight's dtype instead (quantizeLinear does)");
}

} // namespace

int64_t QuantizedTensor::storageBytes() const
{
    int64_t n = 0;
    for (const auto& [suffix, t] : parts)
        n += t.numel() * static_cast<int64_t>(t.element_size());
    return n;
}

at::Device QuantizedTensor::device() const
{
    return parts.empty() ? at::Device(at::kCPU) : parts.begin()->second.device();
}

QuantizedTensor QuantizedTensor::to(const at::Device& device) const
{
    QuantizedTensor out{spec, rows, cols, {}};
    for (const auto& [suffix, t] : parts)
        out.parts.emplace(suffix, t.to(device));
    return out;
}

QuantizedTensor quantize(const at::Tensor& weight, const QuantSpec& spec)
{
    requireQuantized(spec, "quantize");
    if (weight.dim() != 2 || weight.numel() == 0 || !at::isFloatingType(weight.scalar_type()))
        throw ConfigError("quantize: expected a non-empty 2-D floating-point weight, got " +
                          std::string(c10::toString(weight.scalar_type())) + " " + shapeText(weight.sizes()));
    storedTensors(spec, weight.size(0), weight.size(1)); // validates the group size
    const auto w = weight.to(at::kFloat).contiguous();
    QuantizedTensor q{spec, w.size(0), w.size(1), {}};
    switch (spec.kind) {
    case QuantKind::Int8: q.parts = kernels::quantizeInt8(w); break;
    case QuantKind::NF4: q.parts = kernels::quantizeNf4(w, spec.doubleQuant); break;
    default: q.parts = kernels::quantizeIntK(w, spec.codeBits(), spec.groupSize); break;
    }
    return q;
}

at::Tensor dequantizeRows(const QuantizedTensor& q, int64_t r0, int64_t r1, at::ScalarType dtype)
{
    requireQuantized(q.spec, "dequantize");
    if (r0 < 0 || r1 > q.rows || r0 >= r1)
        throw ConfigError("dequantize: row range [" + std::to_string(r0) + ", " + std::to_string(r1) +
                          ") is empty or outside 0.." + std::to_string(q.rows));
    if (q.device().is_cpu()) {
        at::Tensor w = at::empty({r1 - r0, q.cols}, at::kFloat);
        dequantizeRowsCpu(q, r0, r1, w.data_ptr<float>());
        return w.to(dtype);
    }
    at::Tensor w;
    switch (q.spec.kind) {
    case QuantKind::Int8: w = kernels::dequantizeInt8Rows(q, r0, r1); break;
    case QuantKind::NF4:
        w = kernels::dequantizeNf4Elements(q, r0 * q.cols, r1 * q.cols).view({r1 - r0, q.cols});
        break;
    default: w = kernels::dequantizeIntKRows(q, r0, r1); break;
    }
    return w.to(dtype);
}

void dequantizeRowsInto(const QuantizedTensor& q, int64_t r0, int64_t r1, at::Tensor& dst)
{
    if (q.device().is_cpu() && dst.scalar_type() == at::kFloat && dst.is_contiguous() && dst.is_cpu() &&
        r0 >= 0 && r1 <= q.rows && r0 < r1 && dst.numel() == (r1 - r0) * q.cols) {
        dequantizeRowsCpu(q, r0, r1, dst.data_ptr<float>());
        return;
    }
    dst.copy_(dequantizeRows(q, r0, r1, dst.scalar_type()));
}

at::Tensor dequantize(const QuantizedTensor& q, at::ScalarType dtype)
{
    requireQuantized(q.spec, "dequantize");
    const int64_t step = std::max<int64_t>(1, kernels::kStepElements / q.cols);
    if (step >= q.rows)
        return dequantizeRows(q, 0, q.rows, dtype).contiguous();
    auto out = at::empty({q.rows, q.cols}, at::TensorOptions().dtype(dtype).device(q.device()));
    for (int64_t r0 = 0; r0 < q.rows; r0 += step) {
        const int64_t r1 = std::min(q.rows, r0 + step);
        out.narrow(0, r0, r1 - r0).copy_(dequantizeRows(q, r0, r1, dtype));
    }
    return out;
}

void validateQuantizedTensor(const QuantizedTensor& q, const std::string& module)
{
    if (!q.spec.isQuantized())
        throw FormatError(module + ": " + q.spec.name() + " is not a quantized format");
    std::vector<StoredTensor> expected;
    try {
        expected = storedTensors(q.spec, q.rows, q.cols);
    } catch (const ConfigError& e) {
        throw FormatError(module + ": " + e.what());
    }
    for (const auto& [suffix, t] : q.parts) {
        const bool known = std::any_of(expected.begin(), expected.end(),
                                       [&](const StoredTensor& s) { return s.suffix == suffix; });
        if (!known)
            throw FormatError(module + "." + suffix + ": unexpected tensor for format " + q.spec.name());
    }
    const at::Device device = q.device();
    for (const auto& s : expected) {
        const std::string name = module + "." + s.suffix;
        const auto it = q.parts.find(s.suffix);
        if (it == q.parts.end())
            throw FormatError(name + ": missing (format " + q.spec.name() + " stores it as " + s.dtype + " " +
                              shapeText(s.shape) + ")");
        const at::Tensor& t = it->second;
        const std::string got = dtypeText(t);
        if (got != s.dtype || t.sizes() != at::IntArrayRef(s.shape))
            throw FormatError(name + ": expected " + s.dtype + " " + shapeText(s.shape) + " for a [" +
                              std::to_string(q.rows) + ", " + std::to_string(q.cols) + "] " + q.spec.name() +
                              " weight, got " + got + " " + shapeText(t.sizes()));
        if (t.device() != device)
            throw FormatError(name + ": on " + t.device().str() + ", the other parts on " + device.str());
        if (!t.is_contiguous())
            throw FormatError(name + ": not contiguous");
    }
}

namespace kernels {

at::Tensor tableOn(const at::Tensor& cpuTable, const at::Device& device) { return cpuTable.to(device); }

void requireFinite(const at::Tensor& stats, const std::function<std::string(int64_t)>& describe)
{
    const auto bad = at::isfinite(stats).logical_not().reshape(-1);
    if (!bad.any().item<bool>())
        return;
    const int64_t first = at::nonzero(bad).select(1, 0)[0].item<int64_t>();
    throw FormatError("quantize: weight has a non-finite value in " + describe(first));
}

} // namespace kernels

} // namespace qpruner::quant
