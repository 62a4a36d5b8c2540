// tokenizer.json reading (see hf_tokenizer_json.h). Field names and defaults follow the serde layout of the
// `tokenizers` library: model {type, vocab, merges, ignore_merges, ...}, added_tokens, pre_tokenizer,
// post_processor; BOS/EOS come from tokenizer_config.json, else a TemplateProcessing, else known names.
#include "tokenizer/hf_tokenizer_json.h"

#include "qpruner/error.h"

#include <nlohmann/json.hpp>

namespace qpruner {

namespace {

using nlohmann::json;

constexpr int kMaxNesting = 16; // Sequence inside Sequence: real files nest once or twice

// A boolean member, `fallback` when absent or null (tokenizers writes both forms).
bool boolOr(const json& obj, const char* key, bool fallback)
{
    const auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? fallback : it->get<bool>();
}

std::string typeOf(const json& obj)
{
    if (!obj.is_object())
        return "(not an object)";
    const auto it = obj.find("type");
    return it != obj.end() && it->is_string() ? it->get<std::string>() : "(no type)";
}

// Ids index dense tables, so an absurd id in a damaged file must not turn into a huge allocation.
std::int64_t maxReasonableId(std::size_t entries) { return 2 * static_cast<std::int64_t>(entries) + 4096; }

class Reader {
public:
    Reader(const std::string& fileName, HfTokenizerJson& out) : where_("tokenizer file " + fileName), out_(out) {}

    void model(const json& model);
    void addedTokens(const json& tokens);
    void specialIds(const json& root, std::string_view configJson, const std::string& fileName);

    const std::string& where() const { return where_; }

private:
    std::int32_t idOfContent(const std::string& content) const;
    void templateIds(const json& p, int depth, std::optional<std::int32_t>& bos, std::optional<std::int32_t>& eos) const;

