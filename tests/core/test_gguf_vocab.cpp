// Tests of tokenizers as GGUF vocabulary metadata (export/gguf_vocab.h): the SentencePiece tok512 and Llama 2
// vocabularies from their .model files (checked piece by piece) and from llama2.c's .bin files (which must un-escape
// to the same tokens), padding to the embedding's rows, the GGUF round trip of every field and of the exact key
// types llama.cpp reads, the SentencePiece tokenizer rebuilt from a GGUF file (ids identical to the .model's on
// TinyStories, WikiText and whitespace / byte-fallback strings), loadTokenizer / findTokenizerBeside on .gguf files,
// the error paths (missing, wrong-typed and inconsistent keys), and the "gpt2" vocabulary of byte-level
// tokenizer.json fixtures (tokens by id, merges in rank order, token types, the tokenizer.ggml.pre name).
#include "test_data.h"

#include "export/gguf_vocab.h"
#include "io/atomic_output.h"
#include "io/file_bytes.h"
#include "qpruner/error.h"
#include "qpruner/tokenizer.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/sentencepiece_tokenizer.h"

#include <nlohmann/json.hpp>

#include <QTemporaryDir>
#include <QtTest/QtTest>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <optional>
#include <tuple>

using qpruner::Tokenizer;
using qpruner::gguf::GgufFile;
using qpruner::gguf::GgufVocab;
using qpruner::gguf::GgufWriter;
using qpruner::gguf::TokenType;
using qpruner::gguf::Value;
using qpruner::gguf::ValueType;
using Ids = std::vector<int32_t>;

namespace {

constexpr int32_t kNormal = static_cast<int32_t>(TokenType::Normal);
constexpr int32_t kUnknown = static_cast<int32_t>(TokenType::Unknown);
constexpr int32_t kControl = static_cast<int32_t>(TokenType::Control);
constexpr int32_t kUserDefined = static_cast<int32_t>(TokenType::UserDefined);
constexpr int32_t kUnused = static_cast<int32_t>(TokenType::Unused);
constexpr int32_t kByte = static_cast<int32_t>(TokenType::Byte);

const std::string kSpaceMark = "\xE2\x96\x81"; // U+2581

// The scores of a llama2.c tokenizer.bin, read here independently: int32 max_token_length, then per token a float
// score, an int32 length and the bytes.
std::vector<float> llama2cScores(const std::filesystem::path& path)
{
    const std::string bytes = qpruner::io::readFileBytes(path);
    std::vector<float> scores;
    for (size_t pos = 4; pos + 8 <= bytes.size();) {
        float score = 0;
        int32_t len = 0;
        std::memcpy(&score, bytes.data() + pos, 4);
        std::memcpy(&len, bytes.data() + pos + 4, 4);
        scores.push_back(score);
        pos += 8 + static_cast<size_t>(len);
    }
    return scores;
}

// Empty when the two vocabularies agree in every written field (warnings aside), else the first difference.
std::string vocabDiff(const GgufVocab& a, const GgufVocab& b)
{
    auto firstDiff = [](const auto& x, const auto& y, const char* what) -> std::string {
        if (x.size() != y.size())
            return std::string(what) + " sizes " + std::to_string(x.size()) + " vs " + std::to_string(y.size());
        for (size_t i = 0; i < x.size(); ++i) {
            bool same;
            if constexpr (std::is_same_v<std::decay_t<decltype(x[i])>, float>)
                same = std::bit_cast<uint32_t>(x[i]) == std::bit_cast<uint32_t>(y[i]);
            else
                same = x[i] == y[i];
            if (!same)
                return std::string(what) + " differ at " + std::to_string(i);
        }
        return {};
    };
    for (const std::string& d : {firstDiff(a.tokens, b.tokens, "tokens"), firstDiff(a.scores, b.scores, "scores"),
                                 firstDiff(a.types, b.types, "types"), firstDiff(a.merges, b.merges, "merges")})
        if (!d.empty())
            return d;
    if (a.model != b.model || a.pre != b.pre)
        return "model/pre: " + a.model + "/" + a.pre + " vs " + b.model + "/" + b.pre;
    if (std::tie(a.bosId, a.eosId, a.unknownId, a.paddingId) != std::tie(b.bosId, b.eosId, b.unknownId, b.paddingId))
        return "special ids differ";
    if (std::tie(a.addBos, a.addEos, a.addSpacePrefix) != std::tie(b.addBos, b.addEos, b.addSpacePrefix))
        return "add_bos / add_eos / add_space_prefix differ";
    return {};
}

#define COMPARE_VOCAB(got, want, context)                                                                \
    do {                                                                                                 \
        const std::string diff_ = vocabDiff((got), (want));                                              \
        QVERIFY2(diff_.empty(), (std::string(context) + ": " + diff_).c_str());                          \
    } while (0)

std::string idsMismatch(const Ids& got, const Ids& want)
{
    if (got == want)
        return {};
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i])
        ++i;
    auto at = [&](const Ids& ids) { return i < ids.size() ? std::to_string(ids[i]) : std::string("end"); };
    return "ids differ at index " + std::to_string(i) + " (sizes " + std::to_string(got.size()) + " vs " +
           std::to_string(want.size()) + "): got " + at(got) + ", want " + at(want);
}

