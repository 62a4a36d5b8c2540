// loadTokenizer(): picks the reader for a tokenizer file or model directory (see qpruner/tokenizer.h).
#include "export/gguf_vocab.h"
#include "qpruner/error.h"
#include "qpruner/tokenizer.h"
#include "tokenizer/hf_bpe_tokenizer.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"

#include <fstream>
#include <string_view>

namespace qpruner {

namespace {

enum class Format { SentencePiece, HfJson, Llama2c, Gguf };

// For files whose extension says nothing: the "GGUF" magic, a JSON object, a protobuf starting with a pieces field
// (tag 0x0A), or a llama2.c header whose first int32 (max_token_length) is small and positive.
Format sniff(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    char head[4] = {};
    in.read(head, sizeof head);
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got == 4 && std::string_view(head, 4) == "GGUF")
        return Format::Gguf;
    std::size_t i = 0;
    while (i < got && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t'))
        ++i;
    if (i < got && head[i] == '{')
        return Format::HfJson;
    if (got >= 1 && head[0] == 0x0A)
        return Format::SentencePiece;
    if (got == 4) {
        const std::uint32_t v = static_cast<unsigned char>(head[0]) | static_cast<unsigned char>(head[1]) << 8 |
                                static_cast<unsigned char>(head[2]) << 16 |
                                static_cast<std::uint32_t>(static_cast<unsigned char>(head[3])) << 24;
        if (v > 0 && v <= 4096)
            return Format::Llama2c;
    }
    throw FormatError("cannot tell the format of tokenizer file " + path.string() +
                      " (expected a SentencePiece .model, a tokenizer.json, a llama2.c tokenizer .bin or a GGUF "
                      "model)");
}

} // namespace

std::unique_ptr<Tokenizer> loadTokenizer(const std::filesystem::path& path)
{
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw FileError("tokenizer path " + path.string() + " does not exist");
    if (std::filesystem::is_directory(path, ec)) {
        for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer.bin"})
            if (std::filesystem::is_regular_file(path / name, ec))
                return loadTokenizer(path / name);
        throw FileError("directory " + path.string() +
                        " has no tokenizer.model, tokenizer.json or tokenizer.bin");
    }
    const std::string ext = path.extension().string();
    Format format;
    if (ext == ".model")
        format = Format::SentencePiece;
    else if (ext == ".json")
        format = Format::HfJson;
    else if (ext == ".bin")
        format = Format::Llama2c;
    else if (ext == ".gguf")
        format = Format::Gguf;
    else
        format = sniff(path);
    switch (format) {
    case Format::SentencePiece: return SentencePieceTokenizer::fromFile(path);
    case Format::HfJson: return HfBpeTokenizer::fromFile(path);
    case Format::Llama2c: return Llama2cTokenizer::fromFile(path);
    case Format::Gguf: return gguf::tokenizerFromGguf(gguf::GgufFile::open(path));
    }
    throw FormatError("tokenizer file " + path.string() + ": unknown format");
}

std::filesystem::path findTokenizerBeside(const std::filesystem::path& model)
{
    if (model.extension() == ".gguf" && !std::filesystem::is_directory(model))
        return model; // a GGUF model carries its vocabulary (see gguf::tokenizerFromGguf)
    const auto dir = std::filesystem::is_directory(model) ? model : model.parent_path();
    for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer.bin"})
        if (std::filesystem::exists(dir / name))
            return dir / name;
    for (const char* ext : {".model", ".bin"}) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dir.empty() ? "." : dir, ec)) {
            const auto fn = e.path().filename().string();
            if (fn.rfind("tok", 0) == 0 && e.path().extension() == ext)
                return e.path();
        }
    }
    throw ConfigError("no tokenizer found beside " + model.string() + "; pass --tokenizer");
}

} // namespace qpruner
