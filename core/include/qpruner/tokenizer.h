// Tokenizer interface (torch-free). Implementations: SentencePiece .model (BPE with byte fallback, precompiled
// character maps), llama2.c tokenizer.bin, and Hugging Face tokenizer.json BPE (byte-level as GPT-2 / Llama-3 /
// Qwen / DeepSeek-V3, or SentencePiece-style as Mistral / Gemma, with the file's normalizer, pre-tokenizer and
// decoder); a GGUF model's "llama" vocabulary is read as a SentencePiece model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qpruner {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // Token ids of `text`. BOS/EOS are added only when asked; the model's normalizer (dummy prefix,
    // whitespace handling) is applied as the original library does.
    virtual std::vector<int32_t> encode(std::string_view text, bool addBos = false,
                                        bool addEos = false) const = 0;
    // Text of a sequence of ids (BOS/EOS dropped, byte pieces reassembled into UTF-8).
    virtual std::string decode(const std::vector<int32_t>& ids) const = 0;

    virtual int32_t vocabSize() const = 0;
    virtual int32_t bosId() const = 0; // -1 when the tokenizer has none
    virtual int32_t eosId() const = 0; // -1 when the tokenizer has none
    virtual std::string piece(int32_t id) const = 0; // the vocabulary entry, as stored
    virtual std::string kind() const = 0;            // "sentencepiece", "llama2c" or "hf-bpe"
};

// Loads a tokenizer, choosing the reader from the file: a SentencePiece `.model`, a llama2.c `.bin`, a
// `tokenizer.json` (or a directory holding one of `tokenizer.model` / `tokenizer.json` / `tokenizer.bin`), or a
// `.gguf` model (or a file starting with the "GGUF" magic) whose tokenizer.ggml.* metadata holds a "llama"
// vocabulary (a "gpt2" one is refused: pass its tokenizer.json).
// Throws FileError / FormatError naming the file and the problem.
std::unique_ptr<Tokenizer> loadTokenizer(const std::filesystem::path& path);

// The tokenizer file for a model: the model itself when it is a `.gguf` file (its vocabulary is in its metadata),
// else beside it (in its directory, or the file's directory): tokenizer.model / .json / .bin, else tok*.model,
// else tok*.bin. Throws ConfigError when there is none.
std::filesystem::path findTokenizerBeside(const std::filesystem::path& model);

} // namespace qpruner