#define COMPARE_IDS(got, want, context)                                                                  \
    do {                                                                                                 \
        const std::string diff_ = idsMismatch((got), (want));                                            \
        QVERIFY2(diff_.empty(), (std::string(context) + ": " + diff_).c_str());                          \
    } while (0)

bool hasWarning(const GgufVocab& v, const std::string& needle)
{
    return std::any_of(v.warnings.begin(), v.warnings.end(),
                       [&](const std::string& w) { return w.find(needle) != std::string::npos; });
}

void writeGguf(const std::filesystem::path& path, const qpruner::gguf::Metadata& metadata)
{
    GgufWriter writer;
    for (const auto& [key, value] : metadata)
        writer.set(key, value);
    writer.write(path);
}

// The metadata writeVocab gives `vocab`.
qpruner::gguf::Metadata vocabMetadata(const GgufVocab& vocab)
{
    GgufWriter writer;
    qpruner::gguf::writeVocab(writer, vocab);
    return writer.metadata();
}

// `metadata` with `key` dropped (no value) or replaced.
qpruner::gguf::Metadata edited(qpruner::gguf::Metadata metadata, const std::string& key,
                               std::optional<Value> value = std::nullopt)
{
    const auto it = std::find_if(metadata.begin(), metadata.end(), [&](const auto& kv) { return kv.first == key; });
    if (it == metadata.end())
        metadata.emplace_back(key, *value);
    else if (value)
        it->second = *value;
    else
        metadata.erase(it);
    return metadata;
}

// The tok512 .model as llama.cpp tokenizes it: the same pieces without the normalizer's whitespace collapsing.
std::unique_ptr<Tokenizer> keepingWhitespace(const std::filesystem::path& modelPath)
{
    auto model = qpruner::SentencePieceModel::parse(qpruner::io::readFileBytes(modelPath), modelPath.string());
    model.removeExtraWhitespaces = false;
    return std::make_unique<qpruner::SentencePieceTokenizer>(std::move(model), modelPath.string());
}

// Runs of spaces as one, no space at the start: what tok512.model's normalizer makes of the text (less the prefix).
std::string collapseSpaces(std::string_view text)
{
    std::string out;
    for (const char c : text)
        if (c != ' ' || (!out.empty() && out.back() != ' '))
            out += c;
    return out;
}

// Leading and repeated spaces, tabs, newlines, a literal U+2581, accents, CJK and an emoji (byte fallback).
const std::string kAwkwardText =
    "  Two leading spaces,  two inside,\tand a tab.\n\nNew paragraph \n\xE2\x96\x81 mark, caf\xC3\xA9, "
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E and \xF0\x9F\x98\x80 end   ";

} // namespace

class TestGgufVocab : public QObject {
    Q_OBJECT

private:
    std::filesystem::path fixture(const char* name) const
    {
        return qpruner::testing::fixtureDir() / "tokenizer" / name;
    }

