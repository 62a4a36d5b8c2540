// Hugging Face BPE (see hf_bpe_tokenizer.h). Encoding follows tokenizers' order of work:
// AddedVocabulary::extract_and_normalize (non-normalized added tokens, normalizer, normalized added tokens),
// pre_tokenizer, BPE::merge_word (characters or bytes, byte_fallback, unk_token / fuse_unk, then the lowest merge
// rank first, leftmost on ties) and ignore_merges; decoding runs the file's decoder.
#include "tokenizer/hf_bpe_tokenizer.h"

#include "qpruner/error.h"
#include "io/file_bytes.h"
#include "tokenizer/pair_merger.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

#include <climits>
#include <cstring>

namespace qpruner {

namespace {

constexpr char32_t kMetaspace = 0x2581;

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
    : config_(std::move(config)), fileName_(std::move(fileName)), byteLevel_(config_.byteLevel())
{
    std::int32_t maxId = -1;
    for (const auto& [piece, id] : config_.vocab)
        maxId = std::max(maxId, id);
    for (const auto& t : config_.addedTokens)
        maxId = std::max(maxId, t.id);
    pieces_.assign(static_cast<std::size_t>(maxId + 1), std::nullopt);
    for (const auto& [piece, id] : config_.vocab) {
        if (pieces_[id])
            throw FormatError("tokenizer file " + fileName_ + ": model.vocab: id " + std::to_string(id) +
                              " is used by both '" + *pieces_[id] + "' and '" + piece + "'");
        pieces_[id] = piece;
    }
    // Added tokens take precedence (they may share an id with a vocabulary entry).
    std::vector<std::string> rawContents, normalizedContents;
    for (std::size_t i = 0; i < config_.addedTokens.size(); ++i) {
        const auto& t = config_.addedTokens[i];
        pieces_[t.id] = t.content;
        if (t.normalized && config_.normalizer) {
            const std::string n = config_.normalizer->normalize(t.content);
            if (n.empty())
                continue;
            normalizedAdded_.byContent[n] = i;
            normalizedContents.push_back(n);
        } else {
            rawAdded_.byContent[t.content] = i;
            rawContents.push_back(t.content);
        }
    }
    rawAdded_.matcher = PrefixMatcher(rawContents);
    normalizedAdded_.matcher = PrefixMatcher(normalizedContents);

    // Like the ByteLevel decoder: a piece with a character outside the byte alphabet decodes as itself.
    if ((!config_.decoder && byteLevel_) || (config_.decoder && config_.decoder->isByteLevelOnly())) {
        decoded_.assign(pieces_.size(), std::nullopt);
        for (std::size_t id = 0; id < pieces_.size(); ++id)
            if (pieces_[id])
                decoded_[id] = alphabet_.bytesOf(*pieces_[id]).value_or(*pieces_[id]);
    }

    merges_.reserve(config_.merges.size());
    for (std::size_t rank = 0; rank < config_.merges.size(); ++rank) {
        const auto& m = config_.merges[rank];
        // Later duplicates win, as when tokenizers collects the merges into its map.
        merges_.set(m.left, m.right, static_cast<std::int32_t>(rank), m.merged);
    }
    inMerges_.assign(pieces_.size(), false);
    for (const auto& m : config_.merges)
        inMerges_[static_cast<std::size_t>(m.left)] = inMerges_[static_cast<std::size_t>(m.right)] = true;
    if (byteLevel_) {
        for (int b = 0; b < 256; ++b) {
            const std::string& symbol = alphabet_.symbol(static_cast<unsigned char>(b));
            const auto it = config_.vocab.find(symbol);
            if (it == config_.vocab.end())
                throw FormatError("tokenizer file " + fileName_ + ": the vocabulary lacks the byte-level symbol '" +
                                  symbol + "' of byte " + std::to_string(b));
            byteIds_[b] = it->second;
        }
    }
    asciiIds_.fill(-1);
    byteFallbackIds_.fill(-1);
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
        const std::string name = std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
        if (const auto it = config_.vocab.find(name); it != config_.vocab.end())
            byteFallbackIds_[b] = it->second;
    }
    for (const auto& [piece, id] : config_.vocab) {
        const Utf8Char c = decodeUtf8(piece);
        if (!c.valid || c.length != piece.size())
            continue;
        if (c.codepoint < 0x80)
            asciiIds_[c.codepoint] = id;
        else
            charIds_.emplace(c.codepoint, id);
    }
    if (!config_.unkToken.empty())
        unkId_ = config_.vocab.at(config_.unkToken);

