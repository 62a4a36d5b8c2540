// The install tree and the Debian package of this build. `cmake --install` into a temporary root gives exactly the
// files packaging/Packaging.cmake lists, byte-identical to their sources; the installed binaries run from another
// working directory with every library found and no RPATH; the desktop entry and the AppStream metadata validate
// and name each other; `cpack -G DEB` builds qpruner-studio_<version>_<arch>.deb whose control fields, Depends
// (exactly the packages that own the binaries' DT_NEEDED libraries, plus libopenblas0-openmp) and file list match.
#include <QtTest/QtTest>

#include <QDirIterator>
#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QXmlStreamReader>

#include "test_data.h"

namespace {

constexpr bool kWithGui = QPRUNER_WITH_GUI;
const QString kAppId = QStringLiteral("io.github.qpruner.Studio");
const QString kPackage = QStringLiteral("qpruner-studio");
const QString kVersion = QStringLiteral(QPRUNER_VERSION);
// Needed at run time but named in no DT_NEEDED entry: libtorch reaches BLAS through the libblas.so.3 alternative.
const QString kRuntimeOnlyDepends = QStringLiteral("libopenblas0-openmp");

struct Run {
    int exitCode = -1;
    QByteArray out, err;
    QByteArray why() const { return "exit " + QByteArray::number(exitCode) + "\n" + out + err; }
};

// Runs `program` in `workDir` without LD_LIBRARY_PATH (installed binaries must find their libraries alone) or
// DESTDIR (which would redirect `cmake --install`).
Run run(const QString& program, const QStringList& args, const QString& workDir = {})
{
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.remove(QStringLiteral("LD_LIBRARY_PATH"));
    env.remove(QStringLiteral("DESTDIR"));
    p.setProcessEnvironment(env);
    p.setWorkingDirectory(workDir);
    p.start(program, args);
    if (!p.waitForStarted())
        return {-1, {}, "cannot start " + program.toUtf8()};
    if (!p.waitForFinished(120000))
        qFatal("%s did not finish in 120 s", qPrintable(program));
    const int code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    return {code, p.readAllStandardOutput(), p.readAllStandardError()};
}

// Prefix-relative path of each installed data file -> the source file it is a copy of.
QMap<QString, QString> installedCopies()
{
    const QString src = QStringLiteral(QPRUNER_SOURCE_DIR);
    QMap<QString, QString> copies = {{QStringLiteral("share/doc/qpruner-studio/README.md"), src + "/README.md"}};
    for (const char* config : {"stories260k-pruned.json", "stories260k-quick.json"})
        copies.insert(QStringLiteral("share/qpruner/examples/") + config, src + "/resources/configs/" + config);
    if (kWithGui) {
        copies.insert(QStringLiteral("share/applications/%1.desktop").arg(kAppId),
                      QStringLiteral("%1/packaging/%2.desktop").arg(src, kAppId));
        copies.insert(QStringLiteral("share/metainfo/%1.metainfo.xml").arg(kAppId),
                      QStringLiteral("%1/packaging/%2.metainfo.xml").arg(src, kAppId));
        copies.insert(QStringLiteral("share/icons/hicolor/scalable/apps/%1.svg").arg(kAppId),
                      src + "/resources/icons/qpruner-studio.svg");
        for (int size : {16, 32, 64, 128, 256})
            copies.insert(QStringLiteral("share/icons/hicolor/%1x%1/apps/%2.png").arg(size).arg(kAppId),
                          QStringLiteral("%1/resources/icons/qpruner-studio-%2.png").arg(src).arg(size));
    }
    return copies;
}

QStringList installedBinaries()
{
    return kWithGui ? QStringList{QStringLiteral("bin/qpruner"), QStringLiteral("bin/qpruner-studio")}
                    : QStringList{QStringLiteral("bin/qpruner")};
}

// Prefix-relative paths of every file the install puts there, sorted: the binaries and the copies.
QStringList expectedFiles()
{
    QStringList files = installedBinaries() + installedCopies().keys();
    files.sort();
    return files;
}

// For a failed comparison of two lists: "missing: ...; unexpected: ...".
QByteArray listDifference(const QStringList& actual, const QStringList& expected)
{
    QStringList missing, unexpected;
    for (const QString& e : expected)
        if (!actual.contains(e))
            missing << e;
    for (const QString& a : actual)
        if (!expected.contains(a))
            unexpected << a;
    return ("missing: " + missing.join(QStringLiteral(", ")) + "; unexpected: " + unexpected.join(QStringLiteral(", ")))
        .toUtf8();
}

// Paths of the files (and symlinks) under `root`, relative to it, sorted.
QStringList filesUnder(const QString& root)
{
    QStringList files;
    QDirIterator it(root, QDir::Files | QDir::Hidden | QDir::System, QDirIterator::Subdirectories);
    while (it.hasNext())
        files << QDir(root).relativeFilePath(it.next());
    files.sort();
    return files;
}

QByteArray readFile(const QString& path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

// Width and height from a PNG's IHDR chunk (big-endian, bytes 16..23); {0, 0} when it is no PNG.
QSize pngSize(const QByteArray& png)
{
    if (png.size() < 24 || !png.startsWith("\x89PNG\r\n\x1a\n") || png.mid(12, 4) != "IHDR")
        return {};
    const auto be32 = [&](int at) {
        return int((uchar(png[at]) << 24) | (uchar(png[at + 1]) << 16) | (uchar(png[at + 2]) << 8) |
                   uchar(png[at + 3]));
    };
    return {be32(16), be32(20)};
}

// First value of `key` in a desktop file (ours has the one group, [Desktop Entry]).
QString desktopValue(const QByteArray& desktop, const QString& key)
{
    for (const QByteArray& line : desktop.split('\n'))
        if (line.startsWith(key.toUtf8() + '='))
            return QString::fromUtf8(line.mid(key.size() + 1));
    return {};
}

// A binary's dynamic linkage: the libraries it names in DT_NEEDED and whether it carries an RPATH or RUNPATH
// (readelf -d), and where the dynamic loader finds each library (ldd; "" for "not found").
struct Linkage {
    QStringList needed;
    bool hasRunPath = false;
    QMap<QString, QString> resolved;
    QByteArray error; // non-empty when readelf or ldd failed
};

Linkage linkage(const QString& binary)
{
    Linkage l;
    const Run elf = run(QStringLiteral("readelf"), {QStringLiteral("-d"), binary});
    const Run ldd = run(QStringLiteral("ldd"), {binary});
    if (elf.exitCode != 0 || ldd.exitCode != 0) {
        l.error = binary.toUtf8() + ": " + elf.why() + ldd.why();
        return l;
    }
    static const QRegularExpression neededRe(QStringLiteral(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])"));
    for (auto it = neededRe.globalMatch(QString::fromUtf8(elf.out)); it.hasNext();)
        l.needed << it.next().captured(1);
    l.hasRunPath = elf.out.contains("(RPATH)") || elf.out.contains("(RUNPATH)");
    for (const QByteArray& raw : ldd.out.split('\n')) {
        const QString line = QString::fromUtf8(raw).trimmed();
        if (const int arrow = line.indexOf(QStringLiteral(" => ")); arrow > 0) {
            const QString target = line.mid(arrow + 4);
            l.resolved.insert(line.left(arrow), target.startsWith(QStringLiteral("not found"))
                                                    ? QString()
                                                    : target.section(QLatin1Char(' '), 0, 0));
        } else if (line.startsWith(QLatin1Char('/'))) { // the loader itself: "/lib64/ld-linux-x86-64.so.2 (0x...)"
            const QString path = line.section(QLatin1Char(' '), 0, 0);
            l.resolved.insert(QFileInfo(path).fileName(), path);
        }
    }
    return l;
}

// Package names of `dpkg-query -S` lines ("libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6", "a, b: path").
QStringList parseDpkgSearch(const QByteArray& out)
{
    QStringList packages;
    for (const QByteArray& raw : out.split('\n')) {
        const QString line = QString::fromUtf8(raw);
        if (line.isEmpty() || line.startsWith(QStringLiteral("diversion ")))
            continue;
        for (const QString& p : line.left(line.indexOf(QStringLiteral(": "))).split(QStringLiteral(", ")))
            packages << p.section(QLatin1Char(':'), 0, 0);
    }
    packages.removeDuplicates();
    packages.sort();
    return packages;
}

// Control fields of `dpkg-deb --info` (" Package: qpruner-studio"); a multi-line field keeps its first line.
QMap<QString, QString> parseControl(const QByteArray& info)
{
    QMap<QString, QString> fields;
    static const QRegularExpression fieldRe(QStringLiteral(R"(^ ([A-Za-z][A-Za-z0-9-]*): (.*)$)"));
    for (const QByteArray& raw : info.split('\n'))
        if (const auto m = fieldRe.match(QString::fromUtf8(raw)); m.hasMatch())
            fields.insert(m.captured(1), m.captured(2));
    return fields;
}

// One Depends entry: "libc6 (>= 2.34)" -> {"libc6", ">=", "2.34"}.
struct Dependency {
    QString package, relation, version;
};

QList<Dependency> parseDepends(const QString& depends)
{
    QList<Dependency> out;
    static const QRegularExpression entryRe(
        QStringLiteral(R"(^([a-z0-9][a-z0-9+.-]*)(?: \((<<|<=|=|>=|>>) ([^)]+)\))?$)"));
    for (const QString& entry : depends.split(QLatin1Char(','))) {
        const auto m = entryRe.match(entry.trimmed());
        out.append(m.hasMatch() ? Dependency{m.captured(1), m.captured(2), m.captured(3)}
                                : Dependency{QStringLiteral("UNPARSED: ") + entry.trimmed(), {}, {}});
    }
    return out;
}

// Skips when `tool` is not on PATH, or fails when QPRUNER_REQUIRE_DATA=1 (where the full check must run).
#define QPRUNER_REQUIRE_TOOL(tool, package)                                                                    \
    do {                                                                                                       \
        if (QStandardPaths::findExecutable(QStringLiteral(tool)).isEmpty()) {                                  \
            const char* msg_ = tool " not found (install the " package " package; scripts/install-deps.sh)"; \
            if (qpruner::testing::dataRequired())                                                              \
                QFAIL(msg_);                                                                                   \
            QSKIP(msg_);                                                                                       \
        }                                                                                                      \
    } while (0)

} // namespace

class TestInstall : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    QString root_;    // the install root: the prefix is root_/usr, as in the package
    QString prefix_;  // root_/usr
    QString scratch_; // working directory for the installed binaries, in neither the source nor the build tree
    QString arch_;    // dpkg --print-architecture
    QString deb_;     // the package cpack built

