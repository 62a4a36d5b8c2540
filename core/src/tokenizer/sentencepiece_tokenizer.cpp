// SentencePiece BPE encoding and decoding (see sentencepiece_tokenizer.h). The encoder follows
// bpe_model.cc Model::SampleEncode (without dropout) and SentencePieceProcessor's byte fallback; the
// decoder follows SentencePieceProcessor::Decode.
#include "tokenizer/sentencepiece_tokenizer.h"

#include "qpruner/error.h"
#include "io/file_bytes.h"
#include "tokenizer/pair_merger.h"
#include "tokenizer/utf8.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <unordered_map>

namespace qpruner {

namespace {

using PieceType = SentencePieceModel::PieceType;

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81"; // U+2581

std::string replaceSpaceSymbols(std::string_view piece)
{
    std::string out;
    out.reserve(piece.size());
    while (!piece.empty()) {
        if (piece.starts_with(kSpaceSymbol)) {
            out += ' ';
            piece.remove_prefix(kSpaceSymbol.size());
        } else {
            out += piece.front();
            piece.remove_prefix(1);
        }
    }
    return out;
}

// Bytes of a run of byte pieces, character by character; a byte that starts no valid UTF-8 character
// becomes U+FFFD, as libsentencepiece decodes it.
void appendByteRun(std::string& out, std::string_view bytes)
{
    while (!bytes.empty()) {
        const Utf8Char c = decodeUtf8(bytes);
        if (c.valid)
            out.append(bytes.substr(0, c.length));
        else
            out.append("\xEF\xBF\xBD");
        bytes.remove_prefix(c.length);
    }
}

} // namespace

SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceModel model, std::string fileName)
    : model_(std::move(model)), fileName_(std::move(fileName))
{
    model_.checkSupported(fileName_);
    std::vector<std::string> userDefined;
    byteIds_.fill(-1);
    for (std::size_t i = 0; i < model_.pieces.size(); ++i) {
        const auto& p = model_.pieces[i];
        const auto id = static_cast<std::int32_t>(i);
        const bool mergeable =
            p.type == PieceType::Normal || p.type == PieceType::UserDefined || p.type == PieceType::Unused;
        auto& map = mergeable ? mergeable_ : reserved_;
        if (!map.insert(p.text, id))
            throw FormatError("tokenizer file " + fileName_ + ": piece '" + p.text + "' (id " +
                              std::to_string(id) + ") is defined twice");
        if (p.type == PieceType::UserDefined)
            userDefined.push_back(p.text);
        if (p.type == PieceType::Unused)
            hasUnused_ = true;
        if (p.type == PieceType::Unknown)
            unkId_ = id;
        if (p.type == PieceType::Byte)
            byteIds_[bytePieceValue(p.text)] = id;
    }
    userDefined_ = PrefixMatcher(userDefined);
    // Characters that begin or end some longer mergeable piece; any other character can never merge.
    for (const auto& piece : model_.pieces) {
        if (piece.type != PieceType::Normal && piece.type != PieceType::UserDefined && piece.type != PieceType::Unused)
            continue;
        const std::string_view text = piece.text;
        const std::size_t first = std::min(text.size(), utf8LengthFromLeadByte(static_cast<unsigned char>(text[0])));
        if (first == text.size())
            continue;
        std::size_t last = text.size() - 1;
        while (last > 0 && (static_cast<unsigned char>(text[last]) & 0xC0) == 0x80)
            --last;
        for (std::size_t at = text.find(kSpaceSymbol, 1); at != std::string_view::npos;
             at = text.find(kSpaceSymbol, at + 1)) {
            std::size_t prev = at - 1;
            while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80)
                --prev;
            beforeSpaceSymbol_.emplace(text.substr(prev, at - prev));
        }
        for (const std::string_view c : {text.substr(0, first), text.substr(last)}) {
            if (c.size() == 1)
                extendableBytes_[static_cast<unsigned char>(c[0])] = true;
            else
                extendableChars_.emplace(c);
        }
    }
    normalizer_ = std::make_unique<SentencePieceNormalizer>(model_, userDefined_, fileName_);
    bosId_ = checkedSpecialId(pieceToId(model_.bosPiece));
    eosId_ = checkedSpecialId(pieceToId(model_.eosPiece));
}

