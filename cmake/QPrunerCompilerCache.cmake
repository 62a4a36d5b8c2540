# Use ccache when it is installed, so rebuilding unchanged torch-heavy translation units is a cache hit.
# Precompiled headers and ccache only work together with these sloppiness settings, which must be in the
# compiler's environment at build time, hence the `cmake -E env` wrapper.
find_program(QPRUNER_CCACHE ccache)
if(QPRUNER_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      "${CMAKE_COMMAND};-E;env;CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime;${QPRUNER_CCACHE}")
endif()
