# Optional features: each DSABI_WITH_<X> is AUTO (on if found, the default), ON (required) or OFF.
# After this file, DSABI_WITH_<X> is a plain boolean telling whether the feature is built.
include(FindPackageHandleStandardArgs)

macro(dsabi_feature name description)
  set(DSABI_WITH_${name} AUTO CACHE STRING "${description}: AUTO (on if found), ON or OFF")
  set_property(CACHE DSABI_WITH_${name} PROPERTY STRINGS AUTO ON OFF)
  set(_dsabi_want_${name} ${DSABI_WITH_${name}})
endmacro()

# Resolve a feature after probing: found_var tells whether its dependencies were found.
macro(dsabi_resolve name found_var)
  if(_dsabi_want_${name} STREQUAL "OFF")
    set(DSABI_WITH_${name} OFF)
  elseif(${found_var})
    set(DSABI_WITH_${name} ON)
  elseif(_dsabi_want_${name} STREQUAL "ON")
    message(FATAL_ERROR "DSABI_WITH_${name}=ON but its dependencies were not found (see above)")
  else()
    set(DSABI_WITH_${name} OFF)
  endif()
endmacro()

dsabi_feature(CUDA "CUDA backend module libdsabi_cuda.so")
dsabi_feature(NCCL "NCCL communication backend (needs CUDA)")
dsabi_feature(GLOO "Gloo communication backend (CPU)")
dsabi_feature(AIO "libaio NVMe offload")
dsabi_feature(PYTHON "Python bindings")
dsabi_feature(JAVA "Java bindings")
dsabi_feature(GO "Go bindings")

find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)  # CPU kernels (kernels/cpu); GCC: libgomp
find_package(cJSON CONFIG REQUIRED)   # Debian libcjson-dev: target `cjson`
find_path(DLPACK_INCLUDE_DIR dlpack/dlpack.h REQUIRED)   # Debian libdlpack-dev

# ---- CUDA ----
set(_cuda_found FALSE)
if(NOT _dsabi_want_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit)
    if(CUDAToolkit_FOUND)
      set(_cuda_found TRUE)
    endif()
  endif()
endif()
dsabi_resolve(CUDA _cuda_found)

# ---- NCCL (no CMake package upstream) ----
set(_nccl_found FALSE)
if(DSABI_WITH_CUDA AND NOT _dsabi_want_NCCL STREQUAL "OFF")
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME} ${CUDAToolkit_INCLUDE_DIRS}
            PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} $ENV{NCCL_HOME}
               ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(_nccl_found TRUE)
    if(NOT TARGET NCCL::nccl)
      add_library(NCCL::nccl UNKNOWN IMPORTED)
      set_target_properties(NCCL::nccl PROPERTIES IMPORTED_LOCATION "${NCCL_LIBRARY}"
                            INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
    endif()
  endif()
endif()
dsabi_resolve(NCCL _nccl_found)

# ---- Gloo (Debian: /usr/share/cmake/Gloo, target `gloo`) ----
set(_gloo_found FALSE)
if(NOT _dsabi_want_GLOO STREQUAL "OFF")
  find_package(Gloo CONFIG QUIET)
  if(Gloo_FOUND OR TARGET gloo)
    set(_gloo_found TRUE)
  endif()
endif()
dsabi_resolve(GLOO _gloo_found)

# ---- libaio (no .pc, no CMake config) ----
set(_aio_found FALSE)
if(NOT _dsabi_want_AIO STREQUAL "OFF")
  find_path(AIO_INCLUDE_DIR libaio.h)
  find_library(AIO_LIBRARY NAMES aio)
  if(AIO_INCLUDE_DIR AND AIO_LIBRARY)
    set(_aio_found TRUE)
    if(NOT TARGET AIO::aio)
      add_library(AIO::aio UNKNOWN IMPORTED)
      set_target_properties(AIO::aio PROPERTIES IMPORTED_LOCATION "${AIO_LIBRARY}"
                            INTERFACE_INCLUDE_DIRECTORIES "${AIO_INCLUDE_DIR}")
    endif()
  endif()
endif()
dsabi_resolve(AIO _aio_found)

# ---- SWIG + languages ----
set(_swig_found FALSE)
if(NOT (_dsabi_want_PYTHON STREQUAL "OFF" AND _dsabi_want_JAVA STREQUAL "OFF" AND _dsabi_want_GO STREQUAL "OFF"))
  find_package(SWIG 4.0 QUIET)
  if(SWIG_FOUND)
    set(_swig_found TRUE)
  endif()
endif()

set(_python_found FALSE)
if(_swig_found AND NOT _dsabi_want_PYTHON STREQUAL "OFF")
  # Pin the interpreter that Debian's numpy and pytest serve (the pyenv shim has neither):
  # configure with -DPython_EXECUTABLE=/usr/bin/python3.
  find_package(Python 3.8 COMPONENTS Interpreter Development.Module NumPy QUIET)
  if(Python_FOUND AND Python_NumPy_FOUND)
    set(_python_found TRUE)
  endif()
endif()
dsabi_resolve(PYTHON _python_found)

set(_java_found FALSE)
if(_swig_found AND NOT _dsabi_want_JAVA STREQUAL "OFF")
  find_package(Java 11 COMPONENTS Development QUIET)
  find_package(JNI QUIET)
  find_file(JUNIT4_JAR junit4.jar PATHS /usr/share/java)
  if(Java_FOUND AND JNI_FOUND AND JUNIT4_JAR)
    set(_java_found TRUE)
  endif()
endif()
dsabi_resolve(JAVA _java_found)

set(_go_found FALSE)
if(_swig_found AND NOT _dsabi_want_GO STREQUAL "OFF")
  find_program(GO_EXECUTABLE go PATHS /usr/lib/go/bin /usr/lib/go-1.19/bin)
  if(GO_EXECUTABLE)
    set(_go_found TRUE)
  endif()
endif()
dsabi_resolve(GO _go_found)