bool SentencePieceTokenizer::isExtendable(std::string_view symbol) const
{
    if (symbol.size() == 1)
        return extendableBytes_[static_cast<unsigned char>(symbol[0])];
    return extendableChars_.contains(std::string(symbol));
}

std::int32_t SentencePieceTokenizer::checkedSpecialId(std::int32_t id) const
{
    // libsentencepiece reports BOS/EOS only when the named piece exists as a control symbol.
    return model_.pieces[id].type == PieceType::Control ? id : -1;
}

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::fromFile(const std::filesystem::path& path)
{
    const std::string bytes = io::readFileBytes(path);
    if (bytes.empty())
        throw FileError("tokenizer file " + path.string() + " is empty");
    return std::make_unique<SentencePieceTokenizer>(SentencePieceModel::parse(bytes, path.string()),
                                                    path.string());
}

std::int32_t SentencePieceTokenizer::pieceToId(std::string_view piece) const
{
    if (const std::int32_t id = reserved_.find(piece); id >= 0)
        return id;
    if (const std::int32_t id = mergeable_.find(piece); id >= 0)
        return id;
    return unkId_;
}

std::string SentencePieceTokenizer::piece(std::int32_t id) const
{
    if (id < 0 || id >= vocabSize())
        throw FormatError("token id " + std::to_string(id) + " out of range for " + fileName_ + " (vocabulary of " +
                          std::to_string(vocabSize()) + ")");
    return model_.pieces[id].text;
}

