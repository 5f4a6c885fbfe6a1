"""`tinykd build`, `inspect` and `boards`: the bundle's sources compile and hold the model, the resolver
registers exactly the model's ops, bad input is a one-line error, and nothing of the user's is lost."""

import json
import random
import re
import subprocess
from pathlib import Path

import pytest

from tinykd.deploy.boards import all_boards, load_board
from tinykd.deploy.bundle import make_bundle, tflm_registrations, write_bundle
from tinykd.cli import main
from tinykd.deploy.tflm.codegen import Names, tflm_method
from tinykd.core.errors import TinykdError
from tinykd.tflite.reader import parse_model, read_model

GXX = "g++"

MODEL_CHECK = r"""
#include <cstdint>
#include <cstdio>
#include <cstring>
#include "model_data.h"

int main(int argc, char **argv) {
  const unsigned char *model = NS g_model_name;
  const unsigned int length = NS g_model_name_len;
  if (reinterpret_cast<uintptr_t>(model) % 16 != 0) { std::puts("not 16-byte aligned"); return 1; }
  FILE *f = std::fopen(argv[1], "rb");
  static unsigned char file[1 << 22];
  size_t n = std::fread(file, 1, sizeof(file), f);
  std::fclose(f);
  if (n != length) { std::printf("length %u, file %zu\n", length, n); return 1; }
  if (std::memcmp(model, file, n) != 0) { std::puts("bytes differ"); return 1; }
  std::puts("ok");
  return 0;
}
"""


def compile_and_run(folder, sources, defines=(), args=()):
    exe = folder / "check"
    subprocess.run([GXX, "-std=c++17", "-Wall", "-Werror", f"-I{folder}", *defines, *map(str, sources),
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("names", [Names(), Names("model_tflite", "fw::models", "person_model")],
                         ids=["default-names", "custom-names"])
def test_model_data_compiles_aligned_and_byte_equal(zoo, tmp_path, names):
    """For every zoo model, model_data.cc compiles and g_model is the .tflite, 16-byte aligned."""
    prefix = names.namespace + "::" if names.namespace else ""
    for name, path in zoo.items():
        out = tmp_path / name
        bundle = make_bundle(read_model(path), load_board("nucleo-f767zi"), names, check_c_backend=False)
        write_bundle(bundle.files, out)
        (out / "check.cc").write_text(MODEL_CHECK)
        result = compile_and_run(out, [out / "check.cc", out / "model_data.cc"],
                                 [f"-DNS={prefix}", f"-Dg_model_name={names.array_name}",
                                  f"-Dg_model_name_len={names.array_name}_len"], [path])
        assert result.stdout.strip() == "ok", (name, result.stdout)
        header = (out / "model_data.h").read_text()
        assert read_model(path).sha256 in header and "#ifndef" in header and "#endif" in header


def test_zephyr_cmake_fragment_adds_the_model_to_the_app_target(zoo, tmp_path):
    """The fragment, included by a CMake project with an `app` target as Zephyr's, compiles the model in."""
    bundle = tmp_path / "bundle"
    write_bundle(make_bundle(read_model(zoo["mlp"]), load_board("nrf52840dk"), check_c_backend=False).files, bundle)
    project = tmp_path / "app"
    project.mkdir()
    (project / "main.cc").write_text('#include "model_data.h"\nint main() { return g_model_len > 0 ? 0 : 1; }\n')
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(app CXX)\nadd_executable(app main.cc)\n"
        f"include({bundle}/zephyr/tinykd.cmake)\n")
    subprocess.run(["cmake", "-S", str(project), "-B", str(project / "out")], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(project / "out")], check=True, capture_output=True)
    assert subprocess.run([str(project / "out" / "app")]).returncode == 0


ARDUINO_STUB = r"""
#include <cstdio>
#include <cstdint>
#include <cstring>
struct SerialStub {
  void begin(long) {}
  void print(const char *s) { std::printf("%s", s); }
  void print(long v) { std::printf("%ld", v); }
  void print(unsigned long v) { std::printf("%lu", v); }
  void print(int v) { std::printf("%d", v); }
  void println(const char *s) { std::printf("%s\n", s); }
} Serial;
unsigned long micros() { return 0; }
void delay(unsigned long) {}
"""