    if (!byteLevel_ && !config_.ignoreMerges && config_.continuingSubwordPrefix.empty() &&
        config_.endOfWordSuffix.empty() && charIds_.contains(kMetaspace)) {
        beforeMetaspace_.emplace();
        for (const auto& m : config_.merges) {
            const std::string_view text = *pieces_[static_cast<std::size_t>(m.merged)];
            char32_t prev = 0;
            for (std::size_t i = 0; i < text.size();) {
                const Utf8Char c = decodeUtf8(text.substr(i));
                if (c.valid && c.codepoint == kMetaspace && i > 0)
                    (*beforeMetaspace_)[prev] = true;
                prev = c.valid ? c.codepoint : 0xFFFD;
                i += c.length;
            }
        }
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

void HfBpeTokenizer::encodeWord(std::string_view word, std::vector<std::int32_t>& ids) const
{
    if (config_.ignoreMerges) {
        std::string spelled;
        if (byteLevel_)
            for (const char c : word)
                spelled += alphabet_.symbol(static_cast<unsigned char>(c));
        if (const auto it = config_.vocab.find(byteLevel_ ? spelled : std::string(word)); it != config_.vocab.end()) {
            ids.push_back(it->second);
            return;
        }
    }
    thread_local std::vector<MergeSymbol> symbols;
    symbols.clear();
    if (byteLevel_) {
        symbols.resize(word.size());
        for (std::size_t i = 0; i < word.size(); ++i) {
            symbols[i].begin = i;
            symbols[i].size = 1;
            symbols[i].id = byteIds_[static_cast<unsigned char>(word[i])];
        }
    } else {
        // BPE::merge_word: each character (with continuing_subword_prefix / end_of_word_suffix) is a piece, else
        // its bytes as <0xNN> pieces, else the unknown piece (consecutive ones fused when fuse_unk).
        const bool affixes = !config_.continuingSubwordPrefix.empty() || !config_.endOfWordSuffix.empty();
        std::int32_t pendingUnk = -1;
        std::size_t unkBegin = 0, unkSize = 0;
        auto add = [&](std::size_t begin, std::size_t size, std::int32_t id) {
            MergeSymbol s;
            s.begin = begin;
            s.size = size;
            s.id = id;
            symbols.push_back(s);
        };
        auto flushUnk = [&] {
            if (pendingUnk >= 0)
                add(unkBegin, unkSize, pendingUnk);
            pendingUnk = -1;
        };
        for (std::size_t i = 0; i < word.size();) {
            const auto lead = static_cast<unsigned char>(word[i]);
            std::size_t length = 1;
            std::int32_t id = -1;
            if (lead < 0x80 && !affixes) {
                id = asciiIds_[lead];
            } else {
                const Utf8Char c = decodeUtf8(word.substr(i));
                length = c.length;
                if (affixes) {
                    std::string s(word.substr(i, length));
                    if (i > 0)
                        s.insert(0, config_.continuingSubwordPrefix);
                    if (i + length == word.size())
                        s += config_.endOfWordSuffix;
                    if (const auto it = config_.vocab.find(s); it != config_.vocab.end())
                        id = it->second;
                } else if (c.valid) {
                    if (const auto it = charIds_.find(c.codepoint); it != charIds_.end())
                        id = it->second;
                }
            }
            if (id >= 0) {
                flushUnk();
                add(i, length, id);
            } else {
                bool spelled = false;
                if (config_.byteFallback) {
                    spelled = true;
                    for (std::size_t k = 0; k < length; ++k)
                        spelled = spelled && byteFallbackIds_[static_cast<unsigned char>(word[i + k])] >= 0;
                    if (spelled)
                        for (std::size_t k = 0; k < length; ++k)
                            add(i + k, 1, byteFallbackIds_[static_cast<unsigned char>(word[i + k])]);
                }
                if (!spelled && unkId_ >= 0) {
                    if (pendingUnk >= 0 && config_.fuseUnk) {
                        unkSize += length;
                    } else {
                        flushUnk();
                        pendingUnk = unkId_;
                        unkBegin = i;
                        unkSize = length;
                    }
                }
            }
            i += length;
        }
        flushUnk();
    }
    // Symbols that no merge uses split the word into stretches that merge independently (smaller heaps: a
    // SentencePiece-style file without pre-tokenizer hands whole lines or documents over as one word).
    thread_local PairMerger merger;
    merger.mergeStretches(symbols, StaleCheck::ByLookup,
                 [&](const MergeSymbol& s) { return !inMerges_[static_cast<std::size_t>(s.id)]; },
                 [&](const MergeSymbol& l, const MergeSymbol& r) -> std::optional<MergeChoice> {
                     const PairTable::Entry* e = merges_.find(l.id, r.id);
                     if (!e)
                         return std::nullopt;
                     return MergeChoice{-static_cast<double>(e->rank), e->id};
                 });
    for (const MergeSymbol& s : symbols)
        if (s.size > 0)
            ids.push_back(s.id);
}

void HfBpeTokenizer::encodeNormalized(std::string_view text, bool atStart, std::vector<std::int32_t>& ids,
                                      WordCache& cache) const
{
    if (text.empty())
        return;
    constexpr std::size_t kMaxCachedWord = 256; // as tokenizers' BPE cache: long words are rarely repeated
    auto cachedWord = [&](std::string_view w) {
        if (w.size() > kMaxCachedWord) {
            encodeWord(w, ids);
            return;
        }
        auto [it, inserted] = cache.try_emplace(std::string(w));
        if (inserted)
            encodeWord(w, it->second);
        ids.insert(ids.end(), it->second.begin(), it->second.end());
    };
    auto word = [&](std::string_view w) {
        if (w.empty())
            return;
        if (!beforeMetaspace_ || w.size() <= kMaxCachedWord / 4) {
            cachedWord(w);
            return;
        }
        // Cut before each U+2581 that no merge joins to the character before it (both in the vocabulary).
        std::size_t start = 0;
        char32_t prev = 0;
        bool prevKnown = false;
        for (std::size_t i = 0; i < w.size();) {
            const Utf8Char c = decodeUtf8(w.substr(i));
            const bool known = c.valid && (c.codepoint < 0x80 ? asciiIds_[c.codepoint] >= 0 : charIds_.contains(c.codepoint));
            if (known && c.codepoint == kMetaspace && prevKnown && i > start && !beforeMetaspace_->contains(prev)) {
                cachedWord(w.substr(start, i - start));
                start = i;
            }
            prev = c.codepoint;
            prevKnown = known;
            i += c.length;
        }
        cachedWord(w.substr(start));
    };
    if (!config_.preTokenizer) {
        word(text);
        return;
    }
    thread_local std::vector<std::string> pieces;
    pieces.clear();
    config_.preTokenizer->split(text, atStart, pieces);
    for (const std::string& p : pieces)
        word(p);
}

void HfBpeTokenizer::encodeStretch(std::string_view stretch, bool atStart, std::vector<std::int32_t>& ids,
                                   WordCache& cache) const
{
    if (stretch.empty())
        return;
    if (!config_.normalizer) {
        encodeNormalized(stretch, atStart, ids, cache);
        return;
    }
    const std::string normalized = config_.normalizer->normalize(stretch);
    if (normalizedAdded_.matcher.empty()) {
        encodeNormalized(normalized, atStart, ids, cache);
        return;
    }
    splitAdded(
        normalized, normalizedAdded_,
        [&](std::string_view s, std::size_t offset) { encodeNormalized(s, atStart && offset == 0, ids, cache); },
        [&](std::int32_t id) { ids.push_back(id); });
}

void HfBpeTokenizer::splitAdded(std::string_view text, const AddedSet& set,
                                const std::function<void(std::string_view, std::size_t)>& onText,
                                const std::function<void(std::int32_t)>& onToken) const
{
    // Added tokens are found first, leftmost-longest, and the text between them is encoded normally.
    std::size_t segmentStart = 0;
    if (!set.matcher.empty()) {
        for (std::size_t pos = 0; pos < text.size();) {
            const std::size_t len = set.matcher.longestMatch(text.substr(pos));
            if (len == 0) {
                ++pos;
                continue;
            }
            const auto& token = config_.addedTokens[set.byContent.at(std::string(text.substr(pos, len)))];
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
            if (start > segmentStart)
                onText(text.substr(segmentStart, start - segmentStart), segmentStart);
            onToken(token.id);
            pos = segmentStart = end;
        }
    }
    if (segmentStart < text.size())
        onText(text.substr(segmentStart), segmentStart);
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
    splitAdded(
        text, rawAdded_,
        [&](std::string_view s, std::size_t offset) { encodeStretch(s, offset == 0, ids, cache); },
        [&](std::int32_t id) { ids.push_back(id); });
    if (addEos && config_.eosId >= 0)
        ids.push_back(config_.eosId);
    return ids;
}

std::string HfBpeTokenizer::decode(const std::vector<std::int32_t>& ids) const
{
    std::vector<std::string> tokens;
    std::string out;
    for (const std::int32_t id : ids) {
        if (id < 0 || id >= vocabSize() || !pieces_[id])
            throw FormatError("cannot decode token id " + std::to_string(id) + ": not in the vocabulary of " +
                              fileName_);
        if (id == config_.bosId || id == config_.eosId)
            continue;
        if (!decoded_.empty())
            out += *decoded_[id];
        else
            tokens.push_back(*pieces_[id]);
    }
    if (!decoded_.empty())
        return out;
    if (config_.decoder)
        return config_.decoder->decode(std::move(tokens));
    for (std::size_t i = 0; i < tokens.size(); ++i)
        out += (i ? " " : "") + tokens[i];
    return out;
}

} // namespace qpruner
