#include "model/llama_model.h"

#include <cmath>
#include <limits>
#include <optional>

#include "model/cpu_attention.h"
#include "model/cpu_elementwise.h"
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

std::vector<LayerNormSlot> layerNormSlots(const ModelConfig& c)
{
    std::vector<LayerNormSlot> slots;
    slots.push_back({&DecoderLayer::attnNorm, "input_layernorm.weight", "attn_norm.weight", false});
    if (c.sandwichNorms) {
        // Gemma: post_attention_layernorm is the norm after attention; pre_feedforward_layernorm the MLP's input.
        slots.push_back({&DecoderLayer::postAttnNorm, "post_attention_layernorm.weight", "post_attention_norm.weight", false});
        slots.push_back({&DecoderLayer::ffnNorm, "pre_feedforward_layernorm.weight", "ffn_norm.weight", false});
        slots.push_back({&DecoderLayer::postFfnNorm, "post_feedforward_layernorm.weight", "post_ffw_norm.weight", false});
    } else {
        slots.push_back({&DecoderLayer::ffnNorm, "post_attention_layernorm.weight", "ffn_norm.weight", false});
    }
    if (c.qkNorm) {
        slots.push_back({&DecoderLayer::qNorm, "self_attn.q_norm.weight", "attn_q_norm.weight", true});
        slots.push_back({&DecoderLayer::kNorm, "self_attn.k_norm.weight", "attn_k_norm.weight", true});
    }
    return slots;
}

void setFusedProjections(DecoderLayer& L, const at::Tensor& qkv, const at::Tensor& gateUp, int64_t q, int64_t kv,
                         int64_t ffn)
{
    L.q = std::make_shared<DenseLinear>(qkv.narrow(0, 0, q).clone());
    L.k = std::make_shared<DenseLinear>(qkv.narrow(0, q, kv).clone());
    L.v = std::make_shared<DenseLinear>(qkv.narrow(0, q + kv, kv).clone());
    L.gate = std::make_shared<DenseLinear>(gateUp.narrow(0, 0, ffn).clone());
    L.up = std::make_shared<DenseLinear>(gateUp.narrow(0, ffn, ffn).clone());
}

LlamaModel::LlamaModel(ModelConfig config, at::ScalarType weightDtype, at::Device device)
    : config_(std::move(config)),
      weightDtype_(weightDtype),
      computeDtype_(computeDtypeFor(weightDtype, device)),
      device_(device),
      rope_(config_.headDim, config_.ropeTheta, config_.ropeScaling, device)
{
    config_.validate();
    rope_.ensure(config_.maxSeqLen);
    if (config_.ropeLocalTheta > 0) {
        // (Tables built here, outside any inference-mode pass, can be saved for backward when fine-tuning.)
        localRope_ = RopeTable(config_.headDim, config_.ropeLocalTheta, RopeScaling{}, device);
        localRope_.ensure(config_.maxSeqLen);
    }
}

at::Tensor LlamaModel::rmsNorm(const at::Tensor& x, const at::Tensor& weight) const
{
    if (computeDtype_ == at::kFloat && fusedElementwiseApplies(x, weight))
        return fusedRmsNorm(x, weight, config_.normEps, config_.unitOffsetNorms());
    const auto xf = x.to(at::kFloat);
    auto y = xf * at::rsqrt(xf.square().mean(-1, /*keepdim=*/true).add_(config_.normEps));
    return scaled(y, config_.unitOffsetNorms() ? weight + 1.0 : weight).to(computeDtype_);
}