def test_arduino_library_sketch_runs_the_model(zoo, tmp_path):
    """The example sketch, compiled on the host against a stand-in for the Arduino core, prints the class
    TFLM predicts for the same blank input."""
    import numpy as np

    from tinykd.verify.compare import tflm_outputs

    model = read_model(zoo["plain_conv"])
    bundle = tmp_path / "bundle"
    write_bundle(make_bundle(model, load_board("arduino-nano-33-ble"), check_c_backend=False).files, bundle)
    library = bundle / "arduino" / "tinykd_plain_conv"
    properties = dict(line.split("=", 1) for line in (library / "library.properties").read_text().splitlines())
    assert properties["name"] == "tinykd_plain_conv" and properties["includes"] == "tinykd_model.h"
    sketch = (library / "examples/classify/classify.ino").read_text()
    (tmp_path / "sketch.cpp").write_text(ARDUINO_STUB + sketch + "\nint main() { setup(); loop(); }\n")
    sources = [str(p) for p in sorted((library / "src").rglob("*.c"))]
    objects = []
    for source in sources:
        objects.append(str(tmp_path / (Path(source).stem + ".o")))
        subprocess.run(["gcc", "-std=c99", "-c", source, "-o", objects[-1], f"-I{library / 'src'}"], check=True)
    subprocess.run([GXX, str(tmp_path / "sketch.cpp"), *objects, f"-I{library / 'src'}", "-o",
                    str(tmp_path / "sketch")], check=True)
    printed = subprocess.run([str(tmp_path / "sketch")], capture_output=True, text=True, check=True).stdout
    (tensor,) = model.input_tensors()
    blank = np.full((1, tensor.nbytes), tensor.zero_point[0], np.int8)
    assert printed.startswith(f"class {int(np.argmax(tflm_outputs(model, blank)[0]))} in ")


# A stand-in for TFLM's resolver header: every Add method records its call and can be made to fail.
RESOLVER_STUB = """
#pragma once
enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 };
extern int g_calls, g_fail_at;
extern const char *g_called[256];
namespace tflite {
template <unsigned N> class MicroMutableOpResolver {
 public:
%s
};
}
"""

OPS_CHECK = r"""
#include <cstdio>
#include <cstdlib>
#include "tinykd_ops.h"
int g_calls = 0, g_fail_at = -1;
const char *g_called[256];
int main(int argc, char **argv) {
  g_fail_at = std::atoi(argv[1]);
  OpResolver resolver;
  TfLiteStatus status = RegisterOps(resolver);
  std::printf("%d %d %d\n", kOpCount, (int)status, g_calls);
  for (int i = 0; i < g_calls; ++i) std::printf("%s\n", g_called[i]);
  return 0;
}
"""


def test_ops_header_registers_exactly_the_models_ops_and_stops_at_a_failure(zoo, tmp_path):
    methods = sorted({tflm_method(op) for path in zoo.values() for op in read_model(path).ops})
    stub = "\n".join(f"  TfLiteStatus {m}() {{ g_called[g_calls] = \"{m}\"; "
                     f"return g_calls++ == g_fail_at ? kTfLiteError : kTfLiteOk; }}" for m in methods)
    for name, path in zoo.items():
        model = read_model(path)
        out = tmp_path / name
        write_bundle(make_bundle(model, load_board("native"), check_c_backend=False).files, out)
        stub_dir = out / "tensorflow" / "lite" / "micro"
        stub_dir.mkdir(parents=True)
        (stub_dir / "micro_mutable_op_resolver.h").write_text(RESOLVER_STUB % stub)
        (out / "check.cc").write_text(OPS_CHECK)
        expected = [tflm_method(op) for op in model.ops]
        ok = compile_and_run(out, [out / "check.cc"], args=["-1"]).stdout.split()
        assert ok == [str(len(expected)), "0", str(len(expected))] + expected, name
        # A failing registration is returned at once: nothing after it is attempted.
        failing = compile_and_run(out, [out / "check.cc"], args=["1"]).stdout.split()
        assert failing[:3] == [str(len(expected)), "1" if len(expected) > 1 else "0", str(min(2, len(expected)))]


