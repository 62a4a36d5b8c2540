// Tests of the torch-free tokenizers: SentencePiece .model (ids checked against libsentencepiece output
// committed in tests/data/tokenizer/spm_refs.json), llama2.c tokenizer.bin (checked against the .model of
// the same vocabulary), Hugging Face byte-level BPE tokenizer.json (small committed fixtures, ids from an
// independent Python BPE in bpe_refs.json plus hand-checked cases), each tokenizer.json normalizer /
// pre-tokenizer behavior / decoder on its own, a SentencePiece-style BPE tokenizer.json (bpe_spm_style.json),
// loadTokenizer and the error paths. The real files are checked against Hugging Face in test_tokenizer_reference.
#include "test_data.h"

#include "qpruner/error.h"
#include "qpruner/tokenizer.h"
#include "tokenizer/hf_decoder.h"
#include "tokenizer/hf_normalizer.h"
#include "tokenizer/hf_pre_tokenizer.h"
#include "tokenizer/hf_regex.h"
#include "tokenizer/hf_split_pattern.h"
#include "tokenizer/sentencepiece_tokenizer.h"

#include <nlohmann/json.hpp>

#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>

using qpruner::Tokenizer;
using Ids = std::vector<std::int32_t>;

namespace {

std::string readBytes(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void writeBytes(const std::filesystem::path& path, std::string_view bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

nlohmann::json readJson(const std::filesystem::path& path) { return nlohmann::json::parse(readBytes(path)); }

std::string fromHex(const std::string& hex)
{
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

std::string describe(const Ids& ids, std::size_t from, std::size_t count)
{
    std::ostringstream s;
    s << "[";
    for (std::size_t i = from; i < std::min(ids.size(), from + count); ++i)
        s << (i > from ? ", " : "") << ids[i];
    s << (from + count < ids.size() ? ", ...]" : "]");
    return s.str();
}

// Empty when equal, else where and how the id lists differ.
std::string idsMismatch(const Ids& got, const Ids& want)
{
    if (got == want)
        return {};
    std::size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i])
        ++i;
    const std::size_t from = i >= 3 ? i - 3 : 0;
    return "ids differ at index " + std::to_string(i) + " (sizes " + std::to_string(got.size()) + " vs " +
           std::to_string(want.size()) + "): got " + describe(got, from, 8) + ", want " + describe(want, from, 8);
}

#define COMPARE_IDS(got, want, context)                                                                  \
    do {                                                                                                 \
        const std::string diff_ = idsMismatch((got), (want));                                            \
        QVERIFY2(diff_.empty(), (std::string(context) + ": " + diff_).c_str());                          \
    } while (0)

// What SentencePiece's normalizer makes of valid UTF-8 when it removes extra whitespace, written with plain
// spaces and without the dummy prefix: leading and trailing spaces dropped, runs of spaces collapsed.
std::string collapseSpaces(std::string_view text)
{
    std::string out;
    bool pendingSpace = false;
    for (const char c : text) {
        if (c == ' ') {
            pendingSpace = !out.empty();
            continue;
        }
        if (pendingSpace)
            out += ' ';
        pendingSpace = false;
        out += c;
    }
    return out;
}

std::vector<std::string> piecesOf(const Tokenizer& tok, const Ids& ids)
{
    std::vector<std::string> out;
    for (const auto id : ids)
        out.push_back(tok.piece(id));
    return out;
}

// --- a tiny protobuf writer for synthetic SentencePiece models ---
std::string varint(std::uint64_t v)
{
    std::string out;
    do {
        out += static_cast<char>((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return out;
}
std::string fieldVarint(int number, std::uint64_t v) { return varint(static_cast<std::uint64_t>(number) << 3) + varint(v); }
std::string fieldBytes(int number, std::string_view bytes)
{
    return varint((static_cast<std::uint64_t>(number) << 3) | 2) + varint(bytes.size()) + std::string(bytes);
}
std::string fieldFloat(int number, float f)
{
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    std::string out = varint((static_cast<std::uint64_t>(number) << 3) | 5);
    for (int i = 0; i < 4; ++i)
        out += static_cast<char>((bits >> (8 * i)) & 0xFF);
    return out;
}
struct SyntheticPiece {
    std::string text;
    float score;
    int type;
};
std::string syntheticModel(const std::vector<SyntheticPiece>& pieces, int modelType, const std::string& normalizerName,
                           const std::string& charsmap)
{
    std::string out;
    for (const auto& p : pieces)
        out += fieldBytes(1, fieldBytes(1, p.text) + fieldFloat(2, p.score) + fieldVarint(3, p.type));
    // An unknown field of every wire type in the trainer spec, to exercise skipping.
    std::string trainer = fieldVarint(3, modelType) + fieldVarint(99, 7) + fieldBytes(98, "x") + fieldFloat(97, 1.0f) +
                          varint((96u << 3) | 1) + std::string(8, '\0') + varint((95u << 3) | 3) + fieldVarint(1, 1) +
                          varint((95u << 3) | 4);
    out += fieldBytes(2, trainer);
    out += fieldBytes(3, fieldBytes(1, normalizerName) + fieldBytes(2, charsmap));
    return out;
}
// A precompiled_charsmap blob as SentencePiece stores it: <uint32 LE trie size><darts-clone double array><NUL-
// terminated replacements>. The double array is built here by first fit: a node whose unit sits at `at` gets a
// base with free slots base ^ label for its children and base for its value (a unit with bit 31 set).
std::string charsMapBlob(const std::map<std::string, std::string>& rules)
{
    struct Node {
        std::map<unsigned char, std::size_t> children;
        std::int64_t value = -1;
    };
    std::vector<Node> nodes(1);
    std::string replacements;
    for (const auto& [key, replacement] : rules) {
        std::size_t n = 0;
        for (const char ch : key) {
            const auto c = static_cast<unsigned char>(ch);
            if (!nodes[n].children.contains(c)) {
                nodes.push_back({});
                nodes[n].children[c] = nodes.size() - 1;
            }
            n = nodes[n].children[c];
        }
        nodes[n].value = static_cast<std::int64_t>(replacements.size());
        replacements += replacement + '\0';
    }
    std::vector<std::uint32_t> units(1, 0);
    std::vector<bool> used(1, true);
    auto take = [&](std::uint32_t i) {
        if (i >= used.size()) {
            used.resize(i + 1, false);
            units.resize(i + 1, 0);
        }
        used[i] = true;
    };
    std::function<void(std::size_t, std::uint32_t)> place = [&](std::size_t n, std::uint32_t at) {
        auto isFree = [&](std::uint32_t i) { return i >= used.size() || !used[i]; };
        std::uint32_t base = 1;
        for (;; ++base) {
            bool ok = nodes[n].value < 0 || isFree(base);
            for (const auto& [c, child] : nodes[n].children)
                ok = ok && isFree(base ^ c);
            if (ok)
                break;
        }
        units[at] |= ((at ^ base) << 10) | (nodes[n].value >= 0 ? (1u << 8) : 0u);
        if (nodes[n].value >= 0) {
            take(base);
            units[base] = (1u << 31) | static_cast<std::uint32_t>(nodes[n].value);
        }
        for (const auto& [c, child] : nodes[n].children) {
            take(base ^ c);
            units[base ^ c] = c;
        }
        for (const auto& [c, child] : nodes[n].children)
            place(child, base ^ c);
    };
    place(0, 0);
    std::string blob;
    auto le32 = [&](std::uint32_t v) {
        for (int k = 0; k < 4; ++k)
            blob += static_cast<char>((v >> (8 * k)) & 0xFF);
    };
    le32(static_cast<std::uint32_t>(units.size() * 4));
    for (const std::uint32_t u : units)
        le32(u);
    return blob + replacements;
}

std::string base64(std::string_view bytes)
{
    static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size())
            v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        if (i + 2 < bytes.size())
            v |= static_cast<unsigned char>(bytes[i + 2]);
        out += digits[(v >> 18) & 63];
        out += digits[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? digits[(v >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? digits[v & 63] : '=';
    }
    return out;
}

const std::vector<SyntheticPiece> kSyntheticPieces = {
    {"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}, {"\xE2\x96\x81", -1, 1}, {"a", -2, 1},
    {"b", -3, 1},    {"ab", 5, 5},  {"abb", 4, 1},  {"<tag>", 0, 4},      {"\xE2\x96\x81" "a", -0.5f, 1},
};

} // namespace

class TestTokenizer : public QObject {
    Q_OBJECT

private:
    std::filesystem::path shared(const char* rel) const { return qpruner::testing::sharedDataDir() / rel; }
    std::filesystem::path fixture(const char* name) const { return qpruner::testing::fixtureDir() / "tokenizer" / name; }

private Q_SLOTS:
    // ---------------------------------------------------------------- SentencePiece .model
    void sentencePieceManifestIds()
    {
        QPRUNER_SHARED_FILE(tok512Path, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(llamaPath, "models/llama2-tokenizer/tokenizer.model");
        const auto tok512 = qpruner::loadTokenizer(tok512Path);
        const auto llama = qpruner::loadTokenizer(llamaPath);
        QCOMPARE(tok512->kind(), std::string("sentencepiece"));
        QCOMPARE(tok512->vocabSize(), 512);
        QCOMPARE(llama->vocabSize(), 32000);
        COMPARE_IDS(tok512->encode("Once upon a time"), (Ids{403, 407, 261, 378}), "tok512");
        COMPARE_IDS(llama->encode("Once upon a time"), (Ids{9038, 2501, 263, 931}), "llama2");
        COMPARE_IDS(llama->encode("Once upon a time", true, true), (Ids{1, 9038, 2501, 263, 931, 2}), "llama2 bos/eos");
        for (const auto* t : {tok512.get(), llama.get()}) {
            QCOMPARE(t->bosId(), 1);
            QCOMPARE(t->eosId(), 2);
            QCOMPARE(t->piece(1), std::string("<s>"));
            QCOMPARE(t->decode(t->encode("Once upon a time", true, true)), std::string("Once upon a time"));
        }
        QCOMPARE(llama->piece(9038), std::string("\xE2\x96\x81Once"));
        VERIFY_THROWS(qpruner::FormatError, llama->piece(32000), "32000");
        VERIFY_THROWS(qpruner::FormatError, llama->decode({5, -1}), "-1");
    }

    void sentencePieceMatchesReference()
    {
        const nlohmann::json refs = readJson(fixture("spm_refs.json"));
        for (const auto& [name, model] : refs.at("models").items()) {
            const std::filesystem::path path = qpruner::testing::sharedDataDir() / model.at("file").get<std::string>();
            if (!std::filesystem::exists(path)) {
                if (qpruner::testing::dataRequired())
                    QFAIL(("shared data file missing: " + path.string()).c_str());
                QSKIP(("shared data file missing: " + path.string()).c_str());
            }
            const auto tok = qpruner::loadTokenizer(path);
            QCOMPARE(tok->vocabSize(), model.at("vocab_size").get<int>());
            QCOMPARE(tok->bosId(), model.at("bos_id").get<int>());
            QCOMPARE(tok->eosId(), model.at("eos_id").get<int>());
            int checked = 0;
            for (const auto& c : model.at("cases")) {
                const std::string text = c.contains("text") ? c["text"].get<std::string>()
                                                            : fromHex(c["text_hex"].get<std::string>());
                const Ids want = c.at("ids").get<Ids>();
                const std::string where = name + " case " + c.at("name").get<std::string>();
                const Ids got = tok->encode(text);
                COMPARE_IDS(got, want, where);
                QVERIFY2(tok->decode(got) == c.at("decoded").get<std::string>(), (where + ": decode differs").c_str());
                ++checked;
            }
            for (const auto& c : model.at("decode_cases")) {
                const Ids ids = c.at("ids").get<Ids>();
                QVERIFY2(tok->decode(ids) == c.at("text").get<std::string>(),
                         (name + ": decode of " + describe(ids, 0, 8) + " gives '" + tok->decode(ids) + "'").c_str());
            }
            QVERIFY(checked >= 40);
        }
    }

    void sentencePieceSyntheticModel()
    {
        // Hand-checked on a 10-piece BPE model: "ab" is UNUSED (score 5, merged first but split back unless
        // it grows into "abb"), "<tag>" is USER_DEFINED (matched first, never merged), no byte fallback.
        QTemporaryDir dir;
        const auto path = std::filesystem::path(dir.path().toStdString()) / "synthetic.model";
        writeBytes(path, syntheticModel(kSyntheticPieces, 2, "identity", ""));
        const auto tok = qpruner::loadTokenizer(path);
        COMPARE_IDS(tok->encode("abb"), (Ids{3, 7}), "abb merges through the unused 'ab'");
        COMPARE_IDS(tok->encode("ab"), (Ids{3, 4, 5}), "unused 'ab' is resegmented");
        COMPARE_IDS(tok->encode("x<tag>ab"), (Ids{3, 0, 8, 4, 5}), "user-defined symbol kept whole, x unknown");
        COMPARE_IDS(tok->encode("a"), (Ids{9}), "a");
        QCOMPARE(tok->decode({3, 0, 8, 4, 5}), std::string(" \xE2\x81\x87 <tag>ab"));
        QCOMPARE(tok->bosId(), 1);

        writeBytes(path, syntheticModel(kSyntheticPieces, 1, "identity", ""));
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(path), "unigram models not supported");
        // A precompiled character map is applied whatever the rule's name (as libsentencepiece does); a broken
        // one is refused.
        writeBytes(path, syntheticModel(kSyntheticPieces, 2, "nmt_nfkc", "\x01\x02\x03"));
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(path), "synthetic.model: normalizer_spec: precompiled_charsmap");
        writeBytes(path, syntheticModel(kSyntheticPieces, 2, "identity", std::string("\x40\x00\x00\x00xyz", 7)));
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(path), "precompiled_charsmap trie size 64");
        auto noUnknown = kSyntheticPieces;
        noUnknown[0].type = 1;
        writeBytes(path, syntheticModel(noUnknown, 2, "identity", ""));
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(path), "unknown piece");
    }

    void sentencePiecePrecompiledCharsMap()
    {
        // Fullwidth letters to ASCII, a longer rule beating a shorter one, a tab to a space (then collapsed as
        // whitespace), 'x' deleted.
        const std::string fullA = "\xEF\xBC\xA1", fullB = "\xEF\xBD\x82";
        const std::string blob = charsMapBlob({{fullA, "a"}, {fullB, "b"}, {fullA + fullB, "abb"}, {"\t", " "}, {"x", ""}});
        QTemporaryDir dir;
        const auto path = std::filesystem::path(dir.path().toStdString()) / "nfkc.model";
        writeBytes(path, syntheticModel(kSyntheticPieces, 2, "nmt_nfkc", blob));
        const auto tok = qpruner::loadTokenizer(path);
        COMPARE_IDS(tok->encode(fullA + fullB + fullB), tok->encode("abbb"), "fullwidth letters");
        COMPARE_IDS(tok->encode(fullA + fullB), (Ids{3, 7}), "the longest rule wins: 'abb'");
        COMPARE_IDS(tok->encode(fullA), (Ids{9}), "single rule: 'a'");
        COMPARE_IDS(tok->encode("\t\tabb\t"), tok->encode("abb"), "tabs become spaces, collapsed and trimmed");
        COMPARE_IDS(tok->encode("a\t \tb"), tok->encode("a b"), "inner tabs");
        COMPARE_IDS(tok->encode("xaxbxb"), tok->encode("abb"), "deleted characters");
        COMPARE_IDS(tok->encode("<tag>" + fullA), (Ids{3, 8, 4}), "user-defined symbols are not mapped");
    }

    // ---------------------------------------------------------------- llama2.c tokenizer.bin
    void llama2cManifestIds()
    {
        QPRUNER_SHARED_FILE(tok512Path, "models/stories260K/tok512.bin");
        QPRUNER_SHARED_FILE(llamaPath, "models/llama2-tokenizer/tokenizer.bin");
        const auto tok512 = qpruner::loadTokenizer(tok512Path);
        const auto llama = qpruner::loadTokenizer(llamaPath);
        QCOMPARE(tok512->kind(), std::string("llama2c"));
        QCOMPARE(tok512->vocabSize(), 512);
        QCOMPARE(llama->vocabSize(), 32000);
        QCOMPARE(tok512->bosId(), 1);
        QCOMPARE(tok512->eosId(), 2);
        COMPARE_IDS(tok512->encode("Once upon a time"), (Ids{403, 407, 261, 378}), "tok512.bin");
        COMPARE_IDS(llama->encode("Once upon a time", true, false), (Ids{1, 9038, 2501, 263, 931}), "tokenizer.bin");
        QVERIFY(tok512->encode("").empty());
        QCOMPARE(tok512->piece(403), std::string(" Once"));
        QCOMPARE(tok512->decode({1, 403, 407, 2}), std::string("Once upon"));
        // Unknown code points fall back to byte tokens (byte + 3) and decode back to the same bytes.
        const std::string cjk = "\xE6\x97\xA5"; // U+65E5, not in the 512-piece vocabulary
        const Ids ids = tok512->encode(cjk);
        COMPARE_IDS(ids, (Ids{410, 0xE6 + 3, 0x97 + 3, 0xA5 + 3}), "byte fallback");
        QCOMPARE(tok512->decode(ids), cjk);
    }

    void llama2cAgreesWithModel()
    {
        QPRUNER_SHARED_FILE(tok512Model, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(tok512Bin, "models/stories260K/tok512.bin");
        QPRUNER_SHARED_FILE(llamaModel, "models/llama2-tokenizer/tokenizer.model");
        QPRUNER_SHARED_FILE(llamaBin, "models/llama2-tokenizer/tokenizer.bin");
        const auto model512 = qpruner::loadTokenizer(tok512Model), bin512 = qpruner::loadTokenizer(tok512Bin);
        const auto modelL = qpruner::loadTokenizer(llamaModel), binL = qpruner::loadTokenizer(llamaBin);

        // Same ids wherever there are no leading, trailing or repeated spaces.
        std::vector<std::string> clean = {"Once upon a time", "Hello, world!", "line1\nline2\r\n\nline3",
                                          "tab\tseparated\tvalues", "caf\xC3\xA9 na\xC3\xAFve", "emoji \xF0\x9F\x98\x80!",
                                          "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "x\ny", "I'm 42 years old."};
        const nlohmann::json refs = readJson(fixture("spm_refs.json"));
        clean.push_back(refs["models"]["tok512"]["cases"][0]["text"].get<std::string>()); // three whole stories
        for (const auto& text : clean) {
            COMPARE_IDS(bin512->encode(text), model512->encode(text), "tok512 .bin vs .model on '" + text.substr(0, 40) + "'");
            COMPARE_IDS(binL->encode(text), modelL->encode(text), "llama2 .bin vs .model on '" + text.substr(0, 40) + "'");
            QCOMPARE(bin512->decode(bin512->encode(text)), text);
        }

        // tok512.model removes extra whitespace, tokenizer.bin keeps every space.
        COMPARE_IDS(model512->encode(" a  b"), model512->encode("a b"), "tok512.model collapses spaces");
        COMPARE_IDS(bin512->encode("a b"), model512->encode("a b"), "a b");
        QVERIFY(bin512->encode(" a  b") != model512->encode(" a  b"));
        QCOMPARE(bin512->decode(bin512->encode(" a  b")), std::string(" a  b"));
        QCOMPARE(model512->decode(model512->encode(" a  b")), std::string("a b"));
        QVERIFY(bin512->encode("end ") != model512->encode("end "));
        QCOMPARE(bin512->decode(bin512->encode("end ")), std::string("end "));
        COMPARE_IDS(model512->encode("   "), Ids{}, "only spaces");
        COMPARE_IDS(bin512->encode("   "), (Ids{410, 410, 410, 410}), "tok512.bin: dummy prefix and three spaces");
        // The Llama-2 .model keeps whitespace, so there the two agree even on repeated spaces...
        COMPARE_IDS(binL->encode(" a  b "), modelL->encode(" a  b "), "llama2 keeps spaces");
        // ...and differ where SentencePiece's normalizer acts: a literal U+2581 counts as a space to the
        // .model, malformed UTF-8 becomes U+FFFD there but stays raw bytes in the .bin.
        COMPARE_IDS(modelL->encode("a\xE2\x96\x81" "b"), modelL->encode("a b"), "U+2581 in .model");
        COMPARE_IDS(binL->encode("a\xE2\x96\x81" "b"), (Ids{263, 0xE2 + 3, 0x96 + 3, 0x81 + 3, 29890}), "U+2581 in .bin");
        COMPARE_IDS(binL->encode("a\xFF" "b"), (Ids{263, 0xFF + 3, 29890}), "raw byte in .bin");
        COMPARE_IDS(modelL->encode("a\xFF" "b"), (Ids{263, 30140, 29890}), "U+FFFD in .model");
    }

    // ---------------------------------------------------------------- whole documents
    void wholeDocuments()
    {
        QPRUNER_SHARED_FILE(storiesPath, "text/tinystories/tinystories_valid_subset.txt");
        QPRUNER_SHARED_FILE(wikiPath, "text/wikitext-2-raw/wiki.test.raw");
        QPRUNER_SHARED_FILE(tok512Model, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(tok512Bin, "models/stories260K/tok512.bin");
        QPRUNER_SHARED_FILE(llamaModel, "models/llama2-tokenizer/tokenizer.model");
        QPRUNER_SHARED_FILE(llamaBin, "models/llama2-tokenizer/tokenizer.bin");
        const std::string stories = readBytes(storiesPath), wiki = readBytes(wikiPath);
        QCOMPARE(stories.size(), std::size_t(794375));
        QCOMPARE(wiki.size(), std::size_t(1290547));

        struct Named {
            const char* name;
            std::unique_ptr<Tokenizer> tok;
            bool collapses;
        };
        std::vector<Named> toks;
        toks.push_back({"tok512.model", qpruner::loadTokenizer(tok512Model), true});
        toks.push_back({"tok512.bin", qpruner::loadTokenizer(tok512Bin), false});
        toks.push_back({"llama2 tokenizer.model", qpruner::loadTokenizer(llamaModel), false});
        toks.push_back({"llama2 tokenizer.bin", qpruner::loadTokenizer(llamaBin), false});
        toks.push_back({"bpe_llama3_style.json", qpruner::loadTokenizer(fixture("bpe_llama3_style.json")), false});
        toks.push_back({"bpe_gpt2_style.json", qpruner::loadTokenizer(fixture("bpe_gpt2_style.json")), false});

        std::map<std::string, Ids> wikiIds;
        for (const auto& [fileName, text] : {std::pair{"tinystories", &stories}, std::pair{"wikitext", &wiki}}) {
            for (const auto& t : toks) {
                std::vector<qint64> times;
                Ids ids;
                for (int run = 0; run < 3; ++run) {
                    QElapsedTimer timer;
                    timer.start();
                    ids = t.tok->encode(*text);
                    times.push_back(timer.elapsed());
                }
                std::sort(times.begin(), times.end());
                qDebug("%s: %s (%zu bytes) -> %zu ids, median %lld ms", t.name, fileName, text->size(), ids.size(),
                       static_cast<long long>(times[1]));
                QVERIFY(ids.size() > text->size() / 8);
                const std::string want = t.collapses ? collapseSpaces(*text) : *text;
                QVERIFY2(t.tok->decode(ids) == want, (std::string(t.name) + " does not round-trip " + fileName).c_str());
                if (std::string(fileName) == "wikitext")
                    wikiIds[t.name] = std::move(ids);
            }
        }
        // The .bin of a vocabulary agrees with its .model on the model's own normalization of the text.
        COMPARE_IDS(toks[1].tok->encode(collapseSpaces(stories)), toks[0].tok->encode(stories), "tok512 on TinyStories");
        COMPARE_IDS(toks[1].tok->encode(collapseSpaces(wiki)), wikiIds["tok512.model"], "tok512 on WikiText");
        COMPARE_IDS(wikiIds["llama2 tokenizer.bin"], wikiIds["llama2 tokenizer.model"], "llama2 on WikiText");
        QVERIFY(wikiIds["tok512.bin"] != wikiIds["tok512.model"]); // the file has repeated spaces
    }

    // ---------------------------------------------------------------- Hugging Face byte-level BPE
    void splitPatterns()
    {
        using V = std::vector<std::string_view>;
        const auto llama3 = qpruner::HfSplitPattern::llama3();
        const auto gpt2 = qpruner::HfSplitPattern::gpt2();
        QVERIFY(llama3.split("I'm") == (V{"I", "'m"}));
        QVERIFY(llama3.split("WE'LL they'RE") == (V{"WE", "'LL", " they", "'RE"}));
        QVERIFY(gpt2.split("WE'LL they're") == (V{"WE", "'", "LL", " they", "'re"}));
        QVERIFY(llama3.split("  hello") == (V{" ", " hello"}));
        QVERIFY(gpt2.split("  hello") == (V{" ", " hello"}));
        QVERIFY(llama3.split("hello  ") == (V{"hello", "  "}));
        QVERIFY(llama3.split("123456") == (V{"123", "456"}));
        QVERIFY(llama3.split("1234567 89") == (V{"123", "456", "7", " ", "89"}));
        QVERIFY(gpt2.split("123456 78") == (V{"123456", " 78"}));
        QVERIFY(llama3.split("line one\nline two\r\n\r\n  x") == (V{"line", " one", "\n", "line", " two", "\r\n\r\n", " ", " x"}));
        QVERIFY(llama3.split("a\n\n  b") == (V{"a", "\n\n", " ", " b"}));
        QVERIFY(llama3.split("end.\n\nNext") == (V{"end", ".\n\n", "Next"}));
        QVERIFY(gpt2.split("end.\n\nNext") == (V{"end", ".", "\n", "\n", "Next"}));
        QVERIFY(gpt2.split("a\n\n  b") == (V{"a", "\n\n ", " b"}));
        QVERIFY(llama3.split("$100!!") == (V{"$", "100", "!!"}));
        QVERIFY(llama3.split("(hello)") == (V{"(hello", ")"}));
        QVERIFY(gpt2.split("(hello)") == (V{"(", "hello", ")"}));
        QVERIFY(llama3.split("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC") == (V{"caf\xC3\xA9", " \xE6\x97\xA5\xE6\x9C\xAC"}));
        QVERIFY(llama3.split("").empty());
        QVERIFY(qpruner::HfSplitPattern::fromRegex("\\w+") == std::nullopt);
    }

    void hfBpeMatchesReference()
    {
        const nlohmann::json refs = readJson(fixture("bpe_refs.json"));
        for (const auto& [style, fx] : refs.at("fixtures").items()) {
            const auto tok = qpruner::loadTokenizer(fixture(fx.at("file").get<std::string>().c_str()));
            QCOMPARE(tok->kind(), std::string("hf-bpe"));
            int i = 0;
            for (const auto& c : fx.at("cases")) {
                const std::string text = c.at("text").get<std::string>();
                const Ids ids = tok->encode(text);
                COMPARE_IDS(ids, c.at("ids").get<Ids>(), style + " case " + std::to_string(i));
                // Special tokens in the text come back as themselves except BOS/EOS, which decode drops.
                if (text.find("<|") == std::string::npos)
                    QCOMPARE(tok->decode(ids), text);
                ++i;
            }
        }
    }

    void hfBpeHandChecked()
    {
        const auto llama3 = qpruner::loadTokenizer(fixture("bpe_llama3_style.json"));
        const auto gpt2 = qpruner::loadTokenizer(fixture("bpe_gpt2_style.json"));
        // 256 byte symbols + the learned merges + 4 special tokens; BOS from the TemplateProcessing.
        QCOMPARE(llama3->vocabSize(), 560);
        QCOMPARE(llama3->bosId(), 556);
        QCOMPARE(llama3->piece(556), std::string("<|begin_of_text|>"));
        QCOMPARE(llama3->eosId(), 557);
        QCOMPARE(gpt2->bosId(), gpt2->eosId());
        QCOMPARE(gpt2->piece(gpt2->eosId()), std::string("<|endoftext|>"));

        // Byte-level spelling: the space is 'Ġ' (U+0120), the newline 'Ċ' (U+010A).
        using S = std::vector<std::string>;
        QVERIFY(piecesOf(*llama3, llama3->encode(" the")) == (S{"\xC4\xA0the"}));
        QVERIFY(piecesOf(*llama3, llama3->encode("Once upon a time")) ==
                (S{"Once", "\xC4\xA0upon", "\xC4\xA0" "a", "\xC4\xA0time"}));
        QVERIFY(piecesOf(*llama3, llama3->encode("\n")) == (S{"\xC4\x8A"}));
        // An unseen character becomes its UTF-8 bytes, each spelled by its byte symbol: printable Latin-1
        // bytes as themselves (0xE6 'æ', 0xA5 '¥'), the others moved up from U+0100 (0x97 -> U+0139 'Ĺ').
        QVERIFY(piecesOf(*llama3, llama3->encode("\xE6\x97\xA5")) == (S{"\xC3\xA6", "\xC4\xB9", "\xC2\xA5"}));

        const Ids ids = llama3->encode("<|begin_of_text|>Once upon a time<|end_of_text|>");
        QCOMPARE(ids.front(), 556);
        QCOMPARE(ids.back(), 557);
        QCOMPARE(llama3->decode(ids), std::string("Once upon a time"));
        COMPARE_IDS(llama3->encode("Once upon a time", true, true), ids, "addBos/addEos");
        const Ids eot = llama3->encode("a<|eot_id|>b");
        QCOMPARE(eot.size(), std::size_t(3));
        QCOMPARE(llama3->piece(eot[1]), std::string("<|eot_id|>"));
        QCOMPARE(llama3->decode(eot), std::string("a<|eot_id|>b"));
        // A special token cut short is plain text.
        QCOMPARE(llama3->decode(llama3->encode("<|begin_of_text")), std::string("<|begin_of_text"));

        // Pre-tokenizer options: ByteLevel's add_prefix_space puts a space before the text; a Split on a
        // literal string isolates every occurrence, and BPE never merges across pieces.
        QTemporaryDir dir;
        const auto variantPath = std::filesystem::path(dir.path().toStdString()) / "variant.json";
        nlohmann::json j = readJson(fixture("bpe_gpt2_style.json"));
        j["pre_tokenizer"]["add_prefix_space"] = true;
        writeBytes(variantPath, j.dump());
        const auto prefixed = qpruner::loadTokenizer(variantPath);
        COMPARE_IDS(prefixed->encode("Hello world"), gpt2->encode(" Hello world"), "add_prefix_space");
        COMPARE_IDS(prefixed->encode(" Hello"), gpt2->encode(" Hello"), "no second prefix space");
        QCOMPARE(prefixed->decode(prefixed->encode("Hello")), std::string(" Hello"));
        j = readJson(fixture("bpe_llama3_style.json"));
        j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", "he"}};
        writeBytes(variantPath, j.dump());
        const auto literal = qpruner::loadTokenizer(variantPath);
        Ids split;
        for (const char* part : {"a t", "he", " cat"}) {
            const Ids ids = literal->encode(part);
            split.insert(split.end(), ids.begin(), ids.end());
        }
        COMPARE_IDS(literal->encode("a the cat"), split, "Split on the string 'he'");
        QVERIFY(piecesOf(*llama3, llama3->encode("a the")) == (S{"a", "\xC4\xA0the"}));
        QVERIFY(literal->encode("a the cat") != llama3->encode("a the cat"));

        for (const char* text : {"The quick brown fox jumps over the lazy dog. 1234567890",
                                 "Caf\xC3\xA9, na\xC3\xAFve, \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E, \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
                                 "  \t\n\n  spaces   and\ttabs \r\n\r\n trailing   ", "", " ", "\n\n\n",
                                 "invalid \xFF\xFE bytes \xE6\x97"}) {
            for (const auto* t : {llama3.get(), gpt2.get()})
                QCOMPARE(t->decode(t->encode(text)), std::string(text));
        }
    }

    // ---------------------------------------------------------------- loading and errors
    void loadByDirectoryAndContent()
    {
        QPRUNER_SHARED_FILE(llamaDir, "models/llama2-tokenizer");
        QCOMPARE(qpruner::loadTokenizer(llamaDir)->kind(), std::string("sentencepiece"));
        QPRUNER_SHARED_FILE(storiesDir, "models/stories260K");
        VERIFY_THROWS(qpruner::FileError, qpruner::loadTokenizer(storiesDir), "stories260K");

        QTemporaryDir dir;
        const std::filesystem::path root = dir.path().toStdString();
        std::filesystem::create_directory(root / "hf");
        std::filesystem::copy_file(fixture("bpe_llama3_style.json"), root / "hf" / "tokenizer.json");
        QCOMPARE(qpruner::loadTokenizer(root / "hf")->kind(), std::string("hf-bpe"));
        // tokenizer_config.json beside it decides BOS/EOS.
        writeBytes(root / "hf" / "tokenizer_config.json", R"({"bos_token": null, "eos_token": {"content": "<|eot_id|>"}})");
        const auto withConfig = qpruner::loadTokenizer(root / "hf" / "tokenizer.json");
        QCOMPARE(withConfig->bosId(), -1);
        QCOMPARE(withConfig->eosId(), 559);

        // Unknown extensions are recognised by content.
        QPRUNER_SHARED_FILE(tok512Bin, "models/stories260K/tok512.bin");
        QPRUNER_SHARED_FILE(tok512Model, "models/stories260K/tok512.model");
        std::filesystem::copy_file(tok512Bin, root / "vocab.dat");
        std::filesystem::copy_file(tok512Model, root / "spm.dat");
        std::filesystem::copy_file(fixture("bpe_gpt2_style.json"), root / "hf.dat");
        QCOMPARE(qpruner::loadTokenizer(root / "vocab.dat")->kind(), std::string("llama2c"));
        QCOMPARE(qpruner::loadTokenizer(root / "spm.dat")->kind(), std::string("sentencepiece"));
        QCOMPARE(qpruner::loadTokenizer(root / "hf.dat")->kind(), std::string("hf-bpe"));
    }

    void missingFiles()
    {
        VERIFY_THROWS(qpruner::FileError, qpruner::loadTokenizer("/nonexistent/dir/tokenizer.model"), "/nonexistent/dir/tokenizer.model");
        VERIFY_THROWS(qpruner::FileError, qpruner::loadTokenizer("/nonexistent/x.bin"), "x.bin");
        VERIFY_THROWS(qpruner::FileError, qpruner::loadTokenizer("/nonexistent/tokenizer.json"), "tokenizer.json");
        QTemporaryDir dir;
        VERIFY_THROWS(qpruner::FileError, qpruner::loadTokenizer(dir.path().toStdString()), dir.path().toStdString());
    }

    void truncatedModel()
    {
        QPRUNER_SHARED_FILE(tok512Model, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(llamaModel, "models/llama2-tokenizer/tokenizer.model");
        QTemporaryDir dir;
        for (const auto& source : {tok512Model, llamaModel}) {
            const std::string bytes = readBytes(source);
            std::vector<std::size_t> cuts = {0, 1, 2, 3, 10, 100, 1000, bytes.size() / 2, bytes.size() - 200,
                                             bytes.size() - 40, bytes.size() - 2, bytes.size() - 1};
            for (std::size_t i = 1; i < 40; ++i)
                cuts.push_back(bytes.size() * i / 40 + i);
            for (const std::size_t cut : cuts) {
                const auto path = std::filesystem::path(dir.path().toStdString()) / ("cut" + std::to_string(cut) + ".model");
                writeBytes(path, std::string_view(bytes).substr(0, cut));
                VERIFY_THROWS(qpruner::FileError, qpruner::loadTokenizer(path), path.filename().string());
            }
        }
        // Not a protobuf at all: bad content rather than a short file.
        const auto garbage = std::filesystem::path(dir.path().toStdString()) / "garbage.model";
        writeBytes(garbage, "hello world, this is not a model");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(garbage), "garbage.model");
        writeBytes(garbage, std::string(64, '\xFF'));
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(garbage), "garbage.model");
    }

    void truncatedBin()
    {
        QPRUNER_SHARED_FILE(tok512Bin, "models/stories260K/tok512.bin");
        const std::string bytes = readBytes(tok512Bin);
        // Entry boundaries: after the 4-byte header, (float score, int32 length, bytes) each.
        std::vector<std::size_t> starts;
        for (std::size_t pos = 4; pos < bytes.size();) {
            starts.push_back(pos);
            std::int32_t len;
            std::memcpy(&len, bytes.data() + pos + 4, 4);
            pos += 8 + static_cast<std::size_t>(len);
        }
        QCOMPARE(starts.size(), std::size_t(512));
        QTemporaryDir dir;
        auto cutFile = [&](std::size_t cut) {
            const auto path = std::filesystem::path(dir.path().toStdString()) / ("cut" + std::to_string(cut) + ".bin");
            writeBytes(path, std::string_view(bytes).substr(0, cut));
            return path;
        };
        for (const std::size_t cut : {std::size_t(0), std::size_t(2)})
            VERIFY_THROWS(qpruner::FileError, qpruner::loadTokenizer(cutFile(cut)), "cut" + std::to_string(cut) + ".bin");
        for (const std::size_t entry : {0, 1, 100, 300, 511}) {
            const std::size_t start = starts[entry];
            const std::size_t end = entry + 1 < starts.size() ? starts[entry + 1] : bytes.size();
            for (const std::size_t cut : {start + 3, start + 7, end - 1}) {
                const auto path = cutFile(cut);
                VERIFY_THROWS(qpruner::FileError, qpruner::loadTokenizer(path), path.filename().string());
            }
        }
        // Cut exactly between entries: the file is complete but too small to be a llama2.c vocabulary.
        const auto path = cutFile(starts[100]);
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(path), path.filename().string());
        // A model checkpoint is not a tokenizer.
        QPRUNER_SHARED_FILE(checkpoint, "models/stories260K/stories260K.bin");
        try {
            qpruner::loadTokenizer(checkpoint);
            QFAIL("a checkpoint loaded as a tokenizer");
        } catch (const qpruner::Error& e) {
            QVERIFY(std::string(e.what()).find("stories260K.bin") != std::string::npos);
        }
    }

    void badTokenizerJson()
    {
        QTemporaryDir dir;
        const auto path = std::filesystem::path(dir.path().toStdString()) / "bad_tokenizer.json";
        const std::string good = readBytes(fixture("bpe_llama3_style.json"));
        auto withJson = [&](const std::string& text) {
            writeBytes(path, text);
            return path;
        };
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(withJson("{not json")), "bad_tokenizer.json");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(withJson(good.substr(0, good.size() / 2))), "bad_tokenizer.json");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(withJson("[1, 2]")), "bad_tokenizer.json");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(withJson(R"({"model": 5})")), "bad_tokenizer.json");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(withJson("")), "bad_tokenizer.json");