    // `tok` against `reference` on `text`: the same ids (with and without BOS/EOS) and the same decoded text.
    void checkSameTokenizer(const Tokenizer& tok, const Tokenizer& reference, const std::string& text,
                            const std::string& what)
    {
        const Ids ids = tok.encode(text);
        COMPARE_IDS(ids, reference.encode(text), what);
        COMPARE_IDS(tok.encode(text, true, true), reference.encode(text, true, true), what + " with BOS/EOS");
        QVERIFY2(tok.decode(ids) == reference.decode(ids), (what + ": decode differs").c_str());
    }

private Q_SLOTS:
    // ---------------------------------------------------------------- vocabularies from tokenizer files
    void sentencePieceVocab()
    {
        QPRUNER_SHARED_FILE(tok512Path, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(llamaPath, "models/llama2-tokenizer/tokenizer.model");
        for (const auto& [path, size] : {std::pair{tok512Path, 512}, std::pair{llamaPath, 32000}}) {
            const GgufVocab v = qpruner::gguf::vocabFromTokenizerFile(path, size);
            const auto model = qpruner::SentencePieceModel::parse(qpruner::io::readFileBytes(path), path.string());
            QCOMPARE(model.pieces.size(), size_t(size));
            QCOMPARE(v.model, std::string("llama"));
            QVERIFY(v.pre.empty() && v.merges.empty());
            QCOMPARE(v.tokens.size(), size_t(size));
            QCOMPARE(v.scores.size(), size_t(size));
            QCOMPARE(v.types.size(), size_t(size));
            for (size_t i = 0; i < model.pieces.size(); ++i) {
                const auto& p = model.pieces[i];
                const bool sameScore = std::bit_cast<uint32_t>(v.scores[i]) == std::bit_cast<uint32_t>(p.score);
                QVERIFY2(v.tokens[i] == p.text && sameScore && v.types[i] == static_cast<int32_t>(p.type),
                         (path.filename().string() + ": piece " + std::to_string(i) + " differs").c_str());
            }
            QCOMPARE(v.bosId, 1);
            QCOMPARE(v.eosId, 2);
            QCOMPARE(v.unknownId, 0);
            QCOMPARE(v.paddingId, -1);
            QVERIFY(v.addBos && !v.addEos && v.addSpacePrefix);
            QCOMPARE(v.types[0], kUnknown);
            QCOMPARE(v.types[1], kControl);
            QCOMPARE(v.types[2], kControl);
            QCOMPARE(v.tokens[3], std::string("<0x00>"));
            QCOMPARE(std::count(v.types.begin(), v.types.end(), kByte), std::ptrdiff_t(256));
            QCOMPARE(std::count(v.types.begin(), v.types.end(), kNormal), std::ptrdiff_t(size - 259));
        }
        const GgufVocab tok512 = qpruner::gguf::vocabFromTokenizerFile(tok512Path, 512);
        QCOMPARE(tok512.tokens[403], kSpaceMark + "Once");
        // tok512.model collapses whitespace, which llama.cpp does not: said in a warning. Llama 2 keeps it.
        QCOMPARE(tok512.warnings.size(), size_t(1));
        QVERIFY(hasWarning(tok512, "removes extra whitespace"));
        const GgufVocab llama = qpruner::gguf::vocabFromTokenizerFile(llamaPath, 32000);
        QCOMPARE(llama.tokens[9038], kSpaceMark + "Once");
        QVERIFY(llama.warnings.empty());
        // A directory holding tokenizer.model gives the same vocabulary.
        COMPARE_VOCAB(qpruner::gguf::vocabFromTokenizerFile(llamaPath.parent_path(), 32000), llama, "directory");
    }

    void llama2cVocabMatchesModel()
    {
        QPRUNER_SHARED_FILE(tok512Model, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(tok512Bin, "models/stories260K/tok512.bin");
        QPRUNER_SHARED_FILE(llamaModel, "models/llama2-tokenizer/tokenizer.model");
        QPRUNER_SHARED_FILE(llamaBin, "models/llama2-tokenizer/tokenizer.bin");
        for (const auto& [modelPath, binPath, size] :
             {std::tuple{tok512Model, tok512Bin, 512}, std::tuple{llamaModel, llamaBin, 32000}}) {
            const GgufVocab fromModel = qpruner::gguf::vocabFromTokenizerFile(modelPath, size);
            const GgufVocab fromBin = qpruner::gguf::vocabFromTokenizerFile(binPath, size);
            const std::string name = binPath.filename().string();
            // The .bin wrote "\n<s>\n" and ' ' for U+2581: un-escaped, every token and type is the .model's.
            QVERIFY2(fromBin.tokens == fromModel.tokens, (name + ": tokens differ from the .model's").c_str());
            QVERIFY2(fromBin.types == fromModel.types, (name + ": types differ from the .model's").c_str());
            const std::vector<float> scores = llama2cScores(binPath);
            QCOMPARE(scores.size(), size_t(size));
            QVERIFY2(std::memcmp(fromBin.scores.data(), scores.data(), scores.size() * 4) == 0,
                     (name + ": scores differ from the file's").c_str());
            QVERIFY2(fromBin.scores == fromModel.scores, (name + ": scores differ from the .model's").c_str());
            QCOMPARE(fromBin.tokens[1], std::string("<s>"));
            QCOMPARE(fromBin.tokens[2], std::string("</s>"));
            QVERIFY(std::tie(fromBin.bosId, fromBin.eosId, fromBin.unknownId, fromBin.paddingId) ==
                    std::tie(fromModel.bosId, fromModel.eosId, fromModel.unknownId, fromModel.paddingId));
            QVERIFY(fromBin.addSpacePrefix && fromBin.addBos && !fromBin.addEos);
            QVERIFY(fromBin.warnings.empty());
        }
    }

    void padding()
    {
        QPRUNER_SHARED_FILE(tok512Path, "models/stories260K/tok512.model");
        const GgufVocab v = qpruner::gguf::vocabFromTokenizerFile(tok512Path, 520);
        QCOMPARE(v.tokens.size(), size_t(520));
        QCOMPARE(v.scores.size(), size_t(520));
        QCOMPARE(v.types.size(), size_t(520));
        for (int id = 512; id < 520; ++id) {
            QCOMPARE(v.tokens[size_t(id)], "[PAD" + std::to_string(id) + "]");
            QCOMPARE(v.types[size_t(id)], kUnused);
            QCOMPARE(v.scores[size_t(id)], -10000.0f);
        }
        QCOMPARE(v.tokens[511], qpruner::gguf::vocabFromTokenizerFile(tok512Path, 512).tokens[511]);
        QCOMPARE(v.warnings.size(), size_t(2)); // whitespace and padding
        QVERIFY(hasWarning(v, "padded with 8 unused tokens [PAD512]..[PAD519]"));
        VERIFY_THROWS(qpruner::ConfigError, qpruner::gguf::vocabFromTokenizerFile(tok512Path, 500), "512", "500");

        // A "gpt2" vocabulary pads without scores.
        const GgufVocab gpt2 = qpruner::gguf::vocabFromTokenizerFile(fixture("bpe_gpt2_style.json"), 560);
        QCOMPARE(gpt2.tokens.size(), size_t(560));
        QVERIFY(gpt2.scores.empty());
        QCOMPARE(gpt2.tokens[557], std::string("[PAD557]"));
        QCOMPARE(gpt2.types[559], kUnused);
        QVERIFY(hasWarning(gpt2, "[PAD557]..[PAD559]"));
    }

    // ---------------------------------------------------------------- GGUF round trip
    void roundTrip()
    {
        QPRUNER_SHARED_FILE(tok512Path, "models/stories260K/tok512.model");
        QTemporaryDir dir;
        const std::filesystem::path root = dir.path().toStdString();
        GgufVocab llama = qpruner::gguf::vocabFromTokenizerFile(tok512Path, 520);
        llama.paddingId = 515;
        llama.addEos = true;
        llama.addSpacePrefix = false;
        GgufVocab gpt2 = qpruner::gguf::vocabFromTokenizerFile(fixture("bpe_llama3_style.json"), 560);
        for (const auto& [name, vocab] : {std::pair{"llama.gguf", &llama}, std::pair{"gpt2.gguf", &gpt2}}) {
            writeGguf(root / name, vocabMetadata(*vocab));
            const GgufFile file = GgufFile::open(root / name);
            COMPARE_VOCAB(qpruner::gguf::readVocab(file), *vocab, name);
            QVERIFY(qpruner::gguf::readVocab(file).warnings.empty());
        }
        // The key types llama.cpp reads.
        const GgufFile file = GgufFile::open(root / "llama.gguf");
        QCOMPARE(file.get("tokenizer.ggml.model").asString(), std::string("llama"));
        QVERIFY(file.find("tokenizer.ggml.pre") == nullptr);
        QVERIFY(file.find("tokenizer.ggml.merges") == nullptr);
        QCOMPARE(file.get("tokenizer.ggml.tokens").elementType(), ValueType::String);
        QCOMPARE(file.get("tokenizer.ggml.tokens").size(), size_t(520));
        QCOMPARE(file.get("tokenizer.ggml.scores").elementType(), ValueType::F32);
        QCOMPARE(file.get("tokenizer.ggml.token_type").elementType(), ValueType::I32);
        QVERIFY(file.get("tokenizer.ggml.bos_token_id") == Value::u32(1));
        QVERIFY(file.get("tokenizer.ggml.eos_token_id") == Value::u32(2));
        QVERIFY(file.get("tokenizer.ggml.unknown_token_id") == Value::u32(0));
        QVERIFY(file.get("tokenizer.ggml.padding_token_id") == Value::u32(515));
        QVERIFY(file.get("tokenizer.ggml.add_bos_token") == Value::boolean(true));
        QVERIFY(file.get("tokenizer.ggml.add_eos_token") == Value::boolean(true));
        QVERIFY(file.get("tokenizer.ggml.add_space_prefix") == Value::boolean(false));
        const GgufFile bpe = GgufFile::open(root / "gpt2.gguf");
        QVERIFY(bpe.get("tokenizer.ggml.pre") == Value::string("llama-bpe"));
        QCOMPARE(bpe.get("tokenizer.ggml.merges").size(), size_t(300));
        QVERIFY(bpe.find("tokenizer.ggml.scores") == nullptr);
        QVERIFY(bpe.find("tokenizer.ggml.add_space_prefix") == nullptr);
        QVERIFY(bpe.find("tokenizer.ggml.unknown_token_id") == nullptr);

        // Inconsistent arrays are refused before anything is written.
        GgufVocab broken = llama;
        broken.types.pop_back();
        GgufWriter writer;
        VERIFY_THROWS(qpruner::ConfigError, qpruner::gguf::writeVocab(writer, broken), "520 tokens", "519 token types");
    }

    // ---------------------------------------------------------------- the tokenizer of a GGUF file
    void tokenizerFromGgufTok512()
    {
        QPRUNER_SHARED_FILE(tok512Path, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(storiesPath, "text/tinystories/tinystories_valid_subset.txt");
        QTemporaryDir dir;
        const std::filesystem::path path = std::filesystem::path(dir.path().toStdString()) / "stories.gguf";
        writeGguf(path, vocabMetadata(qpruner::gguf::vocabFromTokenizerFile(tok512Path, 520)));
        const auto tok = qpruner::gguf::tokenizerFromGguf(GgufFile::open(path));
        QCOMPARE(tok->kind(), std::string("sentencepiece"));
        QCOMPARE(tok->vocabSize(), 520);
        QCOMPARE(tok->bosId(), 1);
        QCOMPARE(tok->eosId(), 2);

        const auto original = qpruner::SentencePieceTokenizer::fromFile(tok512Path);
        const auto llamaCpp = keepingWhitespace(tok512Path);
        const std::string stories = qpruner::io::readFileBytes(storiesPath);
        QCOMPARE(stories.size(), size_t(794375));
        // Where the .model's whitespace collapsing has nothing to do, exactly its ids; elsewhere the ids of the same
        // model without it, as llama.cpp tokenizes (TinyStories has a few double spaces, so the two differ there).
        checkSameTokenizer(*tok, *original, collapseSpaces(stories), "TinyStories, spaces collapsed");
        checkSameTokenizer(*tok, *llamaCpp, stories, "TinyStories");
        QVERIFY(tok->encode(stories) != original->encode(stories));
        QCOMPARE(tok->decode(tok->encode(stories)), stories);
        checkSameTokenizer(*tok, *llamaCpp, kAwkwardText, "awkward text");
        const Ids emoji = tok->encode("\xF0\x9F\x98\x80");
        COMPARE_IDS(emoji, (Ids{410, 0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3}), "byte fallback");
        COMPARE_IDS(tok->encode("Once upon a time", true, false), (Ids{1, 403, 407, 261, 378}), "Once upon a time");
    }

    void tokenizerFromGgufLlama2()
    {
        QPRUNER_SHARED_FILE(llamaPath, "models/llama2-tokenizer/tokenizer.model");
        QPRUNER_SHARED_FILE(wikiPath, "text/wikitext-2-raw/wiki.test.raw");
        QTemporaryDir dir;
        const std::filesystem::path path = std::filesystem::path(dir.path().toStdString()) / "llama2.gguf";
        writeGguf(path, vocabMetadata(qpruner::gguf::vocabFromTokenizerFile(llamaPath, 32000)));
        const auto tok = qpruner::gguf::tokenizerFromGguf(GgufFile::open(path));
        const auto original = qpruner::SentencePieceTokenizer::fromFile(llamaPath);
        QCOMPARE(tok->vocabSize(), 32000);
        const std::string wiki = qpruner::io::readFileBytes(wikiPath).substr(0, 8192);
        checkSameTokenizer(*tok, *original, wiki, "WikiText-2, 8 KB");
        QVERIFY(tok->encode(wiki).size() > 1500);
        checkSameTokenizer(*tok, *original, kAwkwardText, "awkward text");
        COMPARE_IDS(tok->encode("Once upon a time", true, true), (Ids{1, 9038, 2501, 263, 931, 2}), "Once upon a time");
    }

    void loadTokenizerHook()
    {
        QPRUNER_SHARED_FILE(tok512Path, "models/stories260K/tok512.model");
        QTemporaryDir dir;
        const std::filesystem::path root = dir.path().toStdString();
        const auto vocab = qpruner::gguf::vocabFromTokenizerFile(tok512Path, 512);
        writeGguf(root / "model.gguf", vocabMetadata(vocab));
        qpruner::io::writeFileAtomic(root / "tokenizer.model", qpruner::io::readFileBytes(tok512Path)); // not chosen: the GGUF carries its own
        QVERIFY(qpruner::findTokenizerBeside(root / "model.gguf") == root / "model.gguf");
        const auto original = qpruner::SentencePieceTokenizer::fromFile(tok512Path);
        const auto loaded = qpruner::loadTokenizer(root / "model.gguf");
        QCOMPARE(loaded->vocabSize(), 512);
        COMPARE_IDS(loaded->encode("Once upon a time, Roxy"), original->encode("Once upon a time, Roxy"), "model.gguf");
        // Without the extension, the magic tells.
        qpruner::io::writeFileAtomic(root / "model.weights", qpruner::io::readFileBytes(root / "model.gguf"));
        COMPARE_IDS(qpruner::loadTokenizer(root / "model.weights")->encode("Once upon a time"),
                    (Ids{403, 407, 261, 378}), "sniffed GGUF");

        // A "gpt2" vocabulary cannot be tokenized from the GGUF file alone.
        writeGguf(root / "bpe.gguf",
                  vocabMetadata(qpruner::gguf::vocabFromTokenizerFile(fixture("bpe_gpt2_style.json"), 557)));
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(root / "bpe.gguf"), "bpe.gguf", "'gpt2'",
                      "--tokenizer");
        // vocabFromTokenizerFile reads a GGUF file's vocabulary back.
        COMPARE_VOCAB(qpruner::gguf::vocabFromTokenizerFile(root / "model.gguf", 512), vocab, "GGUF as tokenizer file");
    }

    void errors()
    {
        QPRUNER_SHARED_FILE(tok512Path, "models/stories260K/tok512.model");
        QTemporaryDir dir;
        const std::filesystem::path path = std::filesystem::path(dir.path().toStdString()) / "bad.gguf";
        const auto good = vocabMetadata(qpruner::gguf::vocabFromTokenizerFile(tok512Path, 512));
        auto readBack = [&](const qpruner::gguf::Metadata& metadata) {
            writeGguf(path, metadata);
            return qpruner::gguf::readVocab(GgufFile::open(path));
        };
        auto tokenizer = [&](const qpruner::gguf::Metadata& metadata) {
            writeGguf(path, metadata);
            return qpruner::gguf::tokenizerFromGguf(GgufFile::open(path));
        };
        QCOMPARE(readBack(good).tokens.size(), size_t(512));
        for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                                "tokenizer.ggml.token_type"})
            VERIFY_THROWS(qpruner::FormatError, readBack(edited(good, key)), "bad.gguf", key, "missing");
        const std::pair<const char*, Value> wrongTypes[] = {
            {"tokenizer.ggml.model", Value::u32(1)},
            {"tokenizer.ggml.tokens", Value::f32Array({1.0f})},
            {"tokenizer.ggml.scores", Value::i32Array(std::vector<int32_t>(512, 0))},
            {"tokenizer.ggml.token_type", Value::u32Array(std::vector<uint32_t>(512, 1))},
            {"tokenizer.ggml.bos_token_id", Value::string("1")},
            {"tokenizer.ggml.eos_token_id", Value::i32(2)},
            {"tokenizer.ggml.add_bos_token", Value::u8(1)},
            {"tokenizer.ggml.add_space_prefix", Value::string("true")},
            {"tokenizer.ggml.pre", Value::u32(0)},
        };
        for (const auto& [key, value] : wrongTypes)
            VERIFY_THROWS(qpruner::FormatError, readBack(edited(good, key, value)), "bad.gguf", key, "expected");
        const Value shortTypes = Value::i32Array(std::vector<int32_t>(511, 1));
        VERIFY_THROWS(qpruner::FormatError, readBack(edited(good, "tokenizer.ggml.token_type", shortTypes)),
                      "tokenizer.ggml.token_type", "511 entries for 512 tokens");
        VERIFY_THROWS(qpruner::FormatError, readBack(edited(good, "tokenizer.ggml.bos_token_id", Value::u32(512))),
                      "tokenizer.ggml.bos_token_id", "512");
        VERIFY_THROWS(qpruner::FormatError, readBack(edited(good, "tokenizer.ggml.model", Value::string("bert"))),
                      "tokenizer.ggml.model", "'bert'");
        VERIFY_THROWS(qpruner::FormatError, readBack(edited(good, "tokenizer.ggml.model", Value::string("gpt2"))),
                      "tokenizer.ggml.merges", "missing");

        // Types that are no SentencePiece piece type, and a vocabulary without its unknown token.
        std::vector<int32_t> types = readBack(good).types;
        auto withTypes = [&](const std::vector<int32_t>& t) {
            return edited(good, "tokenizer.ggml.token_type", Value::i32Array(t));
        };
        types[7] = 0;
        VERIFY_THROWS(qpruner::FormatError, tokenizer(withTypes(types)),
                      "bad.gguf", "tokenizer.ggml.token_type[7] is 0");
        types[7] = kNormal;
        types[0] = kNormal;
        VERIFY_THROWS(qpruner::FormatError, tokenizer(withTypes(types)), "bad.gguf", "unknown piece");
        // Without BOS/EOS keys the tokenizer has none; without add_space_prefix it adds the prefix.
        const auto bare = tokenizer(edited(edited(edited(good, "tokenizer.ggml.bos_token_id"),
                                                  "tokenizer.ggml.eos_token_id"),
                                           "tokenizer.ggml.add_space_prefix"));
        QCOMPARE(bare->bosId(), -1);
        QCOMPARE(bare->eosId(), -1);
        COMPARE_IDS(bare->encode("Once"), (Ids{403}), "default space prefix");
        const auto noPrefix = tokenizer(edited(good, "tokenizer.ggml.add_space_prefix", Value::boolean(false)));
        QVERIFY(noPrefix->encode("Once") != bare->encode("Once"));
        QCOMPARE(noPrefix->decode(noPrefix->encode("Once upon")), std::string("Once upon"));

        VERIFY_THROWS(qpruner::FileError, qpruner::gguf::vocabFromTokenizerFile(path.parent_path() / "none.model", 512),
                      "none.model");
    }

