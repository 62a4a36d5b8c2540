# Use ccache when it is installed: rebuilds of torch-heavy translation units drop from ~15 s to well under one.
find_program(QPRUNER_CCACHE ccache)
if(QPRUNER_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${QPRUNER_CCACHE}")
  # Precompiled headers and ccache only work together with these sloppiness settings.
  set(ENV{CCACHE_SLOPPINESS} "pch_defines,time_macros,include_file_mtime,include_file_ctime")
endif()