    // Compares each installed copy under `prefix` with its source, byte for byte.
    void checkCopies(const QString& prefix)
    {
        const auto copies = installedCopies();
        for (auto it = copies.begin(); it != copies.end(); ++it) {
            const QByteArray source = readFile(it.value());
            QVERIFY2(!source.isEmpty(), qPrintable("cannot read " + it.value()));
            QVERIFY2(readFile(prefix + "/" + it.key()) == source,
                     qPrintable(prefix + "/" + it.key() + " differs from " + it.value()));
        }
    }

private Q_SLOTS:
    // `cmake --install` of this build into root_/usr, and `cpack -G DEB` of it into deb/.
    void initTestCase()
    {
        QVERIFY(tmp_.isValid());
        root_ = tmp_.filePath(QStringLiteral("root"));
        prefix_ = root_ + "/usr";
        scratch_ = tmp_.filePath(QStringLiteral("scratch"));
        QVERIFY(QDir().mkpath(scratch_));
        const Run install = run(QStringLiteral(QPRUNER_CMAKE_COMMAND), {QStringLiteral("--install"),
                                QStringLiteral(QPRUNER_BUILD_DIR), QStringLiteral("--prefix"), prefix_});
        QVERIFY2(install.exitCode == 0, install.why().constData());

        const QString debDir = tmp_.filePath(QStringLiteral("deb"));
        const Run cpack = run(QStringLiteral(QPRUNER_CPACK_COMMAND),
                              {QStringLiteral("--config"), QStringLiteral(QPRUNER_BUILD_DIR "/CPackConfig.cmake"),
                               QStringLiteral("-G"), QStringLiteral("DEB"), QStringLiteral("-B"), debDir});
        QVERIFY2(cpack.exitCode == 0, cpack.why().constData());
        const Run arch = run(QStringLiteral("dpkg"), {QStringLiteral("--print-architecture")});
        QVERIFY2(arch.exitCode == 0, arch.why().constData());
        arch_ = QString::fromUtf8(arch.out.trimmed());
        const QString name = QStringLiteral("%1_%2_%3.deb").arg(kPackage, kVersion, arch_);
        QCOMPARE(QDir(debDir).entryList({QStringLiteral("*.deb")}, QDir::Files), QStringList{name});
        deb_ = debDir + "/" + name;
    }

