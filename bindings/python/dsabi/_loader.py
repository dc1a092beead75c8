"""Loading of the SWIG extension and the library version check.

Every other module reaches the SWIG layer as ``_loader.lib``. Importing this module fails with a
clear ImportError when the libdsabi that the dynamic loader found is not the version this package
was built for.
"""

from . import dsabi_swig as lib

__all__ = ["lib", "check_library_version"]


def check_library_version(built_for: int, loaded: int, loaded_text: str) -> None:
    """Refuse a library whose major.minor version differs from the one the bindings were built for.

    Versions are DS_VERSION_NUMBER values (major * 10000 + minor * 100 + patch); only the patch
    level may differ.
    """
    if built_for // 100 != loaded // 100:
        major, minor = divmod(built_for // 100, 100)
        raise ImportError(
            f"dsabi: the libdsabi that was loaded is version {loaded_text} ({loaded}), but this Python "
            f"package was built for {major}.{minor}.x ({built_for}); install matching versions or point "
            f"LD_LIBRARY_PATH at the library these bindings were built with"
        )


# DS_VERSION_NUMBER was compiled into the extension from dsabi.h; version_number() asks the library.
check_library_version(lib.DS_VERSION_NUMBER, lib.version_number(), lib.version_string())