TWO_BUNDLES_APP = r"""
#include <cstdio>
#include "a/model_data.h"
#include "a/tinykd_arena.h"
#include "a/tinykd_ops.h"
#include "b/model_data.h"
#include "b/tinykd_arena.h"
#include "b/tinykd_ops.h"
#include "both/model_data.h"
#include "both/tinykd_arena.h"
#include "both/tinykd_ops.h"
int g_calls = 0, g_fail_at = -1;
const char *g_called[256];
int main() {
  app_a::OpResolver a;
  app_b::OpResolver b;
  OpResolver both;
  if (app_a::RegisterOps(a) || app_b::RegisterOps(b) || RegisterOps(both)) return 1;
  std::printf("%u %u %u %u\n", app_a::kws_model_len, app_b::net_model_len, g_mlp_model_len, g_plain_conv_model_len);
  std::printf("%d %d %d %d\n", app_a::kOpCount, app_b::kOpCount, kOpCount, g_calls);
  std::printf("%zu %zu %zu %zu\n", kTensorArenaSize, g_mlp_model_arena_size, g_plain_conv_model_arena_size,
              kTensorArenaSizeCmsisNn);
  return 0;
}
"""


def test_several_models_in_one_bundle_and_two_bundles_in_one_application(zoo, tmp_path, monkeypatch, capsys):
    """One bundle of two models (one resolver with the union of their ops, an array and an arena figure
    each, the largest for one arena used in turn) and two single-model bundles with their own namespaces:
    one application includes all three and links their arrays, against the stand-in resolver."""
    monkeypatch.chdir(tmp_path)
    mlp, conv = read_model(zoo["mlp"]), read_model(zoo["plain_conv"])
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(zoo["mlp"]), "--model", str(zoo["plain_conv"]),
                 "--out", "both"]) == 0
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(zoo["mlp"]), "--out", "a",
                 "--namespace", "app_a", "--array-name", "kws_model"]) == 0
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(zoo["plain_conv"]), "--out", "b",
                 "--namespace", "app_b", "--array-name", "net_model"]) == 0
    capsys.readouterr()
    manifest = json.loads((tmp_path / "both" / "manifest.json").read_text())
    arenas = [m["arena"]["target_bytes"] for m in manifest["models"]]
    assert [m["array"] for m in manifest["models"]] == ["g_mlp_model", "g_plain_conv_model"]
    assert manifest["arena"]["target_bytes"] == max(arenas) and not manifest["c_backend"]["available"]
    union = sorted(set(mlp.ops) | set(conv.ops))
    methods = sorted({tflm_method(op) for op in union})
    stub = "\n".join(f"  TfLiteStatus {m}() {{ g_called[g_calls] = \"{m}\"; g_calls++; return kTfLiteOk; }}"
                     for m in methods)
    stub_dir = tmp_path / "tensorflow" / "lite" / "micro"
    stub_dir.mkdir(parents=True)
    (stub_dir / "micro_mutable_op_resolver.h").write_text(RESOLVER_STUB % stub)
    (tmp_path / "app.cc").write_text(TWO_BUNDLES_APP)
    result = compile_and_run(tmp_path, [tmp_path / "app.cc"] + [tmp_path / b / "model_data.cc" for b in ("a", "b", "both")])
    assert result.returncode == 0, result.stdout + result.stderr
    lengths, counts, sizes = (line.split() for line in result.stdout.splitlines())
    assert lengths == [str(len(mlp.data)), str(len(conv.data))] * 2
    assert counts == [str(len(mlp.ops)), str(len(conv.ops)), str(len(union)),
                      str(len(mlp.ops) + len(conv.ops) + len(union))]
    assert [int(v) for v in sizes[:3]] == [max(arenas), *arenas]
    assert code_of(["verify", "--board", "native", "--bundle", "both"], capsys) == 2


