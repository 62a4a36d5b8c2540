// A minimal protobuf wire-format reader, enough to read a SentencePiece ModelProto without libprotobuf (whose
// second copy inside libsentencepiece clashes with the one libtorch loads). It walks the fields of one
// message; nested messages are read by a new reader over the field's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qpruner {

class ProtobufReader {
public:
    enum class WireType : std::uint8_t { Varint = 0, Fixed64 = 1, Bytes = 2, StartGroup = 3, Fixed32 = 5 };

    struct Field {
        std::uint32_t number = 0;
        WireType type = WireType::Varint;
        std::uint64_t integer = 0; // Varint, Fixed64 and Fixed32 payloads
        std::string_view bytes;    // Bytes payload (and a group's raw content)
        std::size_t offset = 0;    // where the field's tag starts, from the start of the file

        // Typed views; each throws FormatError (naming `what`) when the wire type does not fit.
        std::int32_t asInt32(const std::string& what) const;
        bool asBool(const std::string& what) const;
        float asFloat(const std::string& what) const;
        std::string_view asBytes(const std::string& what) const;
    };

    // `context` names the file (and message) in error messages; `baseOffset` is where `data` starts in it.
    ProtobufReader(std::string_view data, std::string context, std::size_t baseOffset = 0);

    // Reads the next field into `field`; false at the end of the message. Throws FileError when a length or
    // varint runs past the end of the data (a truncated file), FormatError for impossible content.
    bool next(Field& field);

    const std::string& context() const { return context_; }

private:
    std::uint64_t readVarint(const char* what);
    void need(std::size_t count, const char* what) const;
    void skipGroup(std::uint32_t number);

    std::string_view data_;
    std::string context_;
    std::size_t base_ = 0;
    std::size_t pos_ = 0;
};

} // namespace qpruner
