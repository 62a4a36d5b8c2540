// Run exports: formatting here, file writing through QSaveFile.
#include "workspace/run_exports.h"

#include <QSaveFile>

#include <cmath>
#include <cstdio>

#include "qpruner/error.h"
#include "workspace/run_snapshot.h"

namespace qpruner::ui {

namespace {

QByteArray csvField(const std::string& text)
{
    const bool quote = text.find_first_of(",\"\r\n") != std::string::npos;
    if (!quote)
        return QByteArray::fromStdString(text);
    std::string out = "\"";
    for (char c : text) {
        if (c == '"')
            out += '"';
        out += c;
    }
    out += '"';
    return QByteArray::fromStdString(out);
}

std::string number(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v); // the C locale whatever the UI's is
    return buf;
}

std::string jsonText(const nlohmann::json& j)
{
    return j.is_null() ? std::string() : j.dump();
}

QString shellQuote(const std::string& arg)
{
    QString out = QStringLiteral("'");
    for (QChar c : QString::fromStdString(arg)) {
        if (c == QLatin1Char('\''))
            out += QStringLiteral("'\\''");
        else
            out += c;
    }
    return out + QLatin1Char('\'');
}

} // namespace

QByteArray trialsCsv(const std::vector<store::TrialRecord>& trials)
{
    QByteArray out = "number,state,source,objective,memory_bytes,budgeted_bytes,linear_bits_per_weight,"
                     "seconds_quantize,seconds_evaluate,seconds_surrogate,retry_of,finish_order,worker,started_at,"
                     "finished_at,error,encoding,metrics,map\r\n";
    for (const store::TrialRecord& t : trials) {
        std::string bpw;
        if (t.metrics.is_object() && t.metrics.contains("memory") && t.metrics["memory"].is_object() &&
            t.metrics["memory"].contains("linear_bits_per_weight"))
            bpw = number(t.metrics["memory"]["linear_bits_per_weight"].get<double>());
        const std::vector<std::string> fields = {
            std::to_string(t.number),
            store::trialStateName(t.state),
            t.source,
            t.objective ? number(*t.objective) : std::string(),
            std::to_string(t.memoryBytes),
            std::to_string(t.budgetedBytes),
            bpw,
            number(t.secondsQuantize),
            number(t.secondsEvaluate),
            number(t.secondsSurrogate),
            t.retryOf ? std::to_string(*t.retryOf) : std::string(),
            std::to_string(t.finishOrder),
            t.worker,
            t.startedAt,
            t.finishedAt,
            t.error,
            t.encoding,
            jsonText(t.metrics),
            jsonText(t.map),
        };
        for (size_t i = 0; i < fields.size(); ++i) {
            if (i)
                out += ',';
            out += csvField(fields[i]);
        }
        out += "\r\n";
    }
    return out;
}

QString llamaQuantizeScript(const PrecisionMap& map, const ModelConfig& config, const QString& title)
{
    const LlamaQuantizeArgs a = llamaQuantizeArgs(map, config, true);
    QString s = QStringLiteral("# %1\n").arg(title);
    s += QStringLiteral("# llama.cpp: reproduce this precision map on the model's f16 GGUF (closest ggml types, "
                        "see `qpruner memory --llama-quantize`).\n");
    s += QStringLiteral("llama-quantize");
    for (size_t i = 0; i < a.args.size(); ++i) {
        const bool flag = a.args[i].rfind("--", 0) == 0;
        s += flag ? QStringLiteral(" \\\n  ") : QStringLiteral(" ");
        s += flag ? QString::fromStdString(a.args[i]) : shellQuote(a.args[i]);
    }
    s += QStringLiteral(" \\\n  model-f16.gguf model-out.gguf %1\n").arg(QString::fromStdString(a.baseType));
    return s;
}

bool writeFileAtomically(const QString& path, const QByteArray& bytes, QString* error)
{
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size() || !file.commit()) {
        if (error)
            *error = QStringLiteral("%1: %2").arg(path, file.errorString());
        return false;
    }
    return true;
}

bool exportTrialsCsv(const QString& dbPath, qint64 runId, const QString& path, QString* error)
{
    try {
        return writeFileAtomically(path, trialsCsv(openWorkspaceReadOnly(dbPath)->trials(runId)), error);
    } catch (const std::exception& e) {
        if (error)
            *error = QString::fromUtf8(e.what());
        return false;
    }
}

} // namespace qpruner::ui