def code_of(argv, capsys) -> int:
    code = main(argv)
    assert capsys.readouterr().err.count("\n") == 1
    return code


def test_resolver_methods_follow_tflm_spelling():
    assert tflm_method("CONV_2D") == "AddConv2D"
    assert tflm_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert tflm_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert tflm_method("AVERAGE_POOL_2D") == "AddAveragePool2D"
    assert tflm_method("HARD_SWISH") == "AddHardSwish"
    assert tflm_method("RELU6") == "AddRelu6"
    assert tflm_method("UNIDIRECTIONAL_SEQUENCE_LSTM") == "AddUnidirectionalSequenceLSTM"
    assert tflm_method("RFFT2D") is None


def test_an_op_tflm_cannot_register_is_an_error_naming_op_and_layer(zoo):
    model = read_model(zoo["mlp"])
    model.operators[1].op = "RFFT2D"
    with pytest.raises(TinykdError, match=r"layer 1 uses RFFT2D, which TFLM has no kernel for"):
        tflm_registrations(model)


def test_build_writes_the_bundle_and_is_byte_identical(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = zoo["tiny_student"]
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(model), "--out", "a"]) == 0
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(model), "--out", "b"]) == 0
    out = capsys.readouterr().out
    assert "tensor arena" in out and "wrote" in out
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for relative in files_a:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    m = read_model(model)
    assert manifest["model"]["sha256"] == m.sha256 and manifest["model"]["ops"] == m.ops
    assert manifest["board"]["name"] == "nucleo-f767zi" and manifest["fits"] is True
    assert manifest["arena"]["target_bytes"] >= manifest["arena"]["estimated_bytes"] > 0
    arena_header = (tmp_path / "a" / "tinykd_arena.h").read_text()
    assert f"kTensorArenaSize = {manifest['arena']['target_bytes']};" in arena_header
    for relative in ("riot/tinykd_model/Makefile", "riot/tinykd_model/Makefile.include", "riot/README.md",
                     "zephyr/tinykd.cmake", "zephyr/prj.conf", "zephyr/README.md"):
        assert relative in manifest["files"]
    # The C backend: its static arena is all its RAM, and smaller than TFLM's planned activations.
    c_backend = manifest["c_backend"]
    assert c_backend["available"] and "c/tinykd_model.c" in manifest["files"]
    assert "conv_dsp.c" in c_backend["kernels"]  # a Cortex-M7 has the DSP extension
    header = (tmp_path / "a" / "c" / "tinykd_model.h").read_text()
    assert c_backend["ram_bytes"] == int(re.search(r"TINYKD_ARENA_BYTES (\d+)", header).group(1))
    assert c_backend["ram_bytes"] < manifest["arena"]["planned_bytes"]
    assert 0 < c_backend["flash_bytes"] < manifest["fit"]["tflm"]["flash"]["total_bytes"]
    assert manifest["fit"]["c"]["ram"]["total_bytes"] == c_backend["ram_bytes"] + load_board("nucleo-f767zi").ram_reserved_bytes
    assert manifest["runtimes"] == ["tflm", "c"] and manifest["fit"]["c"]["fits"]
    # The RTOS glue carries what RIOT and Zephyr need to build it as written.
    prj = (tmp_path / "a" / "zephyr" / "prj.conf").read_text()
    assert "CONFIG_TENSORFLOW_LITE_MICRO=y" in prj and "CONFIG_STD_CPP17=y" in prj  # Zephyr defaults to older C++
    zephyr_readme = (tmp_path / "a" / "zephyr" / "README.md").read_text()
    assert "west config manifest.group-filter -- +optional" in zephyr_readme  # tflite-micro is optional there
    assert '#include "tensorflow/lite/micro/micro_interpreter.h"' in zephyr_readme
    assert "SRCXXEXT = cc" in (tmp_path / "a" / "riot" / "tinykd_model" / "Makefile").read_text()
    riot_include = (tmp_path / "a" / "riot" / "tinykd_model" / "Makefile.include").read_text()
    assert "CXXEXFLAGS += -Wno-unused-parameter" in riot_include  # RIOT's -Wextra -Werror vs TFLM's headers
    riot_readme = (tmp_path / "a" / "riot" / "README.md").read_text()
    assert "pm_off()" in riot_readme and "30 minutes" in riot_readme
    assert manifest["tflm"]["pinned_by"]["riot"]["tflite_micro"] == "0.dev20240520175645"
    assert "FULLY_CONNECTED" in manifest["tflm"]["pinned_by"]["zephyr"]["problem"]  # the zoo's dense weights