    // ---------------------------------------------------------------- tokenizer.json -> "gpt2"
    void hfJsonVocab()
    {
        for (const auto& [name, pre, bos, eos, addBos] :
             {std::tuple{"bpe_gpt2_style.json", "gpt-2", 556, 556, false},
              std::tuple{"bpe_llama3_style.json", "llama-bpe", 556, 557, true}}) {
            const nlohmann::json json = nlohmann::json::parse(qpruner::io::readFileBytes(fixture(name)));
            const auto& vocab = json["model"]["vocab"];
            const auto& added = json["added_tokens"];
            const size_t count = vocab.size() + added.size();
            const GgufVocab v = qpruner::gguf::vocabFromTokenizerFile(fixture(name), int32_t(count));
            QCOMPARE(v.model, std::string("gpt2"));
            QCOMPARE(v.pre, std::string(pre));
            QVERIFY2(v.warnings.empty(), name);
            QCOMPARE(v.tokens.size(), count);
            QCOMPARE(v.types.size(), count);
            QVERIFY(v.scores.empty());
            for (const auto& [piece, id] : vocab.items()) {
                QCOMPARE(v.tokens[id.get<size_t>()], piece);
                QCOMPARE(v.types[id.get<size_t>()], kNormal);
            }
            for (const auto& token : added) {
                QCOMPARE(v.tokens[token["id"].get<size_t>()], token["content"].get<std::string>());
                QCOMPARE(v.types[token["id"].get<size_t>()], kControl);
            }
            const auto& merges = json["model"]["merges"];
            QCOMPARE(v.merges.size(), merges.size());
            for (size_t i = 0; i < merges.size(); ++i) {
                const std::string want = merges[i].is_string()
                                             ? merges[i].get<std::string>()
                                             : merges[i][0].get<std::string>() + " " + merges[i][1].get<std::string>();
                QCOMPARE(v.merges[i], want);
            }
            QCOMPARE(v.merges[0], std::string("\xC4\xA0 t")); // "Ġ t"
            QCOMPARE(v.merges[4], std::string("\xC4\xA0t he"));
            QCOMPARE(v.bosId, bos);
            QCOMPARE(v.eosId, eos);
            QCOMPARE(v.unknownId, -1);
            QCOMPARE(v.addBos, addBos);
            QVERIFY(!v.addEos);
        }
    }