        auto variant = [&](const std::function<void(nlohmann::json&)>& edit) {
            nlohmann::json j = nlohmann::json::parse(good);
            edit(j);
            return withJson(j.dump());
        };
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(variant([](auto& j) { j["normalizer"] = {{"type", "BertNormalizer"}}; })), "normalizer type 'BertNormalizer' is not supported");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(variant([](auto& j) { j["model"]["type"] = "WordPiece"; })), "WordPiece");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(variant([](auto& j) { j["model"]["vocab"] = 3; })), "bad_tokenizer.json");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(variant([](auto& j) { j["model"]["merges"][0] = "a"; })), "merges[0]");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(variant([](auto& j) { j["model"]["merges"].push_back({"zz", "qq"}); })), "not in the vocabulary");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(variant([](auto& j) { j["model"]["vocab"].erase("\xC4\x80"); })), "byte-level symbol");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(variant([](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\w+"; })), "pre_tokenizer: Split: regex '(\\w+' is not valid");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(variant([](auto& j) { j["pre_tokenizer"] = {{"type", "UnicodeScripts"}}; })), "pre_tokenizer type 'UnicodeScripts' is not supported");
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(variant([](auto& j) { j["added_tokens"][0]["id"] = "x"; })), "bad_tokenizer.json");
    }
    // ---------------------------------------------------------------- tokenizer.json parts, one by one
    void hfNormalizers()
    {
        using nlohmann::json;
        const std::string where = "tokenizer file t.json: normalizer";
        auto norm = [&](const json& config, const std::string& text) {
            return qpruner::HfNormalizer::parse(config, where).normalize(text);
        };
        const std::string composed = "caf\xC3\xA9", decomposed = "cafe\xCC\x81";
        QCOMPARE(norm({{"type", "NFC"}}, decomposed), composed);
        QCOMPARE(norm({{"type", "NFD"}}, composed), decomposed);
        QCOMPARE(norm({{"type", "NFKC"}}, "\xEF\xAC\x81" "ne \xE2\x84\xAB"), std::string("fine \xC3\x85"));
        QCOMPARE(norm({{"type", "NFKD"}}, "\xE2\x84\xAB"), std::string("A\xCC\x8A"));
        QCOMPARE(norm({{"type", "NFC"}}, "plain ASCII\n"), std::string("plain ASCII\n"));
        // Lowercase maps each character on its own (no final-sigma context), like Rust's char::to_lowercase.
        QCOMPARE(norm({{"type", "Lowercase"}}, "\xC3\x80" "BC \xCE\xA3\xCE\xA3"), std::string("\xC3\xA0" "bc \xCF\x83\xCF\x83"));
        QCOMPARE(norm({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, " \t a b \n\xE3\x80\x80"),
                 std::string("a b"));
        QCOMPARE(norm({{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}, "  a  "), std::string("  a"));
        QCOMPARE(norm(json::parse(R"({"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"}]})"),
                      composed),
                 std::string("cafe"));
        QCOMPARE(norm(json::parse(R"({"type":"Replace","pattern":{"String":" "},"content":"\u2581"})"), " a  b"),
                 std::string("\xE2\x96\x81" "a\xE2\x96\x81\xE2\x96\x81" "b"));
        QCOMPARE(norm(json::parse(R"({"type":"Replace","pattern":{"Regex":" {2,}"},"content":"$1 "})"), "a    b  c"),
                 std::string("a$1 b$1 c")); // the content is literal, not a substitution template
        const json prepend = json::parse(R"({"type":"Prepend","prepend":"\u2581"})");
        QCOMPARE(norm(prepend, "x"), std::string("\xE2\x96\x81x"));
        QCOMPARE(norm(prepend, ""), std::string()); // nothing is prepended to an empty string
        QCOMPARE(norm({{"type", "ByteLevel"}}, " a\n"), std::string("\xC4\xA0" "a\xC4\x8A"));
        // Sequences nest; an empty one changes nothing.
        QVERIFY(qpruner::HfNormalizer::parse(json::parse(R"({"type":"Sequence","normalizers":[]})"), where).empty());
        QCOMPARE(norm(json::parse(R"({"type":"Sequence","normalizers":[{"type":"Sequence","normalizers":[
                                        {"type":"Lowercase"}]},{"type":"Prepend","prepend":"_"}]})"),
                      "AB"),
                 std::string("_ab"));

        VERIFY_THROWS(qpruner::FormatError, qpruner::HfNormalizer::parse({{"type", "BertNormalizer"}}, where),
                      "t.json: normalizer type 'BertNormalizer' is not supported");
        VERIFY_THROWS(qpruner::FormatError,
                      qpruner::HfNormalizer::parse({{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA!"}}, where),
                      "t.json: normalizer: Precompiled: precompiled_charsmap is not base64");

        // Precompiled: a SentencePiece character map per grapheme cluster. A cluster under 6 bytes that starts
        // with a rule's key becomes that rule's replacement (its combining marks go too); a longer one is
        // mapped character by character.
        const std::string blob = charsMapBlob({{"\xEF\xBC\xA1", "A"}, {"x", "y"}, {"\xEF\xAC\x81", "fi"}});
        const json pre = {{"type", "Precompiled"}, {"precompiled_charsmap", base64(blob)}};
        QCOMPARE(norm(pre, "\xEF\xBC\xA1x \xEF\xAC\x81ne"), std::string("Ay fine"));
        QCOMPARE(norm(pre, "x\xCC\x81!"), std::string("y!"));
        QCOMPARE(norm(pre, "x\xCC\x81\xCC\x81\xCC\x81"), std::string("y\xCC\x81\xCC\x81\xCC\x81"));
        QCOMPARE(norm(pre, "caf\xC3\xA9"), std::string("caf\xC3\xA9"));
        QVERIFY(qpruner::HfNormalizer::parse({{"type", "Precompiled"}, {"precompiled_charsmap", nullptr}}, where).empty());
        VERIFY_THROWS(qpruner::FormatError,
                      qpruner::HfNormalizer::parse({{"type", "Replace"}, {"pattern", {{"Regex", "(a"}}}, {"content", ""}}, where),
                      "t.json: normalizer: Replace: regex '(a' is not valid");
        VERIFY_THROWS(qpruner::FormatError, qpruner::HfNormalizer::parse(json::parse(R"({"prepend":"x"})"), where),
                      "t.json: normalizer is not an object with a 'type'");
    }

    void hfPreTokenizers()
    {
        using nlohmann::json;
        using S = std::vector<std::string>;
        const std::string where = "tokenizer file t.json: pre_tokenizer";
        auto split = [&](const json& config, const std::string& text, bool atStart = true) {
            S out;
            qpruner::HfPreTokenizer::parse(config, where).split(text, atStart, out);
            return out;
        };
        auto splitOn = [](const char* behavior, bool invert) {
            return json{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
        };
        // The examples of tokenizers' SplitDelimiterBehavior.
        const std::string t = "the-final--countdown";
        QCOMPARE(split(splitOn("Removed", false), t), (S{"the", "final", "countdown"}));
        QCOMPARE(split(splitOn("Isolated", false), t), (S{"the", "-", "final", "-", "-", "countdown"}));
        QCOMPARE(split(splitOn("MergedWithPrevious", false), t), (S{"the-", "final-", "-", "countdown"}));
        QCOMPARE(split(splitOn("MergedWithNext", false), t), (S{"the", "-final", "-", "-countdown"}));
        QCOMPARE(split(splitOn("Contiguous", false), t), (S{"the", "-", "final", "--", "countdown"}));
        // invert: the text between delimiters is what matches.
        QCOMPARE(split(splitOn("Removed", true), t), (S{"-", "-", "-"}));
        QCOMPARE(split(splitOn("MergedWithPrevious", true), t), (S{"the", "-final", "-", "-countdown"}));
        // Any regex (ICU): digits three at a time, CJK runs; \s means White_Space as in Oniguruma.
        const auto regex = [](const char* r, const char* behavior = "Isolated") {
            return json{{"type", "Split"}, {"pattern", {{"Regex", r}}}, {"behavior", behavior}, {"invert", false}};
        };
        QCOMPARE(split(regex("\\p{N}{1,3}"), "ab12345c"), (S{"ab", "123", "45", "c"}));
        QCOMPARE(split(regex("\\s+", "Removed"), "a\x0B" "b\xC2\x85" "c d"), (S{"a", "b", "c", "d"}));
        QCOMPARE(split(regex("(?i:'s|'t)|\\p{L}+"), "IT'S it's"), (S{"IT", "'S", " ", "it", "'s"}));
        QCOMPARE(split(regex("\\s+(?!\\S)|\\s+"), "a   b"), (S{"a", "  ", " ", "b"}));
        // The hand-written fast path gives what ICU gives for the Llama-3 pattern.
        const std::string llama3 = std::string(qpruner::HfSplitPattern::llama3().regex());
        const std::string sample = "Hello,  world! 12345 caf\xC3\xA9's\r\n\n  \tend ";
        const auto fast = split(regex(llama3.c_str()), sample);
        const qpruner::HfRegex icu(llama3, "test");
        S slow;
        for (const auto& [b, e] : icu.findAll(sample))
            slow.push_back(sample.substr(b, e - b));
        QCOMPARE(fast, slow);
        // The UnicodeSet fast paths (\p{X}{1,k}, [literal class]+) find what the regex engine finds.
        const std::string mixed = "ab1234567 \xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4 x\xE4\xB8\x80\xE4\xBA\x8C\xE3\x81\x82z\xE3\x83\xBC" "9\xC2\xBD";
        for (const auto& [fastPattern, slowPattern] :
             {std::pair{"\\p{N}{1,3}", "(?:\\p{N}){1,3}"}, std::pair{"\\p{N}+", "(?:\\p{N})+"},
              std::pair{"[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+",
                        "(?:[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF])+"},
              std::pair{"[a-z0-9]+", "(?:[a-z0-9])+"}}) {
            const auto fast = qpruner::HfRegex(fastPattern, "test").findAll(mixed);
            QVERIFY2(!fast.empty(), fastPattern);
            QVERIFY2(fast == qpruner::HfRegex(slowPattern, "test").findAll(mixed), fastPattern);
        }
        // ByteLevel: prefix space, GPT-2 regex; raw bytes when last, byte alphabet when more steps follow.
        const json byteLevel = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
        QCOMPARE(split(byteLevel, "Hello world"), (S{" Hello", " world"}));
        QCOMPARE(split({{"type", "Sequence"}, {"pretokenizers", {byteLevel, {{"type", "WhitespaceSplit"}}}}}, "Hi you"),
                 (S{"\xC4\xA0Hi", "\xC4\xA0you"}));
        QCOMPARE(split({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}, "a b"), (S{"a b"}));
        // Metaspace: spaces become U+2581, one is prepended per prepend_scheme, and the text is split before each.
        const std::string m = "\xE2\x96\x81";
        auto metaspace = [](const char* scheme, bool doSplit) {
            return json{{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", scheme}, {"split", doSplit}};
        };
        QCOMPARE(split(metaspace("always", true), "Hey  friend"), (S{m + "Hey", m, m + "friend"}));
        QCOMPARE(split(metaspace("first", true), "Hey friend", true), (S{m + "Hey", m + "friend"}));
        QCOMPARE(split(metaspace("first", true), "Hey friend", false), (S{"Hey", m + "friend"}));
        QCOMPARE(split(metaspace("never", false), "Hey friend"), (S{"Hey" + m + "friend"}));
        QCOMPARE(split({{"type", "Digits"}, {"individual_digits", true}}, "a123b"), (S{"a", "1", "2", "3", "b"}));
        QCOMPARE(split({{"type", "Digits"}, {"individual_digits", false}}, "a123b"), (S{"a", "123", "b"}));
        QCOMPARE(split({{"type", "Punctuation"}, {"behavior", "Isolated"}}, "Hey, you!"), (S{"Hey", ",", " you", "!"}));
        QCOMPARE(split({{"type", "Punctuation"}, {"behavior", "MergedWithPrevious"}}, "Hey, you!"), (S{"Hey,", " you!"}));
        QCOMPARE(split({{"type", "Whitespace"}}, "Hey man!?  ok"), (S{"Hey", "man", "!?", "ok"}));
        QCOMPARE(split({{"type", "WhitespaceSplit"}}, " Hey  man!\t"), (S{"Hey", "man!"}));
        QCOMPARE(split({{"type", "BertPreTokenizer"}}, "Hey, man"), (S{"Hey", ",", "man"}));

        VERIFY_THROWS(qpruner::FormatError, qpruner::HfPreTokenizer::parse({{"type", "UnicodeScripts"}}, where),
                      "t.json: pre_tokenizer type 'UnicodeScripts' is not supported");
        VERIFY_THROWS(qpruner::FormatError, qpruner::HfPreTokenizer::parse(regex("[a-"), where),
                      "t.json: pre_tokenizer: Split: regex '[a-' is not valid");
        VERIFY_THROWS(qpruner::FormatError, qpruner::HfPreTokenizer::parse(splitOn("Sideways", false), where),
                      "split behavior 'Sideways' is unknown");
        VERIFY_THROWS(qpruner::FormatError, qpruner::HfPreTokenizer::parse(metaspace("sometimes", true), where),
                      "prepend_scheme 'sometimes' is unknown");
    }

    // The hand-written matchers (HfSplitPattern's three regexes, DeepSeek-V3's word regex) against ICU's regex
    // engine running the same pattern (wrapped in a group, which skips the fast path) on WikiText-2 and on random
    // strings of awkward characters.
    void hfRegexFastPaths()
    {
        QPRUNER_SHARED_FILE(wikiPath, "text/wikitext-2-raw/wiki.test.raw");
        const std::string wiki = readBytes(wikiPath).substr(0, 100000);
        const std::vector<std::string> alphabet = {
            "a", "Z", "1", "7", " ", "  ", "\t", "\n", "\r", "\x0B", "'", "s", "'S", "-", "(", "$", "_", ".", "!?",
            "\xC3\xA9", "e\xCC\x81", "\xCC\x81", "\xE4\xB8\x80", "\xE3\x81\x82", "\xD9\xA3", "\xC2\xA0",
            "\xC2\x85", "\xE2\x80\xA8", "\xF0\x9F\x98\x80", "\xE2\x82\xAC", "\xC2\xBD", "\x01", "\xEF\xBB\xBF"};
        std::mt19937 rng(7);
        std::vector<std::string> texts{wiki};
        for (int t = 0; t < 300; ++t) {
            std::string text;
            const int len = static_cast<int>(rng() % 24);
            for (int k = 0; k < len; ++k)
                text += alphabet[rng() % alphabet.size()];
            texts.push_back(text);
        }
        const std::vector<std::string> patterns = {
            std::string(qpruner::HfRegex::kDeepSeekV3Words), std::string(qpruner::HfSplitPattern::llama3().regex()),
            std::string(qpruner::HfSplitPattern::qwen2().regex()), std::string(qpruner::HfSplitPattern::gpt2().regex())};
        for (std::size_t p = 0; p < patterns.size(); ++p) {
            const qpruner::HfRegex icu("(?:" + patterns[p] + ")", "test");
            const qpruner::HfRegex fastRegex(patterns[p], "test");
            const auto fastSplit = qpruner::HfSplitPattern::fromRegex(patterns[p]);
            QVERIFY(p == 0 || fastSplit.has_value());
            for (const std::string& text : texts) {
                const auto want = icu.findAll(text);
                std::vector<std::pair<std::size_t, std::size_t>> got;
                if (p == 0) {
                    got = fastRegex.findAll(text);
                } else {
                    for (const std::string_view v : fastSplit->split(text)) {
                        const auto b = static_cast<std::size_t>(v.data() - text.data());
                        got.emplace_back(b, b + v.size());
                    }
                }
                QVERIFY2(got == want, (patterns[p].substr(0, 30) + " differs from ICU on '" + text.substr(0, 60) + "'").c_str());
            }
        }
    }

    void hfDecoders()
    {
        using nlohmann::json;
        using S = std::vector<std::string>;
        const std::string where = "tokenizer file t.json: decoder";
        auto decode = [&](const json& config, const S& tokens) {
            return qpruner::HfDecoder::parse(config, where).decode(tokens);
        };
        const json mistral = json::parse(R"({"type":"Sequence","decoders":[
            {"type":"Replace","pattern":{"String":"\u2581"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},
            {"type":"Strip","content":" ","start":1,"stop":0}]})");
        const std::string m = "\xE2\x96\x81";
        QCOMPARE(decode(mistral, {m + "Hey", m, "<0xE2>", "<0x82>", "<0xAC>", "!"}), std::string("Hey \xE2\x82\xAC!"));
        QCOMPARE(decode(mistral, {m + m + "x"}), std::string(" x"));
        // Bytes that are not valid UTF-8 become one U+FFFD each.
        QCOMPARE(decode({{"type", "ByteFallback"}}, {"<0xE2>", "<0x82>", "a"}), std::string("\xEF\xBF\xBD\xEF\xBF\xBD" "a"));
        QCOMPARE(decode({{"type", "ByteLevel"}}, {"\xC4\xA0hello", "\xC4\x8A"}), std::string(" hello\n"));
        QCOMPARE(decode({{"type", "Strip"}, {"content", "x"}, {"start", 2}, {"stop", 1}}, {"xxxaxx", "b"}), std::string("xaxb"));
        QCOMPARE(decode({{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "always"}}, {m + "Hey", m + "friend"}),
                 std::string("Hey friend"));
        QCOMPARE(decode({{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "never"}}, {m + "Hey", m + "friend"}),
                 std::string(" Hey friend"));
        QCOMPARE(decode({{"type", "BPEDecoder"}, {"suffix", "</w>"}}, {"hel", "lo</w>", "wor", "ld</w>"}),
                 std::string("hello world"));
        QCOMPARE(decode(json::parse(R"({"type":"Replace","pattern":{"Regex":"_+"},"content":"-"})"), {"a__b", "_"}),
                 std::string("a-b-"));
        VERIFY_THROWS(qpruner::FormatError, qpruner::HfDecoder::parse({{"type", "CTC"}}, where),
                      "t.json: decoder type 'CTC' is not supported");
        VERIFY_THROWS(qpruner::FormatError,
                      qpruner::HfDecoder::parse({{"type", "Strip"}, {"content", "ab"}, {"start", 1}, {"stop", 0}}, where),
                      "Strip content 'ab' is not one character");
    }

    // A SentencePiece-style BPE tokenizer.json (Mistral's layout: Prepend + Replace normalizer, no pre-tokenizer,
    // byte_fallback, unk_token with fuse_unk, Replace/ByteFallback/Fuse/Strip decoder).
    void hfSentencePieceStyleBpe()
    {
        const auto path = fixture("bpe_spm_style.json");
        const auto tok = qpruner::loadTokenizer(path);
        QCOMPARE(tok->kind(), std::string("hf-bpe"));
        QCOMPARE(tok->bosId(), 1);
        QCOMPARE(tok->eosId(), 2);
        QCOMPARE(tok->vocabSize(), 277);
        COMPARE_IDS(tok->encode("hello world"), (Ids{268, 276}), "hello world");
        COMPARE_IDS(tok->encode("hello world", true, true), (Ids{1, 268, 276, 2}), "with BOS/EOS");
        // Each stretch between special tokens gets the prefix U+2581.
        COMPARE_IDS(tok->encode("<s>hello</s>world"), (Ids{1, 268, 2, 276}), "special tokens");
        // 'x' is not in the vocabulary: its byte 0x78 as <0x78>; 'é' as <0xC3> <0xA9>.
        COMPARE_IDS(tok->encode("hex\xC3\xA9"), (Ids{265, 3 + 0x78, 3 + 0xC3, 3 + 0xA9}), "byte fallback");
        COMPARE_IDS(tok->encode("  hello"), (Ids{259, 259, 268}), "leading spaces");
        for (const std::string text : {"hello world", " hello  world ", "x\xC3\xA9\xF0\x9F\x98\x80 \n\thello", ""})
            QCOMPARE(tok->decode(tok->encode(text)), text);

        QTemporaryDir dir;
        const auto variant = [&](const std::function<void(nlohmann::json&)>& edit) {
            nlohmann::json j = nlohmann::json::parse(readBytes(path));
            edit(j);
            const auto p = std::filesystem::path(dir.path().toStdString()) / "tokenizer.json";
            writeBytes(p, j.dump());
            return qpruner::loadTokenizer(p);
        };
        // Without byte_fallback unknown characters become <unk>, consecutive ones fused with fuse_unk.
        const auto unk = variant([](auto& j) { j["model"]["byte_fallback"] = false; });
        COMPARE_IDS(unk->encode("hxxo"), (Ids{264, 0, 263}), "fused unk");
        const auto unfused = variant([](auto& j) {
            j["model"]["byte_fallback"] = false;
            j["model"]["fuse_unk"] = false;
        });
        COMPARE_IDS(unfused->encode("hxxo"), (Ids{264, 0, 0, 263}), "unfused unk");
        // Metaspace pre-tokenizer instead of the normalizer: same ids.
        const auto meta = variant([](auto& j) {
            j["normalizer"] = nullptr;
            j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}, {"split", true}};
            j["decoder"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}};
        });
        COMPARE_IDS(meta->encode("hello world"), (Ids{268, 276}), "Metaspace");
        QCOMPARE(meta->decode(meta->encode("hello world")), std::string("hello world"));
        // A normalized added token is found in the normalized text, as its content normalized ("\u2581ll" here).
        const auto added = variant([](auto& j) {
            j["added_tokens"].push_back({{"id", 277}, {"content", "ll"}, {"single_word", false}, {"lstrip", false},
                                         {"rstrip", false}, {"normalized", true}, {"special", false}});
        });
        COMPARE_IDS(added->encode("ll hello"), (Ids{277, 268}), "normalized added token");
        COMPARE_IDS(added->encode("hello"), (Ids{268}), "normalized added token inside a word");
        // continuing_subword_prefix: characters after the first are looked up with it, and a merge drops the
        // right side's prefix ("a" + "##b" -> "ab"); end_of_word_suffix marks the last character.
        const auto wordPiece = variant([](auto& j) {
            j = nlohmann::json::parse(R"({"model":{"type":"BPE","continuing_subword_prefix":"##",
                "vocab":{"a":0,"##b":1,"ab":2,"b":3,"##a":4,"<unk>":5},"merges":["a ##b"],"unk_token":"<unk>"},
                "pre_tokenizer":{"type":"WhitespaceSplit"}})");
        });
        COMPARE_IDS(wordPiece->encode("ab ba abc"), (Ids{2, 3, 4, 2, 5}), "continuing_subword_prefix");
        QCOMPARE(wordPiece->decode({2, 3, 4}), std::string("ab b ##a")); // no decoder: pieces joined by spaces
        const auto suffix = variant([](auto& j) {
            j = nlohmann::json::parse(R"({"model":{"type":"BPE","end_of_word_suffix":"</w>",
                "vocab":{"a":0,"b</w>":1,"ab</w>":2,"b":3,"a</w>":4},"merges":["a b</w>"]},
                "pre_tokenizer":{"type":"WhitespaceSplit"},"decoder":{"type":"BPEDecoder","suffix":"</w>"}})");
        });
        COMPARE_IDS(suffix->encode("ab ba"), (Ids{2, 3, 4}), "end_of_word_suffix");
        QCOMPARE(suffix->decode({2, 3, 4}), std::string("ab ba"));
        // Errors name the file and the part.
        VERIFY_THROWS(qpruner::FormatError, variant([](auto& j) { j["model"]["unk_token"] = "<nope>"; }),
                      "tokenizer.json: model.unk_token '<nope>' is not in the vocabulary");
        VERIFY_THROWS(qpruner::FormatError, variant([](auto& j) { j["normalizer"]["normalizers"][1]["type"] = "Shout"; }),
                      "tokenizer.json: normalizer type 'Shout' is not supported");
        VERIFY_THROWS(qpruner::FormatError, variant([](auto& j) { j["decoder"]["decoders"][3]["type"] = "CTC"; }),
                      "tokenizer.json: decoder type 'CTC' is not supported");
        const std::string text = readBytes(path);
        const auto truncated = std::filesystem::path(dir.path().toStdString()) / "cut.json";
        writeBytes(truncated, text.substr(0, text.size() * 2 / 3));
        VERIFY_THROWS(qpruner::FormatError, qpruner::loadTokenizer(truncated), "cut.json is not a valid tokenizer.json");
    }
};

QTEST_APPLESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
