// One typed QSettings entry (after qBittorrent's SettingValue<T>): the key and its default are declared once,
// next to each other, and callers never handle QVariant or spell a key twice.
#pragma once

#include <QSettings>
#include <QString>
#include <QVariant>

#include <utility>

namespace qpruner::ui {

template <typename T>
class SettingValue {
public:
    SettingValue(QSettings& store, QString key, T defaultValue = T{})
        : store_(&store), key_(std::move(key)), default_(std::move(defaultValue))
    {
    }

    // A stored value of the wrong type (hand-edited file, older version) reads as the default.
    T get() const
    {
        const QVariant v = store_->value(key_);
        if (!v.isValid() || !v.canConvert<T>())
            return default_;
        return v.value<T>();
    }

    void set(const T& value) { store_->setValue(key_, QVariant::fromValue(value)); }
    void reset() { store_->remove(key_); }
    const QString& key() const { return key_; }

    operator T() const { return get(); }
    SettingValue& operator=(const T& value)
    {
        set(value);
        return *this;
    }

private:
    QSettings* store_;
    QString key_;
    T default_;
};

} // namespace qpruner::ui
