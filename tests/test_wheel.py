"""A wheel installed outside the checkout builds and verifies: the C runtime and the firmware's CMake project
are package data, and the firmware builds in the bundle, never in the installed package."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(command, cwd):
    """Run a command with the checkout off the module path; fail the test with its output if it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(list(map(str, command)), cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtual environment with tinykd from a wheel and the test environment's other packages."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"   # a copy: building writes build/ and *.egg-info next to pyproject.toml
    shutil.copytree(ROOT / "tinykd", source / "tinykd", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", work / "dist",
         source], cwd=work)
    (wheel,) = (work / "dist").glob("tinykd-*.whl")
    env = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", env], cwd=work)
    python = env / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work).strip())
    # after the new site-packages on sys.path: the dependencies, pip, and the checkout's own (editable) tinykd,
    # which the wheel's shadows
    (site / "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", wheel], cwd=work)
    return env, site


def test_the_wheel_builds_and_verifies_outside_the_checkout(venv, tmp_path):
    """`tinykd build` for a Cortex-M board, `tinykd verify` natively and in QEMU, from the installed wheel alone."""
    from zoo import build_zoo

    from tinykd.core.console import quiet

    env, site = venv
    with quiet():
        model = build_zoo(tmp_path, names=("mlp",))["mlp"]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    where = run([env / "bin" / "python", "-c", "import tinykd; print(tinykd.__file__)"], cwd=cwd).strip()
    assert Path(where).is_relative_to(site / "tinykd"), where
    package = sorted((site / "tinykd").rglob("*"))

    tinykd = env / "bin" / "tinykd"
    run([tinykd, "build", "--board", "nucleo-f767zi", "--model", model, "--out", tmp_path / "f767"], cwd=cwd)
    runtime = tmp_path / "f767" / "c" / "runtime"
    assert (runtime / "tinykd_runtime.h").is_file() and (runtime / "tinykd_kernels.h").is_file()
    assert any(runtime.glob("fully_connected*.c"))
    for path in runtime.iterdir():
        if path.name != "tinykd_params.h":  # generated from the kernel files
            assert path.read_bytes() == (site / "tinykd" / "deploy" / "runtime" / path.name).read_bytes(), path.name
    assert (runtime / "tinykd_params.h").read_text() == run(
        [env / "bin" / "python", "-c", "from tinykd.deploy.cbackend.lower import params_header as p; print(p(), end='')"],
        cwd=cwd)

    run([tinykd, "verify", "--board", "native", "--model", model, "--vectors", 5, "--out", tmp_path / "native"],
        cwd=cwd)
    assert (tmp_path / "native" / "fw" / "native" / "firmware").is_file()
    # the Cortex-M firmware: the package's start-up code and toolchain file, in QEMU
    run([tinykd, "verify", "--board", "nucleo-f767zi", "--bundle", tmp_path / "f767", "--vectors", 5], cwd=cwd)
    assert (tmp_path / "f767" / "fw" / "qemu" / "firmware.elf").is_file()
    assert sorted((site / "tinykd").rglob("*")) == package, "the firmware build wrote into the package"
