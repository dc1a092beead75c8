"""Library-level calls: versions and the import-time check, build info, logging, proc addresses,
init/shutdown."""

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

import dsabi
from dsabi import LogLevel
from dsabi._loader import check_library_version, lib


def test_version_matches_the_header():
    assert dsabi.__version__ == dsabi.version() == lib.DS_VERSION_STRING
    assert dsabi.version_number() == lib.DS_VERSION_NUMBER
    major, minor, patch = (int(x) for x in dsabi.__version__.split("."))
    assert dsabi.version_number() == major * 10000 + minor * 100 + patch


def test_version_check_accepts_patch_differences_only():
    check_library_version(built_for=100, loaded=105, loaded_text="0.1.5")  # no exception
    with pytest.raises(ImportError, match=r"loaded is version 0\.2\.0 \(200\).*built for 0\.1\.x \(100\)"):
        check_library_version(built_for=100, loaded=200, loaded_text="0.2.0")
    with pytest.raises(ImportError):
        check_library_version(built_for=10100, loaded=100, loaded_text="0.1.0")


def test_import_refuses_a_library_of_another_version():
    # Load the SWIG module without the package's __init__, make the library report 0.99.0, then
    # import the loader: it must refuse with a message naming both versions.
    script = textwrap.dedent(
        f"""
        import importlib, sys, types
        package = types.ModuleType("dsabi")
        package.__path__ = [{os.path.dirname(dsabi.__file__)!r}]
        sys.modules["dsabi"] = package
        swig = importlib.import_module("dsabi.dsabi_swig")
        swig.version_number = lambda: 9900
        swig.version_string = lambda: "0.99.0"
        try:
            importlib.import_module("dsabi._loader")
        except ImportError as e:
            print(e)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], env=os.environ, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "version 0.99.0 (9900)" in out.stdout
    assert f"built for {lib.DS_VERSION_MAJOR}.{lib.DS_VERSION_MINOR}.x" in out.stdout


def test_build_info():
    info = dsabi.build_info()
    assert info["version"] == dsabi.__version__
    assert info["abi_version"] == lib.DS_ABI_VERSION
    assert info["features"]["python"] is True
    assert isinstance(info["cuda_backend"]["loaded"], bool)


def test_set_log_delivers_messages_to_python():
    messages = []
    dsabi.set_log(lambda level, text: messages.append((level, text)), LogLevel.DEBUG)
    try:
        with pytest.raises(dsabi.NotFoundError):
            with dsabi.Config.parse('{"train_batch_size": 4}', world_size=1) as cfg:
                cfg.get_int("no_such_key")
    finally:
        dsabi.set_log(None, LogLevel.ERROR)
    # Failed calls are logged at DEBUG, naming the function.
    assert any(level is LogLevel.DEBUG and "ds_config_get_i64" in text for level, text in messages), messages


def test_set_log_with_an_invalid_level():
    with pytest.raises(dsabi.InvalidArgumentError) as info:
        dsabi.set_log_level(9)
    assert "max_level=9" in info.value.message


def test_failing_log_callback_does_not_break_the_call(monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    def broken(level, text):
        raise RuntimeError("sink failed")

    dsabi.set_log(broken, LogLevel.DEBUG)
    try:
        with pytest.raises(dsabi.InvalidArgumentError):  # the call's own error, not the sink's
            dsabi.Tensor.create((-1,))
    finally:
        dsabi.set_log(None, LogLevel.ERROR)
    assert [str(u.exc_value) for u in unraisable] == ["sink failed"]


def test_proc_address_is_callable_with_ctypes():
    address = dsabi.proc_address("ds_version_number")
    version_number = ctypes.CFUNCTYPE(ctypes.c_uint32)(address)
    assert version_number() == dsabi.version_number()
    with pytest.raises(dsabi.NotFoundError):
        dsabi.proc_address("ds_no_such_function")


def test_init_and_shutdown_in_a_fresh_process():
    # Process-global: run in a child so the rest of the suite keeps its library state.
    script = textwrap.dedent(
        """
        import dsabi
        dsabi.init(log_level=dsabi.LogLevel.ERROR, load_cuda=False)
        assert dsabi.build_info()["cuda_backend"]["loaded"] is False
        assert dsabi.device_count("cuda") == 0
        dsabi.init(load_cuda=True)  # later calls change nothing
        dsabi.shutdown()
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], env=os.environ, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
