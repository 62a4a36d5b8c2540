// llama2.c tokenizer.bin reading, encoding and decoding (see llama2c_tokenizer.h).
#include "tokenizer/llama2c_tokenizer.h"

#include "qpruner/error.h"
#include "io/file_bytes.h"
#include "tokenizer/pair_merger.h"

#include <bit>
#include <climits>
#include <cmath>
#include <cstdio>

namespace qpruner {

namespace {

constexpr std::int32_t kByteTokenOffset = 3; // <unk>, <s>, </s> come first, then <0x00>..<0xFF>
constexpr std::int32_t kBos = 1;
constexpr std::int32_t kEos = 2;
constexpr std::size_t kMaxInitialTokenLength = 6;
constexpr float kNoMergeScore = -1e10f; // run.c's initial best score: nothing at or below it ever merges

std::uint32_t readLe32(std::string_view bytes, std::size_t pos)
{
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
        v = (v << 8) | static_cast<unsigned char>(bytes[pos + i]);
    return v;
}

std::string bytePieceName(int byte)
{
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", byte);
    return name;
}

} // namespace

Llama2cTokenizer::Llama2cTokenizer(std::string_view bytes, std::string fileName) : fileName_(std::move(fileName))
{
    const std::string where = "tokenizer file " + fileName_;
    if (bytes.size() < 4)
        throw FileError(where + " is truncated: " + std::to_string(bytes.size()) +
                        " bytes, too short for the max_token_length header");
    maxTokenLength_ = static_cast<std::int32_t>(readLe32(bytes, 0));
    if (maxTokenLength_ <= 0)
        throw FormatError(where + ": max_token_length is " + std::to_string(maxTokenLength_) +
                          " (not a llama2.c tokenizer.bin?)");
    // The file does not store the vocabulary size: it holds as many entries as fit.
    for (std::size_t pos = 4; pos < bytes.size();) {
        const std::string entry = "entry " + std::to_string(vocab_.size()) + " at byte " + std::to_string(pos);
        if (bytes.size() - pos < 8)
            throw FileError(where + " is truncated: " + entry + " needs 8 header bytes, only " +
                            std::to_string(bytes.size() - pos) + " remain");
        const float score = std::bit_cast<float>(readLe32(bytes, pos));
        const auto len = static_cast<std::int32_t>(readLe32(bytes, pos + 4));
        pos += 8;
        if (len < 0)
            throw FormatError(where + ": " + entry + " has negative length " + std::to_string(len));
        if (static_cast<std::size_t>(len) > bytes.size() - pos)
            throw FileError(where + " is truncated: " + entry + " has length " + std::to_string(len) + " but only " +
                            std::to_string(bytes.size() - pos) + " bytes remain");
        vocab_.emplace_back(bytes.substr(pos, len));
        scores_.push_back(score);
        pos += len;
    }
    // run.c hard-codes BOS/EOS and the byte tokens at 3..258, so a file without them is not usable.
    if (vocab_.size() < 259)
        throw FormatError(where + " holds " + std::to_string(vocab_.size()) +
                          " entries; a llama2.c vocabulary has at least 259 (<unk>, <s>, </s>, 256 byte tokens)");
    for (int b = 0; b < 256; ++b)
        if (vocab_[b + kByteTokenOffset] != bytePieceName(b))
            throw FormatError(where + ": entry " + std::to_string(b + kByteTokenOffset) + " is '" +
                              vocab_[b + kByteTokenOffset] + "', expected the byte token " + bytePieceName(b));
    // On duplicate entries keep the lowest id (run.c's bsearch would return an arbitrary one).
    for (std::size_t i = 0; i < vocab_.size(); ++i)
        ids_.insert(vocab_[i], static_cast<std::int32_t>(i));
    dummyPrefixId_ = lookup(" ");
    // Which entries begin or end a longer entry. Initial tokens are at most 6 bytes long ("<0xAB>"), so
    // only prefixes and suffixes up to that length matter.
    extendable_.assign(vocab_.size(), false);
    for (const std::string& entry : vocab_) {
        const std::string_view e(entry);
        for (std::size_t k = 1; k < e.size() && k <= kMaxInitialTokenLength; ++k) {
            if (const std::int32_t id = lookup(e.substr(0, k)); id >= 0)
                extendable_[id] = true;
            if (const std::int32_t id = lookup(e.substr(e.size() - k)); id >= 0)
                extendable_[id] = true;
        }
    }
}

std::unique_ptr<Llama2cTokenizer> Llama2cTokenizer::fromFile(const std::filesystem::path& path)
{
    const std::string bytes = io::readFileBytes(path);
    return std::make_unique<Llama2cTokenizer>(bytes, path.string());
}

std::int32_t Llama2cTokenizer::lookup(std::string_view text) const
{
    return ids_.find(text);
}

std::string Llama2cTokenizer::piece(std::int32_t id) const
{
    if (id < 0 || id >= vocabSize())
        throw FormatError("token id " + std::to_string(id) + " out of range for " + fileName_ + " (vocabulary of " +
                          std::to_string(vocabSize()) + ")");
    return vocab_[id];
}

std::vector<std::int32_t> Llama2cTokenizer::encode(std::string_view text, bool addBos, bool addEos) const
{
    if (text.size() >= static_cast<std::size_t>(INT32_MAX) / 8)
        throw FormatError("text of " + std::to_string(text.size()) + " bytes is too long to tokenize at once");

    // Initial tokens, as run.c makes them. Their vocabulary strings are laid end to end in `buffer`, so that
    // the string of two neighbours, merged or not, is always one contiguous slice of it.
    std::string buffer;
    std::vector<MergeSymbol> symbols;
    symbols.reserve(text.size() + 1);
    auto push = [&](std::int32_t id) {
        MergeSymbol s;
        s.begin = buffer.size();
        s.size = vocab_[id].size();
        s.id = id;
        buffer += vocab_[id];
        symbols.push_back(s);
    };
    if (!text.empty()) {
        // A vocabulary without " " cannot follow run.c here (it would emit id -1): use the byte token.
        push(dummyPrefixId_ >= 0 ? dummyPrefixId_ : ' ' + kByteTokenOffset);
    }
    for (std::size_t pos = 0; pos < text.size();) {
        // run.c groups a byte with the continuation bytes after it, at most 4 bytes in all.
        std::size_t len = 1;
        while (pos + len < text.size() && len < 4 && (static_cast<unsigned char>(text[pos + len]) & 0xC0) == 0x80)
            ++len;
        const std::string_view unit = text.substr(pos, len);
        if (const std::int32_t id = lookup(unit); id >= 0) {
            push(id);
        } else {
            for (const char c : unit)
                push(static_cast<unsigned char>(c) + kByteTokenOffset);
        }
        pos += len;
    }

    const std::string_view buf(buffer);
    auto find = [&](const MergeSymbol& l, const MergeSymbol& r) -> std::optional<MergeChoice> {
        const std::int32_t id = lookup(buf.substr(l.begin, l.size + r.size));
        if (id < 0 || !(scores_[id] > kNoMergeScore))
            return std::nullopt;
        return MergeChoice{scores_[id], id};
    };
    // Tokens that can never merge (a newline's byte token, say) split the text into independent stretches.
    PairMerger merger;
    merger.mergeStretches(std::span(symbols), StaleCheck::BySize,
                          [&](const MergeSymbol& sym) { return !extendable_[sym.id]; }, find);

    std::vector<std::int32_t> ids;
    ids.reserve(symbols.size() + 2);
    if (addBos)
        ids.push_back(kBos);
    for (const MergeSymbol& s : symbols)
        if (s.size > 0)
            ids.push_back(s.id);
    if (addEos)
        ids.push_back(kEos);
    return ids;
}

std::string Llama2cTokenizer::decode(const std::vector<std::int32_t>& ids) const
{
    std::string out;
    // run.c strips the leading space of the piece after BOS; the dummy prefix is there whether or not the
    // sequence starts with BOS, so the first piece of the text loses it either way.
    bool atStart = true;
    for (const std::int32_t id : ids) {
        if (id < 0 || id >= vocabSize())
            throw FormatError("cannot decode token id " + std::to_string(id) + ": out of range for " + fileName_ +
                              " (vocabulary of " + std::to_string(vocabSize()) + ")");
        if (id == kBos || id == kEos)
            continue;
        if (id >= kByteTokenOffset && id < kByteTokenOffset + 256) {
            out += static_cast<char>(id - kByteTokenOffset);
            atStart = false;
            continue;
        }
        std::string_view piece = vocab_[id];
        if (atStart && piece.starts_with(' '))
            piece.remove_prefix(1);
        atStart = false;
        out += piece;
    }
    return out;
}

} // namespace qpruner
