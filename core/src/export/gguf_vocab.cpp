// Tokenizers as GGUF vocabulary metadata and back (see gguf_vocab.h). Key names, types and defaults follow
// llama.cpp's llama_vocab::impl::load (src/llama-vocab.cpp); the vocabularies are built as its converter does
// (convert_hf_to_gguf.py, _create_vocab_sentencepiece and get_vocab_base).
#include "export/gguf_vocab.h"

#include "qpruner/error.h"
#include "tokenizer/hf_bpe_tokenizer.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/sentencepiece_tokenizer.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace qpruner::gguf {

namespace {

constexpr const char* kModelKey = "tokenizer.ggml.model";
constexpr const char* kPreKey = "tokenizer.ggml.pre";
constexpr const char* kTokensKey = "tokenizer.ggml.tokens";
constexpr const char* kScoresKey = "tokenizer.ggml.scores";
constexpr const char* kTypesKey = "tokenizer.ggml.token_type";
constexpr const char* kMergesKey = "tokenizer.ggml.merges";
constexpr const char* kBosKey = "tokenizer.ggml.bos_token_id";
constexpr const char* kEosKey = "tokenizer.ggml.eos_token_id";
constexpr const char* kUnknownKey = "tokenizer.ggml.unknown_token_id";
constexpr const char* kPaddingKey = "tokenizer.ggml.padding_token_id";
constexpr const char* kAddBosKey = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEosKey = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpacePrefixKey = "tokenizer.ggml.add_space_prefix";

constexpr float kPadScore = -10000.0f;                   // _create_vocab_sentencepiece's score of [PAD<id>]
constexpr std::string_view kSpaceMark = "\xE2\x96\x81"; // U+2581, SentencePiece's escaped space
constexpr const char* kPadPiece = "<pad>";               // SentencePiece's default pad_piece

constexpr int32_t typeValue(TokenType type) { return static_cast<int32_t>(type); }

std::string padToken(size_t id) { return "[PAD" + std::to_string(id) + "]"; }

// Pads the vocabulary with [PAD<id>] tokens of type UNUSED up to the model's embedding rows, or refuses a
// vocabulary with more tokens than rows.
void padTo(GgufVocab& v, int32_t rows, const std::string& source)
{
    size_t count = v.tokens.size();
    // Added tokens past the embedding (Gemma 3's text models ship <image_soft_token> as id 262144 of a 262144-row
    // embedding) can never be embedded: they are left out, with a warning naming them. Any other excess is refused.
    if (rows >= 0 && count > static_cast<size_t>(rows)) {
        bool addedOnly = true;
        std::string names;
        for (size_t id = static_cast<size_t>(rows); id < count; ++id) {
            const int32_t type = v.types[id];
            addedOnly = addedOnly && (type == typeValue(TokenType::Control) || type == typeValue(TokenType::UserDefined));
            if (id < static_cast<size_t>(rows) + 4)
                names += (names.empty() ? "" : ", ") + v.tokens[id];
        }
        for (const int32_t special : {v.bosId, v.eosId, v.unknownId, v.paddingId})
            addedOnly = addedOnly && special < rows;
        if (addedOnly) {
            v.warnings.push_back("tokenizer " + source + " has " + std::to_string(count) + " tokens, the model's embedding " +
                                 std::to_string(rows) + " rows: the added tokens past it are left out (" + names +
                                 (count - static_cast<size_t>(rows) > 4 ? ", ..." : "") + ")");
            v.tokens.resize(static_cast<size_t>(rows));
            v.types.resize(static_cast<size_t>(rows));
            if (!v.scores.empty())
                v.scores.resize(static_cast<size_t>(rows));
            count = v.tokens.size();
        }
    }
    if (rows < 0 || count > static_cast<size_t>(rows))
        throw ConfigError("tokenizer " + source + " has " + std::to_string(count) +
                          " tokens, more than the model's embedding has rows (" + std::to_string(rows) + ")");
    const auto want = static_cast<size_t>(rows);
    if (count == want)
        return;
    v.warnings.push_back("tokenizer " + source + " has " + std::to_string(count) + " tokens, the model's embedding " +
                         std::to_string(want) + " rows: padded with " + std::to_string(want - count) +
                         " unused tokens " + padToken(count) + ".." + padToken(want - 1));
    for (size_t id = count; id < want; ++id) {
        v.tokens.push_back(padToken(id));
        v.types.push_back(typeValue(TokenType::Unused));
        if (v.model == "llama")
            v.scores.push_back(kPadScore);
    }
}

GgufVocab fromSentencePiece(const std::filesystem::path& file, const SentencePieceTokenizer& tokenizer)
{
    const SentencePieceModel& model = tokenizer.model();
    GgufVocab v;
    v.model = "llama";
    for (size_t id = 0; id < model.pieces.size(); ++id) {
        const auto& piece = model.pieces[id];
        v.tokens.push_back(piece.text);
        v.scores.push_back(piece.score);
        v.types.push_back(static_cast<int32_t>(piece.type));
        if (piece.type == SentencePieceModel::PieceType::Unknown)
            v.unknownId = static_cast<int32_t>(id);
        // libsentencepiece's pad_id(): the pad piece, when it is a control symbol.
        if (piece.text == kPadPiece && piece.type == SentencePieceModel::PieceType::Control)
            v.paddingId = static_cast<int32_t>(id);
    }
    v.bosId = tokenizer.bosId();
    v.eosId = tokenizer.eosId();
    v.addSpacePrefix = model.addDummyPrefix;
    if (model.removeExtraWhitespaces)
        v.warnings.push_back("tokenizer file " + file.string() +
                             " removes extra whitespace when normalizing; llama.cpp's SentencePiece tokenizer does "
                             "not, so texts with leading or repeated spaces will be tokenized differently");
    return v;
}

// llama2.c's tokenizer.bin, as written by its tokenizer.py export: int32 max_token_length, then per token a float
// score, an int32 length and the bytes, with U+2581 written as ' ' and BOS/EOS as "\n<s>\n" / "\n</s>\n".
GgufVocab fromLlama2c(const Llama2cTokenizer& tokenizer)
{
    GgufVocab v;
    v.model = "llama";
    v.bosId = tokenizer.bosId();
    v.eosId = tokenizer.eosId();
    v.unknownId = 0;
    for (int32_t id = 0; id < tokenizer.vocabSize(); ++id) {
        std::string text = tokenizer.piece(id);
        v.scores.push_back(tokenizer.score(id));
        TokenType type = TokenType::Normal;
        if (id == v.unknownId) {
            type = TokenType::Unknown;
        } else if (id == v.bosId || id == v.eosId) {
            type = TokenType::Control;
            if (text.size() > 2 && text.front() == '\n' && text.back() == '\n')
                text = text.substr(1, text.size() - 2);
        } else if (bytePieceValue(text) >= 0) {
            type = TokenType::Byte;
        }
        for (size_t at = 0; (at = text.find(' ', at)) != std::string::npos; at += kSpaceMark.size())
            text.replace(at, 1, kSpaceMark);
        v.tokens.push_back(std::move(text));
        v.types.push_back(typeValue(type));
    }
    return v;
}

// DeepSeek-V3's pre-tokenizer: these three regex splits (then ByteLevel), llama.cpp's "deepseek-v3".
const char* const kDeepSeekV3Regexes[] = {
    "\\p{N}{1,3}",
    "[\xE4\xB8\x80" "-\xE9\xBE\xA5" "\xE3\x81\x80" "-\xE3\x82\x9F" "\xE3\x82\xA0" "-\xE3\x83\xBF" "]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+"
    "[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};

// tokenizer.ggml.pre for a byte-level pre-tokenizer: the name llama.cpp gives its regex splits, when the
// pre-tokenizer is exactly known Isolated regex splits and adds no prefix space; else "default", with a warning.
std::string preTokenizerName(const HfTokenizerJson& hf, const std::string& file, std::vector<std::string>& warnings)
{
    std::vector<std::string_view> regexes;
    bool other = false;
    if (hf.preTokenizer)
        for (const auto& step : hf.preTokenizer->steps()) {
            if (step.kind == HfPreTokenizer::Kind::Split && step.fast)
                regexes.push_back(step.fast->regex());
            else if (step.kind == HfPreTokenizer::Kind::Split && step.regex)
                regexes.push_back(step.regex->pattern());
            else if (step.kind == HfPreTokenizer::Kind::ByteLevel && step.fast)
                regexes.push_back(step.fast->regex());
            other = other || !step.literal.empty() || step.addPrefixSpace || step.invert ||
                    step.behavior != HfPreTokenizer::Behavior::Isolated ||
                    (step.kind != HfPreTokenizer::Kind::Split && step.kind != HfPreTokenizer::Kind::ByteLevel);
        }
    if (regexes.size() == 1 && !other) {
        const std::pair<HfSplitPattern, const char*> known[] = {{HfSplitPattern::llama3(), "llama-bpe"},
                                                                {HfSplitPattern::qwen2(), "qwen2"},
                                                                {HfSplitPattern::gpt2(), "gpt-2"}};
        for (const auto& [pattern, name] : known)
            if (pattern.regex() == regexes.front())
                return name;
    }
    if (!other && std::equal(regexes.begin(), regexes.end(), std::begin(kDeepSeekV3Regexes),
                             std::end(kDeepSeekV3Regexes)))
        return "deepseek-v3";
    warnings.push_back("tokenizer file " + file +
                       ": the pre-tokenizer is not the GPT-2, Llama-3, Qwen2 or DeepSeek-V3 regex split without a "
                       "prefix space, so tokenizer.ggml.pre is 'default' and llama.cpp will split words differently");
    return "default";
}

// A SentencePiece-style (character-level, byte_fallback) tokenizer.json as a "llama" vocabulary: llama.cpp's SPM
// tokenizer merges the adjacent pair whose merged token has the highest score, so each token scores minus the
// rank of the first merge producing it (tokens no merge produces score lower than all), which gives the BPE
// merge order. <0xNN> pieces are BYTE, unk_token UNKNOWN, added tokens CONTROL (special) or USER_DEFINED.
// add_space_prefix: the normalizer starts with Prepend U+2581 or a Metaspace pre-tokenizer prepends one.
GgufVocab fromHfSentencePieceStyle(const std::filesystem::path& file, const HfBpeTokenizer& tokenizer)
{
    const HfTokenizerJson& hf = tokenizer.config();
    const auto count = static_cast<size_t>(tokenizer.vocabSize());
    GgufVocab v;
    v.model = "llama";
    v.tokens.assign(count, std::string());
    v.types.assign(count, typeValue(TokenType::Unused));
    v.scores.assign(count, kPadScore);
    std::vector<bool> present(count, false);
    const float noMerge = -static_cast<float>(hf.merges.size()) - 1.0f;
    for (const auto& [piece, id] : hf.vocab) {
        const auto i = static_cast<size_t>(id);
        present[i] = true;
        v.tokens[i] = piece;
        v.types[i] = typeValue(bytePieceValue(piece) >= 0 ? TokenType::Byte : TokenType::Normal);
        // Single characters are never a merged candidate: their score does not matter to the SPM tokenizer.
        v.scores[i] = noMerge;
    }
    for (size_t rank = hf.merges.size(); rank-- > 0;)
        v.scores[static_cast<size_t>(hf.merges[rank].merged)] = -static_cast<float>(rank);
    for (const auto& added : hf.addedTokens) {
        const auto i = static_cast<size_t>(added.id);
        present[i] = true;
        v.tokens[i] = added.content;
        v.types[i] = typeValue(added.special ? TokenType::Control : TokenType::UserDefined);
        // llama.cpp's SPM merging does not look at token types: an added token keeps its merge score, if any.
        if (!hf.vocab.contains(added.content))
            v.scores[i] = noMerge;
        if (added.content == kPadPiece)
            v.paddingId = added.id;
    }
    for (size_t i = 0; i < count; ++i)
        if (!present[i])
            v.tokens[i] = padToken(i);
    if (!hf.unkToken.empty()) {
        v.unknownId = hf.vocab.at(hf.unkToken);
        v.types[static_cast<size_t>(v.unknownId)] = typeValue(TokenType::Unknown);
    }
    v.bosId = tokenizer.bosId();
    v.eosId = tokenizer.eosId();

    // llama.cpp escapes every space as U+2581 and adds a prefix U+2581 when add_space_prefix is set.
    bool prepends = false, escapesSpaces = false;
    if (hf.normalizer) {
        const auto& steps = hf.normalizer->steps();
        prepends = !steps.empty() && steps.front().kind == HfNormalizer::Kind::Prepend && steps.front().text == kSpaceMark;
        for (const auto& step : steps)
            escapesSpaces = escapesSpaces || (step.kind == HfNormalizer::Kind::Replace && !step.regex &&
                                              step.text == " " && step.content == kSpaceMark);
    }
    if (hf.preTokenizer)
        for (const auto& step : hf.preTokenizer->steps())
            if (step.kind == HfPreTokenizer::Kind::Metaspace && step.replacement == kSpaceMark) {
                escapesSpaces = true;
                prepends = prepends || step.prepend != HfPreTokenizer::Prepend::Never;
            }
    v.addSpacePrefix = prepends;
    if (!escapesSpaces)
        v.warnings.push_back("tokenizer file " + file.string() +
                             ": the normalizer does not write spaces as U+2581 as llama.cpp's SentencePiece "
                             "tokenizer does, so texts with spaces will be tokenized differently");
    if (!hf.byteFallback)
        v.warnings.push_back("tokenizer file " + file.string() +
                             ": no byte_fallback: llama.cpp will map unknown characters differently");
    return v;
}

// A byte-level tokenizer.json: tokens by id (ids no entry uses become [PAD<id>] UNUSED, as get_vocab_base does),
// merges as "left right" in rank order.
GgufVocab fromHfJson(const std::filesystem::path& file, const HfBpeTokenizer& tokenizer)
{
    const HfTokenizerJson& hf = tokenizer.config();
    int32_t count = 0;
    for (const auto& [piece, id] : hf.vocab)
        count = std::max(count, id + 1);
    for (const auto& added : hf.addedTokens)
        count = std::max(count, added.id + 1);

    std::vector<std::optional<std::string>> byId(static_cast<size_t>(count));
    for (const auto& [piece, id] : hf.vocab)
        byId[static_cast<size_t>(id)] = piece;
    GgufVocab v;
    v.model = "gpt2";
    for (const auto& merge : hf.merges)
        v.merges.push_back(*byId[static_cast<size_t>(merge.left)] + " " + *byId[static_cast<size_t>(merge.right)]);
    v.types.assign(byId.size(), typeValue(TokenType::Normal));
    for (const auto& added : hf.addedTokens) {
        byId[static_cast<size_t>(added.id)] = added.content;
        v.types[static_cast<size_t>(added.id)] =
            typeValue(added.special ? TokenType::Control : TokenType::UserDefined);
    }
    for (size_t id = 0; id < byId.size(); ++id) {
        v.tokens.push_back(byId[id] ? *byId[id] : padToken(id));
        if (!byId[id])
            v.types[id] = typeValue(TokenType::Unused);
    }
    v.pre = preTokenizerName(hf, file.string(), v.warnings);
    v.bosId = tokenizer.bosId();
    v.eosId = tokenizer.eosId();
    // llama.cpp's default for the pre-tokenizer (BOS for Llama-3 and DeepSeek-V3)
    v.addBos = v.pre == "llama-bpe" || v.pre == "deepseek-v3";
    return v;
}

// Typed access to the tokenizer.ggml.* keys of a file, with errors naming the file and the key.
class KeyReader {
public:
    explicit KeyReader(const GgufFile& file) : file_(file) {}

    std::string where(std::string_view key) const
    {
        return "GGUF file " + file_.path().string() + ": " + std::string(key);
    }

    // The value of `key` if present (nullptr otherwise, or FormatError when `required`), checked to be a `type`
    // (for arrays: of `element`s), the types llama.cpp reads it as.
    const Value* find(std::string_view key, ValueType type, ValueType element, bool required) const
    {
        const Value* value = file_.find(key);
        if (!value) {
            if (required)
                throw FormatError(where(key) + " is missing");
            return nullptr;
        }
        if (value->type() != type || (type == ValueType::Array && value->elementType() != element))
            throw FormatError(where(key) + " is " + typeName(value->type(), value->elementType()) + ", expected " +
                              typeName(type, element));
        return value;
    }
    const Value* scalar(std::string_view key, ValueType type) const { return find(key, type, type, false); }
    const Value* array(std::string_view key, ValueType element, bool required) const
    {
        return find(key, ValueType::Array, element, required);
    }

    // A token id key: -1 when absent, FormatError when not a token of the vocabulary.
    int32_t tokenId(std::string_view key, size_t tokens) const
    {
        const Value* value = scalar(key, ValueType::U32);
        if (!value)
            return -1;
        const uint64_t id = value->asUInt(where(key));
        if (id >= tokens)
            throw FormatError(where(key) + " is " + std::to_string(id) + ", not an id of the " +
                              std::to_string(tokens) + " tokens");
        return static_cast<int32_t>(id);
    }

    bool flag(std::string_view key, bool fallback) const
    {
        const Value* value = scalar(key, ValueType::Bool);
        return value ? value->asBool(where(key)) : fallback;
    }

private:
    static std::string typeName(ValueType type, ValueType element)
    {
        return type == ValueType::Array ? std::string("an array of ") + valueTypeName(element)
                                        : std::string("a ") + valueTypeName(type);
    }

    const GgufFile& file_;
};

} // namespace

GgufVocab vocabFromTokenizerFile(const std::filesystem::path& path, int32_t modelVocabSize)
{
    GgufVocab v;
    if (path.extension() == ".gguf") {
        v = readVocab(GgufFile::open(path));
    } else {
        const std::unique_ptr<Tokenizer> tokenizer = loadTokenizer(path); // checks the file as loadTokenizer does
        std::error_code ec;
        // For a directory, the file loadTokenizer chose (findTokenizerBeside tries the same names first).
        const auto file = std::filesystem::is_directory(path, ec) ? findTokenizerBeside(path) : path;
        if (const auto* sp = dynamic_cast<const SentencePieceTokenizer*>(tokenizer.get()))
            v = fromSentencePiece(file, *sp);
        else if (const auto* l2 = dynamic_cast<const Llama2cTokenizer*>(tokenizer.get()))
            v = fromLlama2c(*l2);
        else if (const auto& hf = dynamic_cast<const HfBpeTokenizer&>(*tokenizer); hf.byteLevel())
            v = fromHfJson(file, hf);
        else
            v = fromHfSentencePieceStyle(file, hf);
    }
    padTo(v, modelVocabSize, path.string());
    return v;
}

void writeVocab(GgufWriter& writer, const GgufVocab& vocab)
{
    const bool llama = vocab.model == "llama";
    if (vocab.types.size() != vocab.tokens.size() || (llama && vocab.scores.size() != vocab.tokens.size()))
        throw ConfigError("vocabulary of " + std::to_string(vocab.tokens.size()) + " tokens has " +
                          std::to_string(vocab.scores.size()) + " scores and " + std::to_string(vocab.types.size()) +
                          " token types");
    writer.set(kModelKey, Value::string(vocab.model));
    if (!vocab.pre.empty())
        writer.set(kPreKey, Value::string(vocab.pre));
    writer.set(kTokensKey, Value::stringArray(vocab.tokens));
    if (!vocab.scores.empty())
        writer.set(kScoresKey, Value::f32Array(vocab.scores));
    writer.set(kTypesKey, Value::i32Array(vocab.types));
    if (!vocab.merges.empty())
        writer.set(kMergesKey, Value::stringArray(vocab.merges));
    const std::pair<const char*, int32_t> ids[] = {
        {kBosKey, vocab.bosId}, {kEosKey, vocab.eosId}, {kUnknownKey, vocab.unknownId}, {kPaddingKey, vocab.paddingId}};
    for (const auto& [key, id] : ids)
        if (id >= 0)
            writer.set(key, Value::u32(static_cast<uint32_t>(id)));
    writer.set(kAddBosKey, Value::boolean(vocab.addBos));
    writer.set(kAddEosKey, Value::boolean(vocab.addEos));
    if (llama)
        writer.set(kAddSpacePrefixKey, Value::boolean(vocab.addSpacePrefix));
}

GgufVocab readVocab(const GgufFile& file)
{
    const KeyReader keys(file);
    GgufVocab v;
    v.model = keys.find(kModelKey, ValueType::String, ValueType::String, true)->asString(keys.where(kModelKey));
    if (v.model != "llama" && v.model != "gpt2")
        throw FormatError(keys.where(kModelKey) + " is '" + v.model + "'; only 'llama' and 'gpt2' are supported");
    const bool llama = v.model == "llama";
    if (const Value* pre = keys.scalar(kPreKey, ValueType::String))
        v.pre = pre->asString(keys.where(kPreKey));
    v.tokens = keys.array(kTokensKey, ValueType::String, true)->asStringArray(keys.where(kTokensKey));
    if (v.tokens.empty())
        throw FormatError(keys.where(kTokensKey) + " is empty");

    auto checkLength = [&](const char* key, size_t size) {
        if (size != v.tokens.size())
            throw FormatError(keys.where(key) + " has " + std::to_string(size) + " entries for " +
                              std::to_string(v.tokens.size()) + " tokens");
    };
    if (const Value* scores = keys.array(kScoresKey, ValueType::F32, llama)) {
        for (const double s : scores->asFloatArray(keys.where(kScoresKey)))
            v.scores.push_back(static_cast<float>(s));
        checkLength(kScoresKey, v.scores.size());
    }
    for (const int64_t t : keys.array(kTypesKey, ValueType::I32, true)->asIntArray(keys.where(kTypesKey)))
        v.types.push_back(static_cast<int32_t>(t));
    checkLength(kTypesKey, v.types.size());
    if (const Value* merges = keys.array(kMergesKey, ValueType::String, !llama))
        v.merges = merges->asStringArray(keys.where(kMergesKey));

    v.bosId = keys.tokenId(kBosKey, v.tokens.size());
    v.eosId = keys.tokenId(kEosKey, v.tokens.size());
    v.unknownId = keys.tokenId(kUnknownKey, v.tokens.size());
    v.paddingId = keys.tokenId(kPaddingKey, v.tokens.size());
    v.addBos = keys.flag(kAddBosKey, v.addBos);
    v.addEos = keys.flag(kAddEosKey, v.addEos);
    v.addSpacePrefix = keys.flag(kAddSpacePrefixKey, v.addSpacePrefix);
    return v;
}

std::unique_ptr<Tokenizer> tokenizerFromGguf(const GgufFile& file)
{
    const GgufVocab v = readVocab(file);
    const std::string name = file.path().string();
    if (v.model != "llama")
        throw FormatError("GGUF file " + name + " has a '" + v.model + "' vocabulary (" + kModelKey +
                          "): only 'llama' (SentencePiece) vocabularies can be tokenized from a GGUF file; pass the "
                          "tokenizer.json with --tokenizer");
    // A SentencePiece BPE model normalizing as llama.cpp's SPM tokenizer does.
    SentencePieceModel model;
    model.modelType = SentencePieceModel::ModelType::Bpe;
    model.normalizerName = "identity";
    model.addDummyPrefix = v.addSpacePrefix;
    model.removeExtraWhitespaces = false;
    model.escapeWhitespaces = true;
    model.hasTrainerSpec = true;
    model.hasNormalizerSpec = true;
    // SentencePieceTokenizer finds BOS/EOS by piece name; an empty name finds none.
    model.bosPiece = v.bosId >= 0 ? v.tokens[static_cast<size_t>(v.bosId)] : std::string();
    model.eosPiece = v.eosId >= 0 ? v.tokens[static_cast<size_t>(v.eosId)] : std::string();
    model.pieces.reserve(v.tokens.size());
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        const int32_t type = v.types[i];
        if (type < typeValue(TokenType::Normal) || type > typeValue(TokenType::Byte))
            throw FormatError("GGUF file " + name + ": " + kTypesKey + "[" + std::to_string(i) + "] is " +
                              std::to_string(type) + ", not a token type 1..6");
        const auto pieceType = static_cast<SentencePieceModel::PieceType>(type);
        model.byteFallback = model.byteFallback || pieceType == SentencePieceModel::PieceType::Byte;
        model.pieces.push_back({v.tokens[i], v.scores[i], pieceType});
    }
    return std::make_unique<SentencePieceTokenizer>(std::move(model), name);
}

} // namespace qpruner::gguf
