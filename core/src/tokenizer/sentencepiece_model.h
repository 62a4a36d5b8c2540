// The parts of a SentencePiece ModelProto (sentencepiece_model.proto) that encoding and decoding need,
// read with ProtobufReader. Absent fields take their proto2 defaults, as libsentencepiece sees them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qpruner {

struct SentencePieceModel {
    enum class PieceType : std::int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };
    enum class ModelType : std::int32_t { Unigram = 1, Bpe = 2, Word = 3, Char = 4 };

    struct Piece {
        std::string text;
        float score = 0.0f;
        PieceType type = PieceType::Normal;
    };

    std::vector<Piece> pieces;

    // TrainerSpec (field 2)
    ModelType modelType = ModelType::Unigram;
    bool byteFallback = false;
    bool treatWhitespaceAsSuffix = false;
    std::string bosPiece = "<s>"; // libsentencepiece finds BOS/EOS by these names, not by bos_id/eos_id
    std::string eosPiece = "</s>";
    std::string unkSurface = " \xE2\x81\x87 "; // " ⁇ ", what decode prints for <unk>

    // NormalizerSpec (field 3)
    std::string normalizerName;
    std::string precompiledCharsmap;
    bool addDummyPrefix = true;
    bool removeExtraWhitespaces = true;
    bool escapeWhitespaces = true;

    // DenormalizerSpec (field 4): only checked, decoding rules are not supported.
    std::string denormalizerName;
    std::string denormalizerCharsmap;

    bool hasTrainerSpec = false;
    bool hasNormalizerSpec = false;

    // Parses a serialized ModelProto. `fileName` is used in error messages. Throws FileError when the data
    // ends early, FormatError when it is not a valid model.
    static SentencePieceModel parse(std::string_view bytes, const std::string& fileName);

    // Refuses, with a FormatError naming `fileName`, what libsentencepiece would refuse on load (empty or
    // missing unknown piece, byte pieces without byte_fallback, ...) and what this reader cannot reproduce
    // (unigram models, denormalization rules).
    void checkSupported(const std::string& fileName) const;
};

// The byte a piece such as "<0x41>" stands for, or -1 when `piece` is not a byte piece name.
int bytePieceValue(std::string_view piece);

} // namespace qpruner