    void installsExactlyThePackagedFiles()
    {
        const QStringList files = filesUnder(prefix_);
        QVERIFY2(files == expectedFiles(), listDifference(files, expectedFiles()).constData());
    }

    void installedDataFilesAreTheSources()
    {
        checkCopies(prefix_);
        if (!kWithGui)
            return;
        for (int size : {16, 32, 64, 128, 256}) {
            const QString icon =
                QStringLiteral("%1/share/icons/hicolor/%2x%2/apps/%3.png").arg(prefix_).arg(size).arg(kAppId);
            QCOMPARE(pngSize(readFile(icon)), QSize(size, size));
        }
    }

    void installedBinariesRunFromAnotherDirectory()
    {
        const Run version = run(prefix_ + "/bin/qpruner", {QStringLiteral("--version")}, scratch_);
        QVERIFY2(version.exitCode == 0, version.why().constData());
        QCOMPARE(version.out, QByteArray("qpruner " QPRUNER_VERSION "\n"));

        const Run help = run(prefix_ + "/bin/qpruner", {QStringLiteral("--help")}, scratch_);
        QVERIFY2(help.exitCode == 0, help.why().constData());
        QVERIFY2(help.out.startsWith("usage: qpruner <command> [arguments] [--help]\n"), help.out.constData());
        QVERIFY2(help.out.contains("\n  run "), help.out.constData());

        if (kWithGui) {
            const Run studio = run(prefix_ + "/bin/qpruner-studio", {QStringLiteral("--version")}, scratch_);
            QVERIFY2(studio.exitCode == 0, studio.why().constData());
            QCOMPARE(studio.out, QByteArray("qpruner-studio " QPRUNER_VERSION "\n"));
        }
    }