    std::string where_;
    HfTokenizerJson& out_;
};

void Reader::model(const json& model)
{
    const std::string where = where_ + ": model";
    if (const std::string type = model.value("type", std::string("BPE")); type != "BPE")
        throw FormatError(where + " type '" + type + "' is not supported (only BPE)");
    auto stringOr = [&](const char* key) {
        const auto it = model.find(key);
        return it == model.end() || it->is_null() ? std::string() : it->get<std::string>();
    };
    out_.continuingSubwordPrefix = stringOr("continuing_subword_prefix");
    out_.endOfWordSuffix = stringOr("end_of_word_suffix");
    out_.unkToken = stringOr("unk_token");
    if (const auto it = model.find("dropout"); it != model.end() && it->is_number() && it->get<double>() > 0)
        throw FormatError(where + ".dropout is not supported (encoding must be deterministic)");
    out_.ignoreMerges = boolOr(model, "ignore_merges", false);
    out_.byteFallback = boolOr(model, "byte_fallback", false);
    out_.fuseUnk = boolOr(model, "fuse_unk", false);

    const auto vocab = model.find("vocab");
    if (vocab == model.end() || !vocab->is_object())
        throw FormatError(where + ".vocab is missing or not an object");
    const std::int64_t idLimit = maxReasonableId(vocab->size());
    out_.vocab.reserve(vocab->size());
    for (const auto& [piece, value] : vocab->items()) {
        const std::int64_t id = value.get<std::int64_t>();
        if (id < 0 || id > idLimit)
            throw FormatError(where + ".vocab: '" + piece + "' has invalid id " + std::to_string(id));
        out_.vocab.emplace(piece, static_cast<std::int32_t>(id));
    }
    if (!out_.unkToken.empty() && !out_.vocab.contains(out_.unkToken))
        throw FormatError(where + ".unk_token '" + out_.unkToken + "' is not in the vocabulary");

    const auto merges = model.find("merges");
    if (merges == model.end() || !merges->is_array())
        throw FormatError(where + ".merges is missing or not an array");
    out_.merges.reserve(merges->size());
    const std::size_t prefixLength = out_.continuingSubwordPrefix.size();
    for (const json& m : *merges) {
        const std::string name = where + ".merges[" + std::to_string(out_.merges.size()) + "]";
        std::string left, right;
        if (m.is_string()) {
            const std::string& s = m.get_ref<const std::string&>();
            const std::size_t space = s.find(' ');
            if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
                throw FormatError(name + " '" + s + "' is not two pieces separated by one space");
            left = s.substr(0, space);
            right = s.substr(space + 1);
        } else if (m.is_array() && m.size() == 2) {
            left = m[0].get<std::string>();
            right = m[1].get<std::string>();
        } else {
            throw FormatError(name + " is neither \"a b\" nor [a, b]");
        }
        // The merged piece drops the right side's continuing_subword_prefix, as BpeBuilder::build does.
        const std::string merged = left + (right.size() >= prefixLength ? right.substr(prefixLength) : std::string());
        const auto a = out_.vocab.find(left), b = out_.vocab.find(right), ab = out_.vocab.find(merged);
        if (a == out_.vocab.end() || b == out_.vocab.end() || ab == out_.vocab.end())
            throw FormatError(name + " ('" + left + "', '" + right + "') uses a piece that is not in the vocabulary");
        out_.merges.push_back({a->second, b->second, ab->second});
    }
}

void Reader::addedTokens(const json& tokens)
{
    const std::string where = where_ + ": added_tokens";
    if (!tokens.is_array())
        throw FormatError(where + " is not an array");
    const std::int64_t idLimit = maxReasonableId(out_.vocab.size() + tokens.size());
    for (const json& t : tokens) {
        HfTokenizerJson::AddedToken token;
        const std::int64_t id = t.at("id").get<std::int64_t>();
        token.content = t.at("content").get<std::string>();
        token.lstrip = boolOr(t, "lstrip", false);
        token.rstrip = boolOr(t, "rstrip", false);
        token.singleWord = boolOr(t, "single_word", false);
        token.special = boolOr(t, "special", false);
        token.normalized = boolOr(t, "normalized", !token.special);
        if (id < 0 || id > idLimit || token.content.empty())
            throw FormatError(where + ": token '" + token.content + "' has invalid id " + std::to_string(id) +
                              " or empty content");
        token.id = static_cast<std::int32_t>(id);
        out_.addedTokens.push_back(std::move(token));
    }
}

std::int32_t Reader::idOfContent(const std::string& content) const
{
    for (const auto& t : out_.addedTokens)
        if (t.content == content)
            return t.id;
    const auto it = out_.vocab.find(content);
    return it == out_.vocab.end() ? -1 : it->second;
}

void Reader::templateIds(const json& p, int depth, std::optional<std::int32_t>& bos,
                         std::optional<std::int32_t>& eos) const
{
    if (typeOf(p) == "Sequence" && p.contains("processors") && depth < kMaxNesting) {
        for (const json& inner : p["processors"])
            templateIds(inner, depth + 1, bos, eos);
        return;
    }
    if (typeOf(p) != "TemplateProcessing" || !p.contains("single"))
        return;
    // The special tokens before the sequence are BOS, the first one after it EOS.
    bool afterSequence = false;
    for (const json& item : p["single"]) {
        if (item.contains("Sequence")) {
            afterSequence = true;
        } else if (item.contains("SpecialToken")) {
            const std::string name = item["SpecialToken"].at("id").get<std::string>();
            std::int32_t id = idOfContent(name);
            if (p.contains("special_tokens") && p["special_tokens"].contains(name))
                id = p["special_tokens"][name].at("ids").at(0).get<std::int32_t>();
            auto& slot = afterSequence ? eos : bos;
            if (!slot)
                slot = id;
        }
    }
}

void Reader::specialIds(const json& root, std::string_view configJson, const std::string& fileName)
{
    std::optional<std::int32_t> bos, eos;
    if (!configJson.empty()) {
        const json config = json::parse(configJson, nullptr, /*allow_exceptions=*/false);
        if (config.is_discarded() || !config.is_object())
            throw FormatError("tokenizer_config.json beside " + fileName + " is not a valid JSON object");
        auto read = [&](const char* key, std::optional<std::int32_t>& out) {
            const auto it = config.find(key);
            if (it == config.end())
                return;
            if (it->is_null())
                out = -1;
            else if (it->is_string())
                out = idOfContent(it->get<std::string>());
            else if (it->is_object() && it->contains("content"))
                out = idOfContent((*it)["content"].get<std::string>());
        };
        read("bos_token", bos);
        read("eos_token", eos);
    }
    if (const auto it = root.find("post_processor"); it != root.end() && !it->is_null())
        templateIds(*it, 0, bos, eos);
    auto byName = [&](std::initializer_list<const char*> names) -> std::int32_t {
        for (const char* n : names)
            for (const auto& t : out_.addedTokens)
                if (t.content == n)
                    return t.id;
        return -1;
    };
    out_.bosId = bos ? *bos : byName({"<|begin_of_text|>", "<s>", "<|startoftext|>", "<|endoftext|>"});
    out_.eosId = eos ? *eos : byName({"<|end_of_text|>", "</s>", "<|endoftext|>"});
}

} // namespace

HfTokenizerJson HfTokenizerJson::parse(std::string_view text, const std::string& fileName, std::string_view configJson)
{
    HfTokenizerJson out;
    Reader reader(fileName, out);
    const std::string& where = reader.where();
    try {
        const json root = json::parse(text);
        if (!root.is_object())
            throw FormatError(where + ": the top level is not a JSON object");
        if (const auto it = root.find("normalizer"); it != root.end() && !it->is_null()) {
            out.normalizer = HfNormalizer::parse(*it, where + ": normalizer");
            if (out.normalizer->empty())
                out.normalizer.reset();
        }
        if (const auto it = root.find("pre_tokenizer"); it != root.end() && !it->is_null()) {
            out.preTokenizer = HfPreTokenizer::parse(*it, where + ": pre_tokenizer");
            if (out.preTokenizer->steps().empty())
                out.preTokenizer.reset();
        }
        if (const auto it = root.find("decoder"); it != root.end() && !it->is_null())
            out.decoder = HfDecoder::parse(*it, where + ": decoder");
        const auto model = root.find("model");
        if (model == root.end() || !model->is_object())
            throw FormatError(where + ": has no 'model' object");
        reader.model(*model);
        reader.addedTokens(root.contains("added_tokens") ? root["added_tokens"] : json::array());
        if (out.byteLevel() && (!out.continuingSubwordPrefix.empty() || !out.endOfWordSuffix.empty()))
            throw FormatError(where + ": model.continuing_subword_prefix / end_of_word_suffix are not supported "
                                      "with a ByteLevel pre-tokenizer");
        reader.specialIds(root, configJson, fileName);
    } catch (const json::exception& e) {
        // Wrong JSON types anywhere (a string where a number belongs, ...) end up here.
        throw FormatError(where + " is not a valid tokenizer.json: " + e.what());
    }
    return out;
}

} // namespace qpruner