    void hfJsonVariants()
    {
        QTemporaryDir dir;
        const std::filesystem::path root = dir.path().toStdString();
        const std::string llama3 = qpruner::io::readFileBytes(fixture("bpe_llama3_style.json"));
        const std::string gpt2 = qpruner::io::readFileBytes(fixture("bpe_gpt2_style.json"));
        auto vocabOf = [&](const std::string& text, int32_t rows) {
            qpruner::io::writeFileAtomic(root / "tokenizer.json", text);
            return qpruner::gguf::vocabFromTokenizerFile(root, rows);
        };
        auto replaced = [](std::string text, const std::string& from, const std::string& to) {
            const size_t at = text.find(from);
            if (at == std::string::npos)
                throw std::runtime_error("fixture lacks '" + from + "'");
            return text.replace(at, from.size(), to);
        };
        // Qwen2's regex: numbers one digit at a time.
        const GgufVocab qwen2 = vocabOf(replaced(llama3, R"(\\p{N}{1,3})", R"(\\p{N})"), 560);
        QCOMPARE(qwen2.pre, std::string("qwen2"));
        QVERIFY(!qwen2.addBos);
        // A prefix space or no regex at all: llama.cpp has no name for it.
        const std::string prefixSpace = replaced(gpt2, R"("add_prefix_space":false)", R"("add_prefix_space":true)");
        const std::string noRegex =
            replaced(gpt2, R"("trim_offsets":true},)", R"("trim_offsets":true,"use_regex":false},)");
        for (const auto& [what, text] : {std::pair{"add_prefix_space", prefixSpace}, std::pair{"no regex", noRegex}}) {
            const GgufVocab v = vocabOf(text, 557);
            QVERIFY2(v.pre == "default", what);
            QVERIFY2(hasWarning(v, "tokenizer.ggml.pre is 'default'"), what);
        }
        // An added token that is not special is USER_DEFINED; ids no entry uses are [PAD<id>] UNUSED.
        const std::string flags = R"("single_word":false,"lstrip":false,"rstrip":false,"normalized":false,)";
        const std::string moved = replaced(llama3, R"("id":558,)", R"("id":561,)");
        const GgufVocab userDefined = vocabOf(replaced(moved, "_0|>\"," + flags + R"("special":true)",
                                                       "_0|>\"," + flags + R"("special":false)"),
                                              562);
        QCOMPARE(userDefined.tokens.size(), size_t(562));
        QCOMPARE(userDefined.tokens[561], std::string("<|reserved_special_token_0|>"));
        QCOMPARE(userDefined.types[561], kUserDefined);
        QCOMPARE(userDefined.tokens[558], std::string("[PAD558]"));
        QCOMPARE(userDefined.types[558], kUnused);
        QCOMPARE(userDefined.types[559], kControl);
        QVERIFY(userDefined.warnings.empty());
    }