    void installedBinariesFindEveryLibraryWithoutRpath()
    {
        for (const QString& bin : installedBinaries()) {
            const Linkage l = linkage(prefix_ + "/" + bin);
            QVERIFY2(l.error.isEmpty(), l.error.constData());
            QVERIFY2(!l.hasRunPath, qPrintable(bin + " keeps an RPATH or RUNPATH"));
            QVERIFY2(l.needed.contains(QStringLiteral("libtorch_cpu.so.1.13")),
                     qPrintable(bin + " does not link libtorch"));
            for (const QString& lib : l.needed)
                QVERIFY2(!l.resolved.value(lib).isEmpty(), qPrintable(bin + ": the loader does not find " + lib));
        }
    }

    void desktopEntryAndMetainfoNameEachOther()
    {
        if (!kWithGui)
            QSKIP("built without the GUI (QPRUNER_BUILD_GUI=OFF): no desktop entry");
        const QByteArray desktop = readFile(QStringLiteral("%1/share/applications/%2.desktop").arg(prefix_, kAppId));
        QCOMPARE(desktopValue(desktop, QStringLiteral("Icon")), kAppId);
        QCOMPARE(desktopValue(desktop, QStringLiteral("Exec")), QStringLiteral("qpruner-studio %f"));

        QXmlStreamReader xml(readFile(QStringLiteral("%1/share/metainfo/%2.metainfo.xml").arg(prefix_, kAppId)));
        QString id, launchable;
        QStringList binaries;
        while (!xml.atEnd()) {
            if (xml.readNext() != QXmlStreamReader::StartElement)
                continue;
            if (xml.name() == QLatin1String("id"))
                id = xml.readElementText();
            else if (xml.name() == QLatin1String("launchable"))
                launchable = xml.readElementText();
            else if (xml.name() == QLatin1String("binary"))
                binaries << xml.readElementText();
        }
        QVERIFY2(!xml.hasError(), qPrintable(xml.errorString()));
        QCOMPARE(id, kAppId);
        QCOMPARE(launchable, kAppId + ".desktop");
        QCOMPARE(binaries, (QStringList{QStringLiteral("qpruner"), QStringLiteral("qpruner-studio")}));
    }

