#include "quant/model_quantizer.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "io/mapped_file.h"
#include "model/dtype.h"
#include "model/mapped_tensor.h"
#include "quant/quant_linear.h"
#include "qpruner/error.h"

namespace qpruner::quant {

at::ScalarType denseDtype(const QuantSpec& spec)
{
    switch (spec.kind) {
    case QuantKind::F32: return at::kFloat;
    case QuantKind::BF16: return at::kBFloat16;
    case QuantKind::F16: return at::kHalf;
    default: throw ConfigError("format " + spec.name() + " is not a dense dtype");
    }
}

QuantSpec heldSpec(const model::Linear& linear)
{
    if (const auto* q = dynamic_cast<const QuantLinear*>(&linear))
        return q->quantized().spec;
    return parseQuantSpec(model::dtypeName(linear.denseWeight().scalar_type()));
}

model::LinearPtr convertLinear(const model::Linear& src, const QuantSpec& spec)
{
    model::LinearPtr out = quantizeLinear(src, spec);
    const auto bias = src.bias();
    if (!bias)
        return out;
    const at::ScalarType want = denseDtype(biasSpec(spec));
    if (bias->scalar_type() == want)
        return out;
    if (auto* q = dynamic_cast<QuantLinear*>(out.get()))
        return std::make_shared<QuantLinear>(q->quantized(), bias->to(want));
    return std::make_shared<model::DenseLinear>(out->denseWeight(), bias->to(want));
}

namespace {

// The weight tensors of a linear, by name: a QuantLinear's packed parts, or a dense weight.
std::map<std::string, at::Tensor> weightTensors(const model::Linear& linear)
{
    if (const auto* q = dynamic_cast<const QuantLinear*>(&linear))
        return q->quantized().parts;
    return {{"weight", linear.denseWeight()}};
}

} // namespace

model::LinearPtr spillLinear(const model::Linear& linear, const std::filesystem::path& path)
{
    const auto tensors = weightTensors(linear);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        throw FileError(path.string() + ": cannot create the weight file: " + std::strerror(errno));
    std::map<std::string, uint64_t> offsets;
    uint64_t at = 0;
    auto fail = [&](int err) {
        ::close(fd);
        std::filesystem::remove(path);
        throw FileError(path.string() + ": cannot write the weight file: " + std::strerror(err));
    };
    for (const auto& [name, t] : tensors) {
        const auto c = t.cpu().contiguous();
        at = (at + 63) / 64 * 64; // every tensor starts aligned for any element type and vector loads
        offsets[name] = at;
        const auto* p = static_cast<const char*>(c.data_ptr());
        for (uint64_t done = 0, n = uint64_t(c.nbytes()); done < n;) {
            const ssize_t w = ::pwrite(fd, p + done, n - done, off_t(at + done));
            if (w <= 0)
                fail(w < 0 ? errno : ENOSPC);
            done += uint64_t(w);
        }
        at += uint64_t(c.nbytes());
    }
    if (::close(fd) != 0) {
        const int err = errno;
        std::filesystem::remove(path);
        throw FileError(path.string() + ": cannot write the weight file: " + std::strerror(err));
    }
    std::shared_ptr<io::MappedFile> file;
    try {
        file = io::MappedFile::open(path);
    } catch (...) {
        std::filesystem::remove(path);
        throw;
    }
    std::filesystem::remove(path); // the mapping keeps the data until its last tensor goes
    std::map<std::string, at::Tensor> mapped;
    for (const auto& [name, t] : tensors)
        mapped[name] = model::mappedTensor(file, offsets.at(name), t.sizes().vec(), t.scalar_type());
    if (const auto* q = dynamic_cast<const QuantLinear*>(&linear)) {
        QuantizedTensor w = q->quantized();
        w.parts = std::move(mapped);
        return std::make_shared<QuantLinear>(std::move(w), q->bias());
    }
    return std::make_shared<model::DenseLinear>(mapped.at("weight"), linear.bias());
}

bool releaseLinearPages(const model::Linear& linear)
{
    bool all = true;
    for (const auto& [name, t] : weightTensors(linear))
        if (t.device().is_cpu())
            all = io::releaseResidentPages(t.data_ptr(), uint64_t(t.nbytes())) && all;
    return all;
}

void quantizeModel(model::LlamaModel& model, const PrecisionMap& map, const ProgressSink& progress,
                   const CancelToken* cancel)
{
    const ModelConfig& cfg = model.config();
    const ResolvedPrecision r = map.resolve(cfg);
    for (size_t l = 0; l < model.layers.size(); ++l) {
        auto& L = model.layers[l];
        for (model::LinearPtr* p : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
            if (dynamic_cast<QuantLinear*>(p->get()))
                throw ConfigError("quantize: layer " + std::to_string(l) +
                                  " is already quantized; start from a dense checkpoint");
    }
    const int n = cfg.numLayers();
    for (int l = 0; l < n; ++l) {
        if (cancel)
            cancel->throwIfCancelled();
        auto& L = model.layers[size_t(l)];
        model::LinearPtr* lins[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
        for (size_t m = 0; m < kLinearModuleCount; ++m)
            *lins[m] = convertLinear(**lins[m], r.layers[size_t(l)][m]);
        report(progress, "quantize", l + 1, n, "layers");
    }
    const at::ScalarType emb = denseDtype(r.embedding);
    model.embedding = model.embedding.to(emb);
    if (cfg.tiedEmbeddings)
        model.lmHead = std::make_shared<model::DenseLinear>(model.embedding);
    else
        model.lmHead = convertLinear(*model.lmHead, r.lmHead);
    model.setWeightDtype(emb);
}

ResolvedPrecision heldPrecision(const model::LlamaModel& model)
{
    ResolvedPrecision r;
    for (const auto& L : model.layers) {
        const model::LinearPtr* lins[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
        LayerSpecs specs;
        for (size_t m = 0; m < kLinearModuleCount; ++m)
            specs[m] = heldSpec(**lins[m]);
        r.layers.push_back(specs);
    }
    r.embedding = parseQuantSpec(model::dtypeName(model.embedding.scalar_type()));
    r.lmHead = model.config().tiedEmbeddings ? r.embedding : heldSpec(*model.lmHead);
    return r;
}

} // namespace qpruner::quant
