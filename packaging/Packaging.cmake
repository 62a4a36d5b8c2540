# Install layout beside the binaries (app/CMakeLists.txt installs bin/qpruner and bin/qpruner-studio) and the
# Debian package of both, built by `cpack -G DEB` in a configured and built build directory:
#   share/applications/<id>.desktop, share/metainfo/<id>.metainfo.xml,
#   share/icons/hicolor/{16x16,...,256x256,scalable}/apps/<id>.{png,svg}   (GUI builds only)
#   share/qpruner/examples/*.json     run configs for `qpruner run` ("${data}" = the shared data directory)
#   share/doc/qpruner-studio/README.md
# tests/packaging/test_install.cpp checks this list, the installed binaries and the package.
include(GNUInstallDirs)

# One reverse-DNS id names the desktop entry, the AppStream component and the icon.
set(QPRUNER_APP_ID "io.github.qpruner.Studio")
set(QPRUNER_DEB_MAINTAINER "QPruner Studio maintainers <maintainers@qpruner.invalid>" CACHE STRING
    "Maintainer field of the Debian package (Name <address>)")

set(QPRUNER_EXAMPLE_CONFIGS
  "${CMAKE_SOURCE_DIR}/resources/configs/stories260k-quick.json"
  "${CMAKE_SOURCE_DIR}/resources/configs/stories260k-pruned.json")
install(FILES ${QPRUNER_EXAMPLE_CONFIGS} DESTINATION "${CMAKE_INSTALL_DATADIR}/qpruner/examples")
install(FILES "${CMAKE_SOURCE_DIR}/README.md" DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/qpruner-studio")

if(QPRUNER_BUILD_GUI)
  install(FILES "${CMAKE_CURRENT_LIST_DIR}/${QPRUNER_APP_ID}.desktop"
          DESTINATION "${CMAKE_INSTALL_DATADIR}/applications")
  install(FILES "${CMAKE_CURRENT_LIST_DIR}/${QPRUNER_APP_ID}.metainfo.xml"
          DESTINATION "${CMAKE_INSTALL_DATADIR}/metainfo")
  # The PNGs are the renderings of the SVG that resources/studio.qrc compiles into the studio.
  foreach(size 16 32 64 128 256)
    install(FILES "${CMAKE_SOURCE_DIR}/resources/icons/qpruner-studio-${size}.png"
            DESTINATION "${CMAKE_INSTALL_DATADIR}/icons/hicolor/${size}x${size}/apps"
            RENAME "${QPRUNER_APP_ID}.png")
  endforeach()
  install(FILES "${CMAKE_SOURCE_DIR}/resources/icons/qpruner-studio.svg"
          DESTINATION "${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/apps"
          RENAME "${QPRUNER_APP_ID}.svg")
endif()

# Depends: one package per shared library the binaries name in DT_NEEDED (readelf -d, then dpkg -S on the
# Debian 12 build), with the lower bounds dpkg-shlibdeps derives from those packages' shlibs/symbols files;
# the libraries' own dependencies come in through their packages. Written out rather than computed at package
# time by CPACK_DEBIAN_PACKAGE_SHLIBDEPS: the list stays reviewable, cpack needs no dpkg-dev, and a build against
# a libtorch that no Debian package owns (the CUDA libtorch of a PyTorch wheel) would fail dpkg-shlibdeps
# rather than produce a package. test_install compares the list with the installed binaries' DT_NEEDED entries.
# libopenblas0-openmp is named in no DT_NEEDED entry: libtorch reaches BLAS through the libblas.so.3
# alternative, which falls back to the reference BLAS (about 30x slower matmuls) without it.
set(QPRUNER_DEB_DEPENDS
  "libc6 (>= 2.34)"
  "libgcc-s1 (>= 3.0)"
  "libstdc++6 (>= 11)"
  "libgomp1 (>= 4.9)"
  "libsqlite3-0 (>= 3.37.0)"
  "libpq5 (>= 9.0~)"
  "libicu72 (>= 72.1~rc-1~)"
  "libtorch1.13 (>= 1.13.1+dfsg)"
  "libopenblas0-openmp")
if(QPRUNER_BUILD_GUI)
  list(APPEND QPRUNER_DEB_DEPENDS
    "libqt6core6 (>= 6.4.0)"
    "libqt6gui6 (>= 6.1.2)"
    "libqt6widgets6 (>= 6.3.0)"
    "libqt6network6 (>= 6.1.2)"
    "libqt6svg6 (>= 6.2.0)"
    "libqcustomplot2.1-qt6 (>= 2.1.0+dfsg1)")
endif()
list(JOIN QPRUNER_DEB_DEPENDS ", " CPACK_DEBIAN_PACKAGE_DEPENDS)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "qpruner-studio")
set(CPACK_PACKAGE_VENDOR "QPruner Studio")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT") # qpruner-studio_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${QPRUNER_DEB_MAINTAINER}")
# CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY first as the synopsis, indents the lines below it and turns the
# empty line into " .", as the Debian control format wants.
if(QPRUNER_BUILD_GUI)
  set(QPRUNER_DEB_CONTENTS "This package holds the Qt desktop workbench (qpruner-studio), the headless
command line (qpruner) and example run configurations.")
else()
  set(QPRUNER_DEB_CONTENTS "This package holds the headless command line (qpruner) and example run
configurations.")
endif()
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "QPruner Studio compresses LLaMA-family language models with the QPruner method:
structured pruning of attention groups and MLP channels, per-layer
mixed-precision quantization chosen from layer importance under a memory
budget, Bayesian optimization of the precision map (accuracy against memory)
and LoRA recovery fine-tuning with LoftQ initialisation, followed by
evaluation (perplexity, zero-shot tasks) and export.

${QPRUNER_DEB_CONTENTS}
Models run on the CPU with Debian's libtorch.")

include(CPack)
