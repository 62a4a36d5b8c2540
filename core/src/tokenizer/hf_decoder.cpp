// tokenizer.json decoders (see hf_decoder.h).
#include "tokenizer/hf_decoder.h"

#include "qpruner/error.h"
#include "tokenizer/hf_component.h"
#include "tokenizer/byte_level_alphabet.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/utf8.h"

#include <nlohmann/json.hpp>

namespace qpruner {

namespace {

using nlohmann::json;

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

bool validUtf8(std::string_view s)
{
    for (std::size_t i = 0; i < s.size();) {
        const Utf8Char c = decodeUtf8(s.substr(i));
        if (!c.valid)
            return false;
        i += c.length;
    }
    return true;
}

// The characters of a token as UTF-8 slices.
std::vector<std::string_view> chars(std::string_view s)
{
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = decodeUtf8(s.substr(i)).length;
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

} // namespace

HfDecoder HfDecoder::parse(const json& config, const std::string& where)
{
    HfDecoder d;
    forEachHfComponent(config, "decoders", where,
                       [&](const json& c, const std::string& type) { d.addStep(c, type, where); });
    return d;
}

void HfDecoder::addStep(const json& config, const std::string& type, const std::string& where)
{
    Step step{};
    if (type == "ByteLevel") {
        step.kind = Kind::ByteLevel;
    } else if (type == "ByteFallback") {
        step.kind = Kind::ByteFallback;
    } else if (type == "Fuse") {
        step.kind = Kind::Fuse;
    } else if (type == "Replace") {
        step.kind = Kind::Replace;
        step.content = config.at("content").get<std::string>();
        const json& pattern = config.at("pattern");
        if (pattern.contains("Regex"))
            step.regex = std::make_shared<HfRegex>(pattern["Regex"].get<std::string>(), where + ": Replace");
        else
            step.pattern = pattern.at("String").get<std::string>();
    } else if (type == "Strip") {
        step.kind = Kind::Strip;
        step.content = config.at("content").get<std::string>();
        const Utf8Char c = step.content.empty() ? Utf8Char{} : decodeUtf8(step.content);
        if (!c.valid || c.length != step.content.size())
            throw FormatError(where + ": Strip content '" + step.content + "' is not one character");
        step.start = config.value("start", std::size_t{0});
        step.stop = config.value("stop", std::size_t{0});
    } else if (type == "Metaspace") {
        step.kind = Kind::Metaspace;
        step.content = config.value("replacement", std::string("\xE2\x96\x81"));
        std::string scheme = config.value("prepend_scheme", std::string());
        if (scheme.empty())
            scheme = config.value("add_prefix_space", true) ? "always" : "never";
        step.prependFirst = scheme != "never";
    } else if (type == "BPEDecoder") {
        step.kind = Kind::Bpe;
        step.content = config.value("suffix", std::string("</w>"));
    } else {
        throw FormatError(where + " type '" + type +
                          "' is not supported (only Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, "
                          "Metaspace, BPEDecoder)");
    }
    steps_.push_back(std::move(step));
}

std::string HfDecoder::decode(std::vector<std::string> tokens) const
{
    for (const Step& step : steps_) {
        std::vector<std::string> next;
        next.reserve(tokens.size());
        switch (step.kind) {
        case Kind::ByteLevel: {
            // All tokens become one string of bytes; a token with a character outside the alphabet counts as itself.
            std::string bytes;
            for (const std::string& t : tokens)
                bytes += byteLevelAlphabet().bytesOf(t).value_or(t);
            next.push_back(std::move(bytes));
            break;
        }
        case Kind::Replace:
            for (const std::string& t : tokens) {
                std::string out;
                std::size_t last = 0;
                if (step.regex) {
                    for (const auto& [b, e] : step.regex->findAll(t)) {
                        out.append(t, last, b - last);
                        out += step.content;
                        last = e;
                    }
                } else if (!step.pattern.empty()) {
                    for (std::size_t hit; (hit = t.find(step.pattern, last)) != std::string::npos;) {
                        out.append(t, last, hit - last);
                        out += step.content;
                        last = hit + step.pattern.size();
                    }
                }
                out.append(t, last);
                next.push_back(std::move(out));
            }
            break;
        case Kind::ByteFallback: {
            std::string pending;
            auto flush = [&] {
                if (pending.empty())
                    return;
                if (validUtf8(pending))
                    next.push_back(pending);
                else
                    for (std::size_t i = 0; i < pending.size(); ++i)
                        next.emplace_back(kReplacementChar);
                pending.clear();
            };
            for (std::string& t : tokens) {
                const int byte = t.size() == 6 ? bytePieceValue(t) : -1;
                if (byte >= 0) {
                    pending += static_cast<char>(byte);
                } else {
                    flush();
                    next.push_back(std::move(t));
                }
            }
            flush();
            break;
        }
        case Kind::Fuse: {
            std::string all;
            for (const std::string& t : tokens)
                all += t;
            next.push_back(std::move(all));
            break;
        }
        case Kind::Strip:
            for (const std::string& t : tokens) {
                const auto cs = chars(t);
                std::size_t startCut = 0;
                for (std::size_t i = 0; i < std::min(step.start, cs.size()) && cs[i] == step.content; ++i)
                    startCut = i + 1;
                std::size_t stopCut = cs.size();
                for (std::size_t i = 0; i < step.stop && i < cs.size(); ++i) {
                    const std::size_t index = cs.size() - i - 1;
                    if (cs[index] != step.content)
                        break;
                    stopCut = index;
                }
                std::string out;
                for (std::size_t i = startCut; i < stopCut && i < cs.size(); ++i)
                    out += cs[i];
                next.push_back(std::move(out));
            }
            break;
        case Kind::Metaspace:
            for (std::size_t i = 0; i < tokens.size(); ++i) {
                std::string out;
                for (const std::string_view c : chars(tokens[i])) {
                    if (c == step.content) {
                        if (!(i == 0 && step.prependFirst))
                            out += ' ';
                    } else {
                        out += c;
                    }
                }
                next.push_back(std::move(out));
            }
            break;
        case Kind::Bpe:
            for (std::size_t i = 0; i < tokens.size(); ++i) {
                std::string out = tokens[i];
                for (std::size_t at; (at = out.find(step.content)) != std::string::npos;)
                    out.replace(at, step.content.size(), i + 1 == tokens.size() ? "" : " ");
                next.push_back(std::move(out));
            }
            break;
        }
        tokens = std::move(next);
    }
    std::string out;
    for (const std::string& t : tokens)
        out += t;
    return out;
}

} // namespace qpruner
