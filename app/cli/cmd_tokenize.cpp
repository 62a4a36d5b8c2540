// qpruner tokenize: encode text or a file with a tokenizer, or decode ids.
#include <chrono>
#include <iostream>
#include <sstream>

#include "cli_context.h"
#include "commands.h"
#include "qpruner/error.h"

namespace qpruner::cli {

int runTokenize(const Args& args)
{
    ArgParser p("tokenize", "Encode TEXT (or --file) into token ids, or decode ids (--decode \"1,403,407\").");
    p.positional("TEXT", "text to encode", false);
    addTokenizerOption(p);
    p.option("file", "PATH", "encode this UTF-8 file instead of TEXT");
    p.option("decode", "IDS", "comma-separated ids to decode");
    p.flag("bos", "prepend BOS");
    p.flag("eos", "append EOS");
    p.flag("pieces", "also print the vocabulary piece of each id");
    p.flag("json", "print one JSON object");
    p.example("qpruner tokenize --tokenizer ../shared/data/models/stories260K/tok512.model \"Once upon a time\"");
    if (!p.parse(args))
        return 0;
    if (!p.find("tokenizer"))
        throw UsageError("--tokenizer is required");
    const auto tok = loadTokenizer(p.get("tokenizer"));
    if (auto ids = p.find("decode")) {
        std::vector<int32_t> v;
        std::stringstream ss(*ids);
        std::string item;
        while (std::getline(ss, item, ',')) {
            try {
                v.push_back(std::stoi(item));
            } catch (const std::exception&) {
                throw UsageError("--decode: '" + item + "' is not an integer id");
            }
            if (v.back() < 0 || v.back() >= tok->vocabSize())
                throw UsageError("--decode: id " + item + " is outside the vocabulary (0.." +
                                 std::to_string(tok->vocabSize() - 1) + ")");
        }
        const std::string text = tok->decode(v);
        if (p.isSet("json"))
            printJson({{"text", text}, {"ids", v}});
        else
            std::cout << text << "\n";
        return 0;
    }
    std::string text;
    if (auto f = p.find("file"))
        text = readTextFile(*f);
    else if (auto t = p.find("TEXT"))
        text = *t;
    else
        throw UsageError("give TEXT, --file or --decode");
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok->encode(text, p.isSet("bos"), p.isSet("eos"));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (p.isSet("json")) {
        nlohmann::json j = {{"ids", ids}, {"count", ids.size()}, {"bytes", text.size()}, {"seconds", secs},
                            {"tokenizer", tok->kind()}};
        if (p.isSet("pieces")) {
            std::vector<std::string> pieces;
            for (auto id : ids)
                pieces.push_back(tok->piece(id));
            j["pieces"] = pieces;
        }
        printJson(j);
        return 0;
    }
    if (p.find("file")) {
        std::cout << ids.size() << " tokens from " << text.size() << " bytes in " << secs << " s\n";
        return 0;
    }
    for (size_t i = 0; i < ids.size(); ++i) {
        std::cout << ids[i];
        if (p.isSet("pieces"))
            std::cout << "\t" << tok->piece(ids[i]);
        std::cout << (p.isSet("pieces") ? "\n" : (i + 1 < ids.size() ? " " : "\n"));
    }
    return 0;
}

} // namespace qpruner::cli
