#include "model/llama_model.h"

#include <cmath>
#include <limits>

#include "model/dtype.h"
#include "qpruner/error.h"

namespace qpruner::model {

namespace {

// a * b, in place into the temporary `a` when no gradient is recorded (one allocation less per op).
at::Tensor scaled(at::Tensor a, const at::Tensor& b)
{
    return c10::GradMode::is_enabled() ? a * b : a.mul_(b);
}

} // namespace

LlamaModel::LlamaModel(ModelConfig config, at::ScalarType weightDtype, at::Device device)
    : config_(std::move(config)),
      weightDtype_(weightDtype),
      computeDtype_(computeDtypeFor(weightDtype, device)),
      device_(device),
      rope_(config_.headDim, config_.ropeTheta, config_.ropeScaling, device)
{
    config_.validate();
    rope_.ensure(config_.maxSeqLen);
}

at::Tensor LlamaModel::rmsNorm(const at::Tensor& x, const at::Tensor& weight) const
{
    const auto xf = x.to(at::kFloat);
    auto y = xf * at::rsqrt(xf.square().mean(-1, /*keepdim=*/true).add_(config_.normEps));
    return scaled(y, weight).to(computeDtype_);
}

KvCache LlamaModel::makeCache(int64_t batch, int64_t maxLen) const
{
    KvCache c;
    c.capacity = maxLen;
    const auto opts = at::TensorOptions().dtype(computeDtype_).device(device_);
    for (const auto& s : config_.layers) {
        c.keys.push_back(at::empty({batch, s.numKvHeads, maxLen, config_.headDim}, opts));
        c.values.push_back(at::empty({batch, s.numKvHeads, maxLen, config_.headDim}, opts));
    }
    return c;
}

at::Tensor LlamaModel::attention(const DecoderLayer& layer, int li, const at::Tensor& x, int64_t pos,
                                 const RopeTable::Angles& angles, const at::Tensor& future, KvCache* cache) const
{
    const LayerShape& s = config_.layers[static_cast<size_t>(li)];
    const int64_t B = x.size(0), T = x.size(1), hd = config_.headDim;
    const int64_t nh = s.numHeads, nkv = s.numKvHeads, g = nh / nkv;

    auto q = layer.q->forward(x).view({B, T, nh, hd}).transpose(1, 2);  // [B, nh, T, hd]
    auto k = layer.k->forward(x).view({B, T, nkv, hd}).transpose(1, 2); // [B, nkv, T, hd]
    auto v = layer.v->forward(x).view({B, T, nkv, hd}).transpose(1, 2);
    q = RopeTable::apply(q, angles);
    k = RopeTable::apply(k, angles);

    if (cache) {
        auto& ck = cache->keys[static_cast<size_t>(li)];
        auto& cv = cache->values[static_cast<size_t>(li)];
        ck.narrow(2, pos, T).copy_(k);
        cv.narrow(2, pos, T).copy_(v);
        k = ck.narrow(2, 0, pos + T);
        v = cv.narrow(2, 0, pos + T);
    }
    // Query head h uses KV head h / g: group the g query heads of one KV head along the time axis, so one
    // batched matmul per KV head serves them all without materialising repeated keys.
    const auto qg = q.reshape({B, nkv, g * T, hd});
    const int64_t S = k.size(2);
    auto scores = at::matmul(qg, k.transpose(-1, -2)).to(at::kFloat);
    scores.mul_(1.0 / std::sqrt(double(hd)));
    // Rows are (query head within the group, time): the [T, S] mask broadcasts over the group.
    scores.view({B, nkv, g, T, S}).masked_fill_(future, -std::numeric_limits<float>::infinity());
    const auto probs = at::softmax(scores, -1).to(computeDtype_);
    auto out = at::matmul(probs, v);                                  // [B, nkv, g*T, hd]
    out = out.view({B, nh, T, hd}).transpose(1, 2).reshape({B, T, nh * hd});
    return layer.o->forward(out);
}

at::Tensor LlamaModel::forwardHidden(const at::Tensor& tokens, KvCache* cache, std::vector<at::Tensor>* residuals) const
{
    if (tokens.dim() != 2)
        throw ConfigError("forward: tokens must be [batch, time], got " + std::to_string(tokens.dim()) + " dims");
    const int64_t T = tokens.size(1);
    const int64_t pos = cache ? cache->length : 0;
    if (cache && pos + T > cache->capacity)
        throw ConfigError("forward: KV cache holds " + std::to_string(cache->capacity) + " tokens, " +
                          std::to_string(pos + T) + " needed");
    auto ids = tokens.to(at::kLong).to(device_);
    auto x = at::embedding(embedding, ids).to(computeDtype_);
    if (residuals) {
        residuals->clear();
        residuals->push_back(x);
    }
    auto out = runLayers(std::move(x), 0, pos, cache, residuals);
    if (cache)
        cache->length = pos + T;
    return out;
}

at::Tensor LlamaModel::forwardHiddenFrom(const at::Tensor& residual, int firstLayer) const
{
    if (residual.dim() != 3 || residual.size(2) != config_.hiddenSize)
        throw ConfigError("forward: residual stream must be [batch, time, " + std::to_string(config_.hiddenSize) + "]");
    if (firstLayer < 0 || firstLayer > int(layers.size()))
        throw ConfigError("forward: layer " + std::to_string(firstLayer) + " is outside 0.." +
                          std::to_string(layers.size()));
    return runLayers(residual.to(computeDtype_), firstLayer, 0, nullptr, nullptr);
}

at::Tensor LlamaModel::runLayers(at::Tensor x, int first, int64_t pos, KvCache* cache,
                                 std::vector<at::Tensor>* residuals) const
{
    const int64_t T = x.size(1);
    // Shared by every layer: the rotation angles of these positions and the causal mask (query at absolute
    // position pos+t sees keys 0..pos+t).
    const auto angles = rope_.angles(pos, T, computeDtype_);
    const auto longs = at::TensorOptions().dtype(at::kLong).device(device_);
    const auto future = at::arange(pos + T, longs).unsqueeze(0) > at::arange(pos, pos + T, longs).unsqueeze(1);
    for (size_t li = size_t(first); li < layers.size(); ++li) {
        const DecoderLayer& layer = layers[li];
        x = x + attention(layer, static_cast<int>(li), rmsNorm(x, layer.attnNorm), pos, angles, future, cache);
        const auto h = rmsNorm(x, layer.ffnNorm);
        x = x + layer.down->forward(scaled(at::silu(layer.gate->forward(h)), layer.up->forward(h)));
        if (residuals)
            residuals->push_back(x);
    }
    const auto xf = x.to(at::kFloat);
    auto y = xf * at::rsqrt(xf.square().mean(-1, true).add_(config_.normEps));
    return scaled(y, finalNorm);
}

at::Tensor LlamaModel::logits(const at::Tensor& hidden) const
{
    return lmHead->forward(hidden.to(computeDtype_)).to(at::kFloat);
}

at::Tensor LlamaModel::forward(const at::Tensor& tokens, KvCache* cache) const
{
    return logits(forwardHidden(tokens, cache));
}

void LlamaModel::to(at::ScalarType dtype, at::Device device)
{
    auto conv = [&](LinearPtr& l) {
        auto* dense = dynamic_cast<DenseLinear*>(l.get());
        if (!dense)
            throw ConfigError("cannot convert a " + l->formatName() + " layer to " + dtypeName(dtype));
        dense->weight() = dense->weight().to(device, dtype);
        if (dense->mutableBias())
            *dense->mutableBias() = dense->mutableBias()->to(device, dtype);
    };
    const bool tied = config_.tiedEmbeddings;
    embedding = embedding.to(device, dtype);
    finalNorm = finalNorm.to(device, at::kFloat);
    for (auto& l : layers) {
        l.attnNorm = l.attnNorm.to(device, at::kFloat);
        l.ffnNorm = l.ffnNorm.to(device, at::kFloat);
        for (LinearPtr* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
            conv(*p);
    }
    if (tied)
        lmHead = std::make_shared<DenseLinear>(embedding);
    else
        conv(lmHead);
    weightDtype_ = dtype;
    computeDtype_ = computeDtypeFor(dtype, device);
    if (device != device_)
        rope_ = RopeTable(config_.headDim, config_.ropeTheta, config_.ropeScaling, device);
    device_ = device;
}

void LlamaModel::setWeightDtype(at::ScalarType dtype)
{
    weightDtype_ = dtype;
    computeDtype_ = computeDtypeFor(dtype, device_);
}

int64_t LlamaModel::weightBytes() const
{
    auto bytes = [](const at::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); };
    int64_t n = bytes(embedding) + bytes(finalNorm);
    for (const auto& l : layers) {
        n += bytes(l.attnNorm) + bytes(l.ffnNorm);
        for (const LinearPtr* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
            n += (*p)->storageBytes();
    }
    if (!config_.tiedEmbeddings)
        n += lmHead->storageBytes();
    return n;
}

} // namespace qpruner::model