std::vector<std::int32_t> SentencePieceTokenizer::encode(std::string_view text, bool addBos, bool addEos) const
{
    const std::string normalized = normalizer_->normalize(text);
    if (normalized.size() >= static_cast<std::size_t>(INT32_MAX))
        throw FormatError("text of " + std::to_string(text.size()) + " bytes is too long to tokenize at once");

    // Initial symbols: user-defined symbols (frozen) or single UTF-8 characters.
    std::vector<MergeSymbol> symbols;
    symbols.reserve(normalized.size());
    for (std::size_t pos = 0; pos < normalized.size();) {
        const std::string_view rest = std::string_view(normalized).substr(pos);
        MergeSymbol s;
        s.begin = pos;
        s.size = userDefined_.longestMatch(rest);
        s.frozen = s.size > 0;
        if (!s.frozen)
            s.size = std::min(rest.size(), utf8LengthFromLeadByte(static_cast<unsigned char>(rest[0])));
        symbols.push_back(s);
        pos += s.size;
    }

    // Unused pieces may be formed as intermediate merges but are split back into the pieces they came from.
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> reverseMerge;
    const std::string_view buf(normalized);
    auto slice = [&](const MergeSymbol& s) { return buf.substr(s.begin, s.size); };
    auto find = [&](const MergeSymbol& l, const MergeSymbol& r) -> std::optional<MergeChoice> {
        const std::string_view merged = buf.substr(l.begin, l.size + r.size);
        const std::int32_t id = mergeable_.find(merged);
        if (id < 0)
            return std::nullopt;
        const auto& p = model_.pieces[id];
        if (p.type == PieceType::Unused)
            reverseMerge[merged] = {slice(l), slice(r)};
        return MergeChoice{p.score, id};
    };
    std::vector<std::int32_t> ids;
    ids.reserve(symbols.size() + 2);
    if (addBos && bosId_ >= 0)
        ids.push_back(bosId_);
    auto emit = [&](std::string_view piece, std::int32_t id) {
        if (id == unkId_ && model_.byteFallback) {
            for (const char c : piece)
                ids.push_back(byteIds_[static_cast<unsigned char>(c)]);
        } else {
            ids.push_back(id);
        }
    };
    std::function<void(std::string_view)> resegment = [&](std::string_view piece) {
        const std::int32_t id = pieceToId(piece);
        if (!hasUnused_ || model_.pieces[id].type != PieceType::Unused) {
            emit(piece, id);
            return;
        }
        const auto it = reverseMerge.find(piece);
        if (it == reverseMerge.end()) {
            emit(piece, id);
            return;
        }
        resegment(it->second.first);
        resegment(it->second.second);
    };
    PairMerger merger;
    if (hasUnused_) {
        // The reverse-merge table depends on the global order of lookups: keep one queue.
        merger.merge(symbols, StaleCheck::BySize, find);
        for (const MergeSymbol& s : symbols)
            if (s.size > 0)
                resegment(slice(s));
    } else {
        // Words: cut before each U+2581 that no mergeable piece joins to the character before it; each word's
        // stretches between never-merging symbols merge independently, and repeated words come from a cache.
        auto isBarrier = [&](const MergeSymbol& sym) { return sym.frozen || !isExtendable(slice(sym)); };
        std::unordered_map<std::string_view, std::pair<std::size_t, std::size_t>> cache; // word -> ids range
        constexpr std::size_t kMaxCachedWord = 256;
        auto word = [&](std::size_t a, std::size_t b) {
            if (a == b)
                return;
            const std::size_t from = symbols[a].begin;
            const std::string_view text = buf.substr(from, symbols[b - 1].begin + symbols[b - 1].size - from);
            const bool cacheable = text.size() <= kMaxCachedWord;
            if (cacheable) {
                if (const auto it = cache.find(text); it != cache.end()) {
                    const auto [first, count] = it->second;
                    for (std::size_t k = 0; k < count; ++k) {
                        const std::int32_t id = ids[first + k];
                        ids.push_back(id);
                    }
                    return;
                }
            }
            const std::size_t before = ids.size();
            merger.mergeStretches(std::span(symbols).subspan(a, b - a), StaleCheck::BySize, isBarrier, find);
            for (std::size_t k = a; k < b; ++k)
                if (symbols[k].size > 0)
                    resegment(slice(symbols[k]));
            if (cacheable)
                cache.emplace(text, std::make_pair(before, ids.size() - before));
        };
        std::size_t start = 0;
        for (std::size_t i = 1; i < symbols.size(); ++i) {
            const MergeSymbol& prev = symbols[i - 1];
            if (!symbols[i].frozen && !prev.frozen && slice(symbols[i]) == kSpaceSymbol &&
                !beforeSpaceSymbol_.contains(std::string(slice(prev)))) {
                word(start, i);
                start = i;
            }
        }
        word(start, symbols.size());
    }
    if (addEos && eosId_ >= 0)
        ids.push_back(eosId_);
    return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<std::int32_t>& ids) const
{
    std::string out;
    std::string byteRun;
    // The dummy prefix is taken off the first piece that starts the text. When the normalizer removes extra
    // whitespace, every U+2581 that would start the text goes, since encoding could never have produced it.
    bool expectBosSpace = true;
    bool bosSpaceSeen = false;
    const bool stripDummyPrefix = model_.addDummyPrefix || model_.removeExtraWhitespaces;
    for (const std::int32_t id : ids) {
        if (id < 0 || id >= vocabSize())
            throw FormatError("cannot decode token id " + std::to_string(id) + ": out of range for " + fileName_ +
                              " (vocabulary of " + std::to_string(vocabSize()) + ")");
        const auto& p = model_.pieces[id];
        if (p.type == PieceType::Byte) {
            byteRun += static_cast<char>(bytePieceValue(p.text));
            continue;
        }
        appendByteRun(out, byteRun);
        byteRun.clear();
        if (bosSpaceSeen || !out.empty())
            expectBosSpace = false;
        bosSpaceSeen = false;
        if (p.type == PieceType::Control)
            continue;
        if (p.type == PieceType::Unknown) {
            out += model_.unkSurface;
            continue;
        }
        std::string_view text = p.text;
        if (expectBosSpace && stripDummyPrefix && text.starts_with(kSpaceSymbol)) {
            text.remove_prefix(kSpaceSymbol.size());
            bosSpaceSeen = !model_.removeExtraWhitespaces;
        }
        out += replaceSpaceSymbols(text);
    }
    appendByteRun(out, byteRun);
    return out;
}

} // namespace qpruner
