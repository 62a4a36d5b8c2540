// Hugging Face byte-level BPE (see hf_bpe_tokenizer.h). Encoding follows tokenizers' order of work:
// AddedVocabulary split, pre_tokenizer, BPE::merge_word (lowest merge rank first, leftmost on ties) and
// ignore_merges; decoding follows the ByteLevel decoder.
#include "tokenizer/hf_bpe_tokenizer.h"

#include "qpruner/error.h"
#include "io/file_bytes.h"
#include "tokenizer/pair_merger.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

#include <climits>

namespace qpruner {

namespace {

std::uint64_t pairKey(std::int32_t left, std::int32_t right)
{
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

// The character that ends just before `end` in `text` (one malformed byte when the bytes there do not end
// a valid UTF-8 character).
Utf8Char charBefore(std::string_view text, std::size_t end)
{
    std::size_t start = end - 1;
    while (start > 0 && end - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
        --start;
    const Utf8Char c = decodeUtf8(text.substr(start, end - start));
    return c.valid && c.length == end - start ? c : Utf8Char{0xFFFD, 1, false};
}

bool isWordChar(const Utf8Char& c)
{
    return c.valid && (c.codepoint == '_' || unicode::isLetter(c.codepoint) || unicode::isNumber(c.codepoint));
}

bool isSpaceChar(const Utf8Char& c) { return c.valid && unicode::isWhitespace(c.codepoint); }

} // namespace

HfBpeTokenizer::HfBpeTokenizer(HfTokenizerJson config, std::string fileName)
    : config_(std::move(config)), fileName_(std::move(fileName))
{
    std::int32_t maxId = -1;
    for (const auto& [piece, id] : config_.vocab)
        maxId = std::max(maxId, id);
    for (const auto& t : config_.addedTokens)
        maxId = std::max(maxId, t.id);
    pieces_.assign(static_cast<std::size_t>(maxId + 1), std::nullopt);
    decoded_.assign(pieces_.size(), std::nullopt);
    for (const auto& [piece, id] : config_.vocab) {
        if (pieces_[id])
            throw FormatError("tokenizer file " + fileName_ + ": model.vocab: id " + std::to_string(id) +
                              " is used by both '" + *pieces_[id] + "' and '" + piece + "'");
        pieces_[id] = piece;
        // Like the ByteLevel decoder: a piece with a character outside the byte alphabet decodes as itself.
        decoded_[id] = alphabet_.bytesOf(piece).value_or(piece);
    }
    // Added tokens take precedence, in decoding too (they may share an id with a vocabulary entry).
    std::vector<std::string> contents;
    for (std::size_t i = 0; i < config_.addedTokens.size(); ++i) {
        const auto& t = config_.addedTokens[i];
        pieces_[t.id] = t.content;
        decoded_[t.id] = t.content;
        addedByContent_[t.content] = i;
        contents.push_back(t.content);
    }
    addedMatcher_ = PrefixMatcher(contents);

    merges_.reserve(config_.merges.size());
    for (std::size_t rank = 0; rank < config_.merges.size(); ++rank) {
        const auto& m = config_.merges[rank];
        // Later duplicates win, as when tokenizers collects the merges into its map.
        merges_[pairKey(m.left, m.right)] = {static_cast<std::int32_t>(rank), m.merged};
    }
    for (int b = 0; b < 256; ++b) {
        const std::string& symbol = alphabet_.symbol(static_cast<unsigned char>(b));
        const auto it = config_.vocab.find(symbol);
        if (it == config_.vocab.end())
            throw FormatError("tokenizer file " + fileName_ + ": the vocabulary lacks the byte-level symbol '" +
                              symbol + "' of byte " + std::to_string(b));
        byteIds_[b] = it->second;
    }
}

std::unique_ptr<HfBpeTokenizer> HfBpeTokenizer::fromFile(const std::filesystem::path& path)
{
    const std::string text = io::readFileBytes(path);
    std::string config;
    const std::filesystem::path configPath = path.parent_path() / "tokenizer_config.json";
    std::error_code ec;
    if (std::filesystem::is_regular_file(configPath, ec))
        config = io::readFileBytes(configPath);
    return std::make_unique<HfBpeTokenizer>(HfTokenizerJson::parse(text, path.string(), config), path.string());
}

std::string HfBpeTokenizer::piece(std::int32_t id) const
{
    if (id < 0 || id >= vocabSize() || !pieces_[id])
        throw FormatError("token id " + std::to_string(id) + " is not in the vocabulary of " + fileName_);
    return *pieces_[id];
}

void HfBpeTokenizer::encodeWord(std::string_view bytes, std::vector<std::int32_t>& ids) const
{
    if (config_.ignoreMerges) {
        std::string spelled;
        for (const char c : bytes)
            spelled += alphabet_.symbol(static_cast<unsigned char>(c));
        if (const auto it = config_.vocab.find(spelled); it != config_.vocab.end()) {
            ids.push_back(it->second);
            return;
        }
    }
    std::vector<MergeSymbol> symbols(bytes.size());
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        symbols[i].begin = i;
        symbols[i].size = 1;
        symbols[i].id = byteIds_[static_cast<unsigned char>(bytes[i])];
    }
    PairMerger().merge(symbols, StaleCheck::ByLookup,
                       [&](const MergeSymbol& l, const MergeSymbol& r) -> std::optional<MergeChoice> {
                           const auto it = merges_.find(pairKey(l.id, r.id));
                           if (it == merges_.end())
                               return std::nullopt;
                           return MergeChoice{-static_cast<double>(it->second.first), it->second.second};
                       });
    for (const MergeSymbol& s : symbols)
        if (s.size > 0)
            ids.push_back(s.id);
}

void HfBpeTokenizer::encodeSegment(std::string_view segment, std::vector<std::int32_t>& ids, WordCache& cache) const
{
    if (segment.empty())
        return;
    std::vector<std::string> pieces{std::string(segment)};
    for (const auto& step : config_.preTokenizer) {
        std::vector<std::string> next;
        next.reserve(pieces.size());
        for (std::string& p : pieces) {
            if (step.byteLevel && step.addPrefixSpace && !p.starts_with(' '))
                p.insert(0, 1, ' ');
            if (step.pattern) {
                for (const std::string_view v : step.pattern->split(p))
                    next.emplace_back(v);
            } else if (!step.literal.empty()) {
                std::size_t start = 0;
                for (std::size_t hit; (hit = p.find(step.literal, start)) != std::string::npos;) {
                    if (hit > start)
                        next.push_back(p.substr(start, hit - start));
                    next.push_back(step.literal);
                    start = hit + step.literal.size();
                }
                if (start < p.size())
                    next.push_back(p.substr(start));
            } else {
                next.push_back(std::move(p));
            }
        }
        pieces = std::move(next);
    }
    for (const std::string& p : pieces) {
        if (p.empty())
            continue;
        auto [it, inserted] = cache.try_emplace(p);
        if (inserted)
            encodeWord(p, it->second);
        ids.insert(ids.end(), it->second.begin(), it->second.end());
    }
}

std::vector<std::int32_t> HfBpeTokenizer::encode(std::string_view text, bool addBos, bool addEos) const
{
    if (text.size() >= static_cast<std::size_t>(INT32_MAX))
        throw FormatError("text of " + std::to_string(text.size()) + " bytes is too long to tokenize at once");
    std::vector<std::int32_t> ids;
    ids.reserve(text.size() / 3 + 2);
    if (addBos && config_.bosId >= 0)
        ids.push_back(config_.bosId);
    WordCache cache;
    // Added tokens are found first, leftmost-longest, and the text between them is encoded normally.
    std::size_t segmentStart = 0;
    for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t len = addedMatcher_.longestMatch(text.substr(pos));
        if (len == 0) {
            ++pos;
            continue;
        }
        const auto& token = config_.addedTokens[addedByContent_.at(std::string(text.substr(pos, len)))];
        std::size_t start = pos, end = pos + len;
        if (token.singleWord && ((start > 0 && isWordChar(charBefore(text, start))) ||
                                 (end < text.size() && isWordChar(decodeUtf8(text.substr(end)))))) {
            ++pos;
            continue;
        }
        if (token.lstrip)
            while (start > segmentStart && isSpaceChar(charBefore(text, start)))
                start -= charBefore(text, start).length;
        if (token.rstrip)
            while (end < text.size() && isSpaceChar(decodeUtf8(text.substr(end))))
                end += decodeUtf8(text.substr(end)).length;
        encodeSegment(text.substr(segmentStart, start - segmentStart), ids, cache);
        ids.push_back(token.id);
        pos = segmentStart = end;
    }
    encodeSegment(text.substr(segmentStart), ids, cache);
    if (addEos && config_.eosId >= 0)
        ids.push_back(config_.eosId);
    return ids;
}

std::string HfBpeTokenizer::decode(const std::vector<std::int32_t>& ids) const
{
    std::string out;
    for (const std::int32_t id : ids) {
        if (id < 0 || id >= vocabSize() || !decoded_[id])
            throw FormatError("cannot decode token id " + std::to_string(id) + ": not in the vocabulary of " +
                              fileName_);
        if (id == config_.bosId || id == config_.eosId)
            continue;
        out += *decoded_[id];
    }
    return out;
}

} // namespace qpruner