    // ---------------------------------------------------------------- real tokenizer.json files
    // SentencePiece-style BPE (Mistral-7B, Gemma 3) -> "llama": the GGUF vocabulary, read back by
    // tokenizerFromGguf (llama.cpp's SPM rules), encodes as the tokenizer.json does.
    void hfSentencePieceStyleVocab_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("spacePrefix");
        QTest::newRow("mistral-7b-v0.1") << QString("mistral-7b-v0.1") << true;
        QTest::newRow("gemma-3") << QString("gemma-3") << false;
    }

    void hfSentencePieceStyleVocab()
    {
        QFETCH(QString, name);
        QFETCH(bool, spacePrefix);
        QPRUNER_SHARED_FILE(path, "tokenizers/" + name.toStdString() + "/tokenizer.json");
        QPRUNER_SHARED_FILE(wikiPath, "text/wikitext-2-raw/wiki.test.raw");
        const auto original = qpruner::loadTokenizer(path);
        const GgufVocab v = qpruner::gguf::vocabFromTokenizerFile(path, original->vocabSize());
        QCOMPARE(v.model, std::string("llama"));
        QVERIFY(v.pre.empty());
        QCOMPARE(v.tokens.size(), size_t(original->vocabSize()));
        QCOMPARE(v.addSpacePrefix, spacePrefix);
        QVERIFY2(v.warnings.empty(), v.warnings.empty() ? "" : v.warnings.front().c_str());
        const auto idOf = [&](const std::string& token) {
            return static_cast<size_t>(std::find(v.tokens.begin(), v.tokens.end(), token) - v.tokens.begin());
        };
        QCOMPARE(v.types[idOf("<0x41>")], kByte);
        QCOMPARE(v.types[idOf("<unk>")], kUnknown);
        QCOMPARE(v.unknownId, int32_t(idOf("<unk>")));
        QCOMPARE(v.types[static_cast<size_t>(original->bosId())], kControl);
        QCOMPARE(v.bosId, original->bosId());
        QCOMPARE(v.eosId, original->eosId());
        // Merged pieces score minus their merge rank: "\u2581t" merges before "\u2581the".
        QVERIFY(v.scores[idOf("\xE2\x96\x81t")] > v.scores[idOf("\xE2\x96\x81the")]);

        QTemporaryDir dir;
        const std::filesystem::path gguf = std::filesystem::path(dir.path().toStdString()) / "vocab.gguf";
        writeGguf(gguf, vocabMetadata(v));
        const GgufVocab back = qpruner::gguf::readVocab(GgufFile::open(gguf));
        QCOMPARE(back.tokens, v.tokens);
        QCOMPARE(back.scores, v.scores);
        QCOMPARE(back.types, v.types);
        QCOMPARE(back.addSpacePrefix, spacePrefix);
        const auto tok = qpruner::gguf::tokenizerFromGguf(GgufFile::open(gguf));
        const std::string wiki = qpruner::io::readFileBytes(wikiPath).substr(0, 16384);
        for (const std::string& text :
             {wiki, std::string("Hello world"), std::string("The quick brown fox jumps over the lazy dog."),
              std::string("caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80 1234567"), kAwkwardText}) {
            COMPARE_IDS(tok->encode(text), original->encode(text), name.toStdString() + ": " + text.substr(0, 40));
            COMPARE_IDS(tok->encode(text, true, true), original->encode(text, true, true), name.toStdString() + " with BOS/EOS");
        }
    }

    // Gemma 3's tokenizer.json has 262,145 tokens for the text models' 262,144-row embedding: the added token past
    // it (<image_soft_token>) is left out with a warning; a normal token past the rows is still refused.
    void addedTokensPastTheEmbedding()
    {
        QPRUNER_SHARED_FILE(path, "tokenizers/gemma-3/tokenizer.json");
        const auto original = qpruner::loadTokenizer(path);
        QCOMPARE(original->vocabSize(), 262145);
        const GgufVocab v = qpruner::gguf::vocabFromTokenizerFile(path, 262144);
        QCOMPARE(v.tokens.size(), size_t(262144));
        QCOMPARE(v.scores.size(), size_t(262144));
        QCOMPARE(v.types.size(), size_t(262144));
        QCOMPARE(v.warnings.size(), size_t(1));
        QVERIFY2(v.warnings.front().find("<image_soft_token>") != std::string::npos, v.warnings.front().c_str());
        VERIFY_THROWS(qpruner::ConfigError, qpruner::gguf::vocabFromTokenizerFile(path, 200000),
                      "262145 tokens, more than the model's embedding has rows (200000)");
    }

    // Byte-level BPE files -> "gpt2" with llama.cpp's pre-tokenizer names.
    void hfByteLevelPreNames()
    {
        for (const auto& [name, pre] : {std::pair{"qwen3", "qwen2"}, std::pair{"llama-3.1", "llama-bpe"},
                                        std::pair{"deepseek-v3", "deepseek-v3"}}) {
            QPRUNER_SHARED_FILE(path, std::string("tokenizers/") + name + "/tokenizer.json");
            const auto tok = qpruner::loadTokenizer(path);
            const GgufVocab v = qpruner::gguf::vocabFromTokenizerFile(path, tok->vocabSize());
            QCOMPARE(v.model, std::string("gpt2"));
            QCOMPARE(v.pre, std::string(pre));
            QVERIFY2(v.warnings.empty(), name);
            QCOMPARE(v.tokens.size(), size_t(tok->vocabSize()));
            QCOMPARE(v.merges.empty(), false);
        }
    }
};

QTEST_APPLESS_MAIN(TestGgufVocab)
#include "test_gguf_vocab.moc"