at::Tensor LlamaModel::mlp(const DecoderLayer& layer, const at::Tensor& h) const
{
    auto gate = layer.gate->forward(h);
    const auto up = layer.up->forward(h);
    const bool gelu = config_.hiddenAct == "gelu_pytorch_tanh";
    if (!gelu && gate.is_contiguous() && fusedElementwiseApplies(gate) && fusedElementwiseApplies(up) &&
        up.sizes() == gate.sizes()) {
        siluMulInPlace(gate, up); // gate is this function's own output of the projection
        return layer.down->forward(gate);
    }
    gate = gelu ? at::gelu(gate, "tanh") : at::silu(gate);
    return layer.down->forward(scaled(std::move(gate), up));
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

    auto q = layer.q->forward(x).view({B, T, nh, hd});  // [B, T, nh, hd]
    auto k = layer.k->forward(x).view({B, T, nkv, hd}); // [B, T, nkv, hd]
    auto v = layer.v->forward(x).view({B, T, nkv, hd}).transpose(1, 2);
    if (config_.qkNorm) { // per head, over head_dim, before RoPE
        q = rmsNorm(q, layer.qNorm);
        k = rmsNorm(k, layer.kNorm);
    }
    if (fusedElementwiseApplies(q, angles.cos) && fusedElementwiseApplies(k, angles.sin) &&
        angles.cos.scalar_type() == at::kFloat) { // rotated in one pass, [B, T, heads, hd] kept; views below
        q = fusedRope(q, angles.cos, angles.sin).transpose(1, 2);
        k = fusedRope(k, angles.cos, angles.sin).transpose(1, 2);
    } else {
        q = RopeTable::apply(q.transpose(1, 2), angles); // [B, nh, T, hd]
        k = RopeTable::apply(k.transpose(1, 2), angles); // [B, nkv, T, hd]
    }

    if (cache) {
        auto& ck = cache->keys[static_cast<size_t>(li)];
        auto& cv = cache->values[static_cast<size_t>(li)];
        ck.narrow(2, pos, T).copy_(k);
        cv.narrow(2, pos, T).copy_(v);
        k = ck.narrow(2, 0, pos + T);
        v = cv.narrow(2, 0, pos + T);
    }
    if (fusedAttentionApplies(q, k, v)) // fp32 CPU inference: one pass per query row over its visible keys
        return layer.o->forward(fusedCausalAttention(q, k, v, pos, config_.attentionScale(),
                                                     config_.slidingLayer(li) ? config_.slidingWindow : 0));
    // Query head h uses KV head h / g: group the g query heads of one KV head along the time axis, so one
    // batched matmul per KV head serves them all without materialising repeated keys.
    const auto qg = q.reshape({B, nkv, g * T, hd});
    const int64_t S = k.size(2);
    auto scores = at::matmul(qg, k.transpose(-1, -2)).to(at::kFloat);
    scores.mul_(config_.attentionScale());
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
    if (const double scale = config_.embeddingScale(); scale != 1.0)
        x = c10::GradMode::is_enabled() ? x * scale : x.mul_(scale);
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

std::vector<at::Tensor> LlamaModel::sublayerStates(const at::Tensor& tokens) const
{
    if (tokens.dim() != 2)
        throw ConfigError("forward: tokens must be [batch, time], got " + std::to_string(tokens.dim()) + " dims");
    auto x = at::embedding(embedding, tokens.to(at::kLong).to(device_)).to(computeDtype_);
    if (const double scale = config_.embeddingScale(); scale != 1.0)
        x = x * scale;
    std::vector<at::Tensor> states;
    runLayers(std::move(x), 0, 0, nullptr, nullptr, &states);
    return states;
}

at::Tensor LlamaModel::runLayers(at::Tensor x, int first, int64_t pos, KvCache* cache,
                                 std::vector<at::Tensor>* residuals, std::vector<at::Tensor>* sublayers) const
{
    const int64_t T = x.size(1);
    // Shared by every layer: the rotation angles of these positions and the causal mask (query at absolute
    // position pos+t sees keys 0..pos+t); sliding layers see the last slidingWindow keys only, and may rotate
    // with their own RoPE base.
    const auto angles = rope_.angles(pos, T, computeDtype_);
    const auto longs = at::TensorOptions().dtype(at::kLong).device(device_);
    const auto keyPos = at::arange(pos + T, longs).unsqueeze(0);
    const auto queryPos = at::arange(pos, pos + T, longs).unsqueeze(1);
    const auto future = keyPos > queryPos;
    bool anySliding = false;
    for (size_t li = size_t(first); li < layers.size(); ++li)
        anySliding = anySliding || config_.slidingLayer(static_cast<int>(li));
    at::Tensor outside;
    std::optional<RopeTable::Angles> localAngles;
    if (anySliding) {
        outside = future.logical_or(queryPos - keyPos >= config_.slidingWindow);
        if (config_.ropeLocalTheta > 0)
            localAngles = localRope_.angles(pos, T, computeDtype_);
    }
    for (size_t li = size_t(first); li < layers.size(); ++li) {
        const DecoderLayer& layer = layers[li];
        const bool sliding = config_.slidingLayer(static_cast<int>(li));
        const auto& a = sliding && localAngles ? *localAngles : angles;
        if (sublayers)
            sublayers->push_back(x);
        auto attn = attention(layer, static_cast<int>(li), rmsNorm(x, layer.attnNorm), pos, a,
                              sliding ? outside : future, cache);
        if (config_.sandwichNorms)
            attn = rmsNorm(attn, layer.postAttnNorm);
        x = x + attn;
        if (sublayers)
            sublayers->push_back(x);
        auto m = mlp(layer, rmsNorm(x, layer.ffnNorm));
        if (config_.sandwichNorms)
            m = rmsNorm(m, layer.postFfnNorm);
        x = x + m;
        if (residuals)
            residuals->push_back(x);
    }
    if (sublayers)
        sublayers->push_back(x);
    if (fusedElementwiseApplies(x, finalNorm))
        return fusedRmsNorm(x, finalNorm, config_.normEps, config_.unitOffsetNorms());
    const auto xf = x.to(at::kFloat);
    auto y = xf * at::rsqrt(xf.square().mean(-1, true).add_(config_.normEps));
    return scaled(y, config_.unitOffsetNorms() ? finalNorm + 1.0 : finalNorm);
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
    const auto norms = layerNormSlots(config_);
    for (auto& l : layers) {
        for (const LayerNormSlot& n : norms)
            l.*n.member = (l.*n.member).to(device, at::kFloat);
        for (LinearPtr* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
            conv(*p);
    }
    if (tied)
        lmHead = std::make_shared<DenseLinear>(embedding);
    else
        conv(lmHead);
    weightDtype_ = dtype;
    computeDtype_ = computeDtypeFor(dtype, device);
    if (device != device_) {
        rope_ = RopeTable(config_.headDim, config_.ropeTheta, config_.ropeScaling, device);
        if (config_.ropeLocalTheta > 0)
            localRope_ = RopeTable(config_.headDim, config_.ropeLocalTheta, RopeScaling{}, device);
    }
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
    const auto norms = layerNormSlots(config_);
    for (const auto& l : layers) {
        for (const LayerNormSlot& s : norms)
            n += bytes(l.*s.member);
        for (const LinearPtr* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
            n += (*p)->storageBytes();
    }
    if (!config_.tiedEmbeddings)
        n += lmHead->storageBytes();
    return n;
}

} // namespace qpruner::model