def dead_channel_model(folder: Path) -> Path:
    """Two convolutions of 40 and 36 output channels; channel 5 of the first is dead: an all-zero filter
    and bias with scale 0, so its multiplier is 0, as in pruned real models. Its block of 32 channels
    then mixes that channel with live ones."""
    import keras
    import numpy as np
    from keras import layers

    from model_suite import zero_dead_scales
    from tinykd.train.quantize import to_int8_tflite

    keras.utils.set_random_seed(5)
    x = inputs = keras.Input((8, 8, 8))
    conv = layers.Conv2D(40, 1, activation="relu")
    x = layers.Conv2D(36, 3, padding="same")(conv(x))
    weights, bias = conv.get_weights()
    weights[..., 5], bias[5] = 0, 0
    conv.set_weights([weights, bias])
    data = to_int8_tflite(keras.Model(inputs, x), np.random.default_rng(5).random((16, 8, 8, 8), dtype=np.float32))
    path = folder / "dead_channel.tflite"
    path.write_bytes(zero_dead_scales(data, str(path)))
    return path


def test_build_checks_its_c_backend_against_tflm_and_refuses_a_wrong_kernel(tmp_path, monkeypatch, capsys):
    """The check runs the board's kernel variant: with a DSP requantization bug (a block of channels on
    the slow path, which a dead channel sends there, computed with the fast path's arithmetic) build exits
    1, names the layer and writes nothing; --no-check writes the bundle anyway, and says so in the
    manifest."""
    import tinykd.deploy.cbackend.lower

    monkeypatch.chdir(tmp_path)
    model = dead_channel_model(tmp_path)
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(model), "--out", "good"]) == 0
    check = json.loads((tmp_path / "good" / "manifest.json").read_text())["c_backend"]["check"]
    assert check["passed"] and check["vectors"] == check["byte_equal"] == 16 and check["kernels"] == "dsp"
    assert "byte-equal with TFLM (tflite-micro" in capsys.readouterr().out

    broken = tmp_path / "runtime"
    broken.mkdir()
    for source in tinykd.deploy.cbackend.lower.RUNTIME_DIR.iterdir():
        (broken / source.name).write_text(source.read_text())
    header = (broken / "tinykd_dsp.h").read_text()
    fixed = "return (int8_t)tk_clamp(tk_multiply(acc, q->multiplier, -q->right) + output_offset, act_min, act_max);"
    assert fixed in header
    (broken / "tinykd_dsp.h").write_text(header.replace(
        fixed, "return (int8_t)tk_clamp(tk_rq_fast_scale(acc, q->multiplier, q->add, q->right), act_min, act_max);"))
    monkeypatch.setattr(tinykd.deploy.cbackend.lower, "RUNTIME_DIR", broken)
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(model), "--out", "bad"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing written" in err
    assert re.search(r"the C backend \(dsp kernels\) differs from TFLM \(tflite-micro \S+, host\) on \d+ of 16 "
                     r"random vectors, first at layer 0 \(CONV_2D\)", err), err
    assert not (tmp_path / "bad").exists()
    # the portable kernels do not use that header: a board without DSP still builds
    assert main(["build", "--board", "rpi-pico", "--model", str(model), "--out", "pico"]) == 0
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(model), "--out", "bad", "--no-check"]) == 0
    check = json.loads((tmp_path / "bad" / "manifest.json").read_text())["c_backend"]["check"]
    assert check == {"passed": None, "vectors": 0, "result": "not run"}