    void desktopEntryValidates()
    {
        if (!kWithGui)
            QSKIP("built without the GUI (QPRUNER_BUILD_GUI=OFF): no desktop entry");
        QPRUNER_REQUIRE_TOOL("desktop-file-validate", "desktop-file-utils");
        const Run v = run(QStringLiteral("desktop-file-validate"),
                          {QStringLiteral("%1/share/applications/%2.desktop").arg(prefix_, kAppId)});
        // It prints hints as well as errors and exits 0 on hints only: a clean entry prints nothing.
        QVERIFY2(v.exitCode == 0 && v.out.isEmpty() && v.err.isEmpty(), v.why().constData());
    }

    void metainfoValidatesWithTheInstalledTree()
    {
        if (!kWithGui)
            QSKIP("built without the GUI (QPRUNER_BUILD_GUI=OFF): no AppStream metadata");
        QPRUNER_REQUIRE_TOOL("appstreamcli", "appstream");
        const Run file = run(QStringLiteral("appstreamcli"),
                             {QStringLiteral("validate"), QStringLiteral("--no-net"),
                              QStringLiteral("%1/share/metainfo/%2.metainfo.xml").arg(prefix_, kAppId)});
        QVERIFY2(file.exitCode == 0, file.why().constData());
        // The tree as installed: the launchable desktop entry and the icon it names must be there too.
        const Run tree = run(QStringLiteral("appstreamcli"),
                             {QStringLiteral("validate-tree"), QStringLiteral("--no-net"), root_});
        QVERIFY2(tree.exitCode == 0, tree.why().constData());
    }

    void debianControlFields()
    {
        const Run info = run(QStringLiteral("dpkg-deb"), {QStringLiteral("--info"), deb_});
        QVERIFY2(info.exitCode == 0, info.why().constData());
        const auto control = parseControl(info.out);
        QCOMPARE(control.value(QStringLiteral("Package")), kPackage);
        QCOMPARE(control.value(QStringLiteral("Version")), kVersion);
        QCOMPARE(control.value(QStringLiteral("Architecture")), arch_);
        QCOMPARE(control.value(QStringLiteral("Section")), QStringLiteral("science"));
        const QString maintainer = control.value(QStringLiteral("Maintainer"));
        QVERIFY2(maintainer.contains(QRegularExpression(QStringLiteral(R"(^\S.* <[^ >]+@[^ >]+>$)"))),
                 qPrintable(maintainer));
        QVERIFY(!control.value(QStringLiteral("Description")).isEmpty());
    }