@pytest.mark.parametrize("out", ["/proc/tinykd-bundle", "a_file/sub"])
def test_an_output_folder_that_cannot_be_made_is_a_one_line_error(zoo, tmp_path, monkeypatch, capsys, out):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("mine")
    assert main(["build", "--board", "native", "--model", str(zoo["mlp"]), "--out", out, "--no-check"]) == 2
    err = capsys.readouterr().err
    assert "cannot create the bundle's folder" in err and err.count("\n") == 1  # before any other work
    assert (tmp_path / "a_file").read_text() == "mine"


def test_build_refuses_a_foreign_folder_unless_forced(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    args = ["build", "--board", "native", "--model", str(zoo["mlp"]), "--out", str(out)]
    assert main(args) == 2
    assert "not made by tinykd build" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main(args + ["--force"]) == 0
    assert (out / "notes.txt").read_text() == "keep me" and (out / "manifest.json").exists()
    # Its own bundle is replaced without --force, whole.
    assert main(["build", "--board", "native", "--model", str(zoo["mlp"])]) == 0
    (tmp_path / "build" / "native" / "stale.h").write_text("")
    assert main(["build", "--board", "native", "--model", str(zoo["mlp"])]) == 0
    assert not (tmp_path / "build" / "native" / "stale.h").exists()


def test_a_model_too_big_for_the_board_exits_1_and_writes_nothing(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "small.toml").write_text(profile(name="small", flash_bytes=16_384, ram_bytes=20_000))
    assert main(["build", "--board", "small", "--model", str(zoo["residual_add"])]) == 1
    captured = capsys.readouterr()
    assert "does not fit small: TFLM needs more flash and RAM; C backend needs more flash and RAM" in captured.err
    assert captured.err.count("error") == 1 and "C backend" in captured.out and "tensor arena" in captured.out
    assert not (tmp_path / "build").exists()
    # verify, which runs the C backend, says so the same way, with a hint that runs as printed
    assert main(["verify", "--board", "small", "--model", str(zoo["residual_add"]), "--target", "native"]) == 1
    err = capsys.readouterr().err
    assert f"tinykd build --board small --model {zoo['residual_add']} shows the fit" in err
    assert err.count("\n") == 1 and not (tmp_path / "build").exists()


def test_each_runtime_has_its_own_fit_and_one_that_fits_is_written_alone_or_with_a_warning(
        zoo, tmp_path, monkeypatch, capsys):
    """A board with too little flash for TFLM's code but room for the C backend."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "tiny.toml").write_text(profile(name="tiny", flash_bytes=32_768))
    model = str(zoo["mlp"])
    assert main(["build", "--board", "tiny", "--model", model, "--no-check", "--out", "all"]) == 0
    captured = capsys.readouterr()
    assert "warning: TFLM does not fit tiny (not enough flash); the C backend does (--runtime c" in captured.err
    manifest = json.loads((tmp_path / "all" / "manifest.json").read_text())
    assert manifest["fit"]["tflm"]["fits"] is False and manifest["fit"]["c"]["fits"] is True and manifest["fits"]
    assert main(["build", "--board", "tiny", "--model", model, "--no-check", "--out", "c", "--runtime", "c"]) == 0
    assert capsys.readouterr().err == ""
    files = {p.relative_to(tmp_path / "c").as_posix() for p in (tmp_path / "c").rglob("*") if p.is_file()}
    assert {"c/tinykd_model.c", "arduino/tinykd_mlp/library.properties", "model.tflite"} <= files
    assert not {"model_data.cc", "tinykd_ops.h", "tinykd_arena.h"} & files and not any(
        f.startswith(("riot/", "zephyr/")) for f in files)
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["runtimes"] == ["c"]
    assert main(["build", "--board", "tiny", "--model", model, "--out", "t", "--runtime", "tflm"]) == 1
    assert "TFLM needs more flash" in capsys.readouterr().err and not (tmp_path / "t").exists()
    assert main(["build", "--board", "nucleo-f767zi", "--model", model, "--out", "t", "--runtime", "tflm"]) == 0
    assert not (tmp_path / "t" / "c").exists() and (tmp_path / "t" / "model_data.cc").is_file()


@pytest.mark.parametrize("option, value, says", [
    ("--array-name", "2bad", "not a C identifier"), ("--array-name", "class", "reserved word"),
    ("--array-name", "__model", "reserved word"), ("--namespace", "app::new", "reserved word"),
    ("--riot-module", "bad\nname", "not a C identifier")])
def test_build_names_must_be_c_identifiers_and_not_reserved(zoo, tmp_path, monkeypatch, capsys, option, value, says):
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--board", "native", "--model", str(zoo["mlp"]), option, value]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and not (tmp_path / "build").exists()


def test_a_model_file_name_with_newline_and_quotes_gives_sources_that_compile(zoo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    odd = tmp_path / 'odd\n* "name\\.tflite'
    odd.write_bytes(zoo["mlp"].read_bytes())
    assert main(["build", "--board", "native", "--model", str(odd), "--out", "b", "--no-check"]) == 0
    bundle = tmp_path / "b"
    assert "odd?* ?name?.tflite" in (bundle / "model_data.cc").read_text()
    (bundle / "check.cc").write_text(MODEL_CHECK)
    result = compile_and_run(bundle, [bundle / "model_data.cc", bundle / "check.cc"],
                             ["-DNS=", "-Dg_model_name=g_model", "-Dg_model_name_len=g_model_len"], [odd])
    assert result.stdout.strip() == "ok", result.stdout + result.stderr
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-c", "tinykd_model.c", "-o", "m.o"], cwd=bundle / "c",
                   check=True)


@pytest.fixture
def bad_models(tmp_path, zoo):
    data = zoo["plain_conv"].read_bytes()
    files = {"empty": b"", "truncated": data[:len(data) // 3], "text": b"hello, this is not a model\n" * 10,
             "random": random.Random(0).randbytes(4000)}
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.tflite"
        paths[name].write_bytes(content)
    return paths


@pytest.mark.parametrize("command", ["inspect", "build"])
def test_bad_model_files_are_one_line_errors(bad_models, tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    for name, path in list(bad_models.items()) + [("missing", tmp_path / "missing.tflite")]:
        args = ["inspect", str(path)] if command == "inspect" else ["build", "--board", "native", "--model", str(path)]
        assert main(args) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err, (name, err)
    assert not (tmp_path / "build").exists()


def test_a_float_model_is_refused_by_build(tmp_path, monkeypatch, capsys):
    from zoo import mlp

    from tinykd.core.console import quiet
    from tinykd.train.quantize import to_float_tflite

    with quiet():
        data = to_float_tflite(mlp())
    path = tmp_path / "float.tflite"
    path.write_bytes(data)
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--board", "native", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not a full-integer INT8 model" in err and err.count("\n") == 1


def test_damaged_models_raise_only_tinykd_errors(zoo):
    """Random corruption of a real model: reading, estimating and generating either work or say why."""
    data = zoo["depthwise_separable"].read_bytes()
    board = load_board("nucleo-f767zi")
    rng = random.Random(1)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(damaged))
            damaged[position] = rng.randrange(256)
        if rng.random() < 0.2:
            damaged = damaged[:rng.randrange(len(damaged))]
        try:
            make_bundle(parse_model(bytes(damaged), "damaged.tflite"), board, size_c_backend=False,
                        check_c_backend=False)
            outcomes["ok"] += 1
        except TinykdError as exc:
            assert "damaged.tflite" in str(exc) or "TFLM" in str(exc) or "INT8" in str(exc), str(exc)
            outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


def test_inspect_counts_macs_and_bytes(zoo, capsys):
    assert main(["inspect", str(zoo["plain_conv"]), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # conv 3x3x1 -> 24x24x8, dense 1152 -> 16, dense 16 -> 10
    assert [layer["macs"] for layer in summary["layers"] if layer["macs"]] == [24 * 24 * 8 * 9, 1152 * 16, 160]
    assert summary["macs"] == 24 * 24 * 8 * 9 + 1152 * 16 + 160
    conv = summary["layers"][0]
    assert conv["op"] == "CONV_2D" and conv["output_shape"] == [1, 24, 24, 8]
    assert conv["weight_bytes"] == 8 * 9 + 8 * 4 and conv["activation_bytes"] == 24 * 24 * 8
    assert conv["options"]["padding"] == "SAME" and conv["options"]["fusedActivationFunction"] == "RELU"
    assert main(["inspect", str(zoo["plain_conv"])]) == 0
    table = capsys.readouterr().out
    assert "CONV_2D" in table and "1x24x24x8" in table and f"{summary['macs']:,}" in table


def test_every_builtin_board_loads_and_lists(capsys):
    names = {b.name for b in all_boards()[0]}
    assert {"nucleo-f767zi", "disco-f746ng", "nucleo-f446re", "nucleo-l432kc", "nrf52840dk",
            "arduino-nano-33-ble", "bluepill", "rpi-pico", "mps2-an500", "mps2-an386", "mps3-an547",
            "nucleo-l552ze-q", "native"} <= names
    f767 = load_board("nucleo-f767zi")
    assert (f767.cpu, f767.flash_bytes, f767.ram_bytes, f767.pointer_bytes) == ("cortex-m7", 2 << 20, 512 << 10, 4)
    assert load_board("native").pointer_bytes == 8
    assert main(["boards"]) == 0
    assert "nucleo-f767zi" in capsys.readouterr().out
    assert main(["boards", "--json"]) == 0
    assert {b["name"] for b in json.loads(capsys.readouterr().out)} == names


def test_unknown_and_malformed_board_profiles(tmp_path, monkeypatch, capsys):
    assert main(["build", "--board", "nucleo-f999", "--model", "x.tflite"]) == 2
    err = capsys.readouterr().err
    assert "unknown board 'nucleo-f999'" in err and "nucleo-f767zi" in err
    monkeypatch.setenv("TINYKD_BOARDS", str(tmp_path))
    (tmp_path / "myboard.toml").write_text('name = "myboard"\ncpu = "cortex-m4"\n')
    assert main(["boards"]) == 2
    err = capsys.readouterr().err
    assert "myboard.toml" in err and err.count("\n") == 1
    (tmp_path / "myboard.toml").write_text("name = [unclosed")
    assert main(["boards"]) == 2
    captured = capsys.readouterr()
    assert "myboard.toml: not a readable TOML board profile" in captured.err
    assert "nucleo-f767zi" in captured.out  # the profiles that load are still listed


def profile(**changes) -> str:
    """nucleo-f446re's profile text with some keys changed."""
    text = (Path(load_board.__code__.co_filename).parent / "nucleo-f446re.toml").read_text()
    for key, value in changes.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {json.dumps(value)}", text, flags=re.MULTILINE)
    return text


@pytest.mark.parametrize("changes, says", [
    (dict(cpu="cortex-m99"), "cpu = 'cortex-m99' is not a core tinykd knows"),
    (dict(kernels="mve"), "kernels = 'mve': a cortex-m4 runs only the portable or dsp kernels"),
    (dict(cpu="cortex-m0plus"), "kernels = 'dsp': a cortex-m0plus runs only the portable kernels"),
    (dict(kernels="neon"), "kernels = 'neon' must be one of portable, dsp, mve")])
def test_board_profiles_are_checked_before_any_work(zoo, tmp_path, monkeypatch, capsys, changes, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "myboard.toml").write_text(profile(name="myboard", **changes))
    assert main(["build", "--board", "myboard", "--model", str(zoo["mlp"])]) == 2
    err = capsys.readouterr().err
    assert says in err and "myboard.toml" in err and err.count("\n") == 1
    assert not (tmp_path / "build").exists()


def test_a_profile_that_replaces_a_built_in_board_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "nucleo-f446re.toml").write_text(profile(ram_bytes=65536))
    assert load_board("nucleo-f446re").ram_bytes == 65536
    assert "replaces the built-in profile" in caplog.text