    void debianDependsAreTheLinkedPackages()
    {
        // The packages owning the libraries the installed binaries name in DT_NEEDED, as the loader finds them.
        QStringList patterns;
        for (const QString& bin : installedBinaries()) {
            const Linkage l = linkage(prefix_ + "/" + bin);
            QVERIFY2(l.error.isEmpty(), l.error.constData());
            for (const QString& lib : l.needed) {
                const QString path = l.resolved.value(lib);
                QVERIFY2(!path.isEmpty(), qPrintable(bin + ": the loader does not find " + lib));
                // "*/x86_64-linux-gnu/libc.so.6" matches whether dpkg recorded /lib or /usr/lib (merged /usr).
                patterns << QStringLiteral("*/%1/%2").arg(QFileInfo(path).dir().dirName(), lib);
            }
        }
        patterns.removeDuplicates();
        const Run owners = run(QStringLiteral("dpkg-query"), QStringList{QStringLiteral("-S")} + patterns);
        QVERIFY2(owners.exitCode == 0, ("a linked library belongs to no Debian package: " + owners.why()).constData());
        QStringList expected = parseDpkgSearch(owners.out) << kRuntimeOnlyDepends;
        expected.sort();

        const Run info = run(QStringLiteral("dpkg-deb"), {QStringLiteral("--info"), deb_});
        QVERIFY2(info.exitCode == 0, info.why().constData());
        const QList<Dependency> depends = parseDepends(parseControl(info.out).value(QStringLiteral("Depends")));
        QStringList declared;
        for (const Dependency& d : depends)
            declared << d.package;
        declared.sort();
        QVERIFY2(declared == expected, listDifference(declared, expected).constData());

        // Every lower bound holds for the packages of this machine, so the package installs where it was built.
        for (const Dependency& d : depends) {
            if (d.relation.isEmpty())
                continue;
            const Run installed =
                run(QStringLiteral("dpkg-query"), {QStringLiteral("-W"), QStringLiteral("-f=${Version}"), d.package});
            QVERIFY2(installed.exitCode == 0, installed.why().constData());
            const Run cmp = run(QStringLiteral("dpkg"), {QStringLiteral("--compare-versions"),
                                                         QString::fromUtf8(installed.out), d.relation, d.version});
            QVERIFY2(cmp.exitCode == 0, qPrintable(QStringLiteral("installed %1 %2 does not satisfy (%3 %4)")
                                                       .arg(d.package, QString::fromUtf8(installed.out), d.relation,
                                                            d.version)));
        }
    }

    void debianContentsAreTheInstalledFiles()
    {
        const Run contents = run(QStringLiteral("dpkg-deb"), {QStringLiteral("--contents"), deb_});
        QVERIFY2(contents.exitCode == 0, contents.why().constData());
        // "-rwxr-xr-x root/root 3473904 2026-01-01 00:00 ./usr/bin/qpruner"
        QStringList files;
        for (const QByteArray& raw : contents.out.split('\n')) {
            const QStringList f = QString::fromUtf8(raw).split(QLatin1Char(' '), Qt::SkipEmptyParts);
            if (f.isEmpty())
                continue;
            QVERIFY2(f.size() == 6 && f[1] == QStringLiteral("root/root") && f[5].startsWith(QStringLiteral("./usr/")),
                     raw.constData());
            if (f[0].startsWith(QLatin1Char('d')))
                continue;
            const QString path = f[5].mid(6);
            const bool binary = path.startsWith(QStringLiteral("bin/"));
            QVERIFY2(f[0] == (binary ? QStringLiteral("-rwxr-xr-x") : QStringLiteral("-rw-r--r--")), raw.constData());
            files << path;
        }
        files.sort();
        QVERIFY2(files == expectedFiles(), listDifference(files, expectedFiles()).constData());

        const QString unpacked = tmp_.filePath(QStringLiteral("unpacked"));
        const Run extract = run(QStringLiteral("dpkg-deb"), {QStringLiteral("--extract"), deb_, unpacked});
        QVERIFY2(extract.exitCode == 0, extract.why().constData());
        checkCopies(unpacked + "/usr");
    }
};

QTEST_GUILESS_MAIN(TestInstall)
#include "test_install.moc"
