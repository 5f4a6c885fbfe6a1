"""`tinykd verify`: every zoo model byte-equal to TFLM on the host, natively and on emulated Cortex-M
cores; a difference is reported with the first mismatching vector and the first layer that differs."""

import json
import re
from pathlib import Path

import pytest

from tinykd.cli import main

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"


def verify(tmp_path, capsys, *args):
    code = main(["verify", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err):
    """The error is one line, the last: only progress lines come before it, and no traceback."""
    lines = err.splitlines()
    return (lines[-1].startswith("tinykd: error: ") and "Traceback" not in err
            and not any("error" in line for line in lines[:-1]))


def runtime_rows(report):
    return {r["runtime"]: r for r in report["runtimes"]}


def test_every_zoo_model_is_bit_exact_natively_and_on_cortex_m7(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, path in zoo.items():
        code, out, err = verify(tmp_path, capsys, "--board", "nucleo-f767zi", "--model", str(path),
                                "--out", f"b/{name}", "--vectors", "40")
        assert code == 0, (name, out, err)
        report = json.loads((tmp_path / "b" / name / "verify.json").read_text())
        rows = runtime_rows(report)
        assert report["bit_exact"] and report["vectors"] == 40
        native, qemu = rows["C backend, host gcc (native)"], rows["firmware on qemu (cortex-m7)"]
        assert native["byte_equal"] == qemu["byte_equal"] == 40 and qemu["max_abs_diff"] == 0
        assert qemu["instructions_per_inference"] > 0 and qemu["ram_bytes"] > 0
        assert "bit-exact" in out and "(cross-check)" in out


@pytest.mark.parametrize("board", ["nucleo-f446re", "rpi-pico"])
def test_cortex_m4_and_m0plus_are_bit_exact_too(zoo, tmp_path, monkeypatch, capsys, board):
    monkeypatch.chdir(tmp_path)
    code, out, err = verify(tmp_path, capsys, "--board", board, "--model", str(zoo["tiny_student"]),
                            "--vectors", "30")
    assert code == 0, (out, err)
    report = json.loads((tmp_path / "build" / board / "verify.json").read_text())
    assert all(r["byte_equal"] == 30 for r in report["runtimes"] if not r["cross_check"])


def test_instruction_count_is_repeatable(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    counts = []
    for _ in range(2):
        assert verify(tmp_path, capsys, "--board", "mps2-an500", "--model", str(zoo["mlp"]), "--vectors", "5")[0] == 0
        report = json.loads((tmp_path / "build/mps2-an500/verify.json").read_text())
        counts.append(runtime_rows(report)["firmware on qemu (cortex-m7)"]["instructions_per_inference"])
    assert counts[0] == counts[1] > 0


def test_a_wrong_kernel_parameter_is_caught_with_vector_and_layer(zoo, tmp_path, monkeypatch, capsys):
    """Damage one requantization multiplier of layer 1 in a built bundle: verify exits 1 and names it."""
    monkeypatch.chdir(tmp_path)
    assert verify(tmp_path, capsys, "--board", "native", "--model", str(zoo["mlp"]), "--vectors", "5")[0] == 0
    source = tmp_path / "build/native/c/tinykd_model.c"
    text = source.read_text()
    damaged = re.sub(r"(static const int32_t layer1_multiplier\[\d+\] = \{\s*)(\d+)",
                     lambda m: m.group(1) + str(int(m.group(2)) // 2), text, count=1)
    assert damaged != text
    source.write_text(damaged)
    code, out, err = verify(tmp_path, capsys, "--board", "native", "--bundle", "build/native", "--vectors", "20")
    assert code == 1
    assert "C backend, host gcc (native) differs from TFLM" in err and "first: vector" in err
    assert "first differs at layer 1 (FULLY_CONNECTED)" in err
    report = json.loads((tmp_path / "build/native/verify.json").read_text())
    assert not report["bit_exact"] and report["first_divergent_layer"]["layer"] == 1


def test_verify_shows_its_progress_with_the_time_left(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert verify(tmp_path, capsys, "--board", "native", "--model", str(zoo["mlp"]), "--vectors", "60")[0] == 0
    code, out, err = verify(tmp_path, capsys, "--board", "native", "--bundle", "build/native", "--vectors", "60")
    lines = err.splitlines()
    assert code == 0 and "tinykd: 60 vectors (seeded random int8 vectors) through TFLM" in lines[0]
    steps = [line for line in lines if line.startswith("tinykd: C backend, host gcc (native): ")]
    assert len(steps) == 10 and all(line.endswith(" left") for line in steps[:-1]), lines
    assert re.fullmatch(r"tinykd: C backend, host gcc \(native\): 60 vectors in \d+ s", steps[-1])
    assert main(["-q", "verify", "--board", "native", "--bundle", "build/native", "--vectors", "60"]) == 0
    assert capsys.readouterr().err == ""

def softmax_model(folder, classes, weight_scale, bias_range):
    """Dense -> SOFTMAX with the dense weights scaled by `weight_scale` and biases in +-bias_range."""
    import keras
    import numpy as np
    from keras import layers

    from tinykd.train.quantize import to_int8_tflite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    dense = layers.Dense(classes)
    model = keras.Model(inputs, layers.Softmax()(dense(inputs)))
    weights, _ = dense.get_weights()
    bias = np.random.default_rng(0).uniform(-bias_range, bias_range, classes).astype(np.float32)
    dense.set_weights([weights * weight_scale, bias])
    path = folder / f"softmax{classes}.tflite"
    path.write_bytes(to_int8_tflite(model, np.random.default_rng(0).random((16, 4), dtype=np.float32)))
    return path


def test_models_tflm_aborts_on_are_one_line_errors_not_signals(tmp_path, monkeypatch, capsys):
    """TFLM checks some conditions with a bare abort(): logits so small that the softmax input scale is
    below 2^-26 (an untrained model: refused before TFLM runs, also for the device's sake), and 512 or
    more nearly equal logits (TFLM crashes while running; the crash is reported, tinykd carries on)."""
    monkeypatch.chdir(tmp_path)
    vanishing = softmax_model(tmp_path, 10, 1e-9, 0.0)
    for command in ("build", "verify"):
        code = main([command, "--board", "native", "--model", str(vanishing)])
        err = capsys.readouterr().err
        assert code == 2 and one_error_line(err), err
        assert "TFLM cannot run this model: layer 1 (SOFTMAX): its input scale" in err and "2^-26" in err
    assert not (tmp_path / "build").exists()
    flat = softmax_model(tmp_path, 600, 1e-4, 0.01)
    code, _, err = verify(tmp_path, capsys, "--board", "native", "--model", str(flat), "--vectors", "2")
    assert code == 2 and one_error_line(err), err
    assert re.search(r"softmax600.tflite: the host TFLM \(tflite-micro \S+\) crashed \(SIGABRT\) on this model "
                     r"\(its int8 SOFTMAX aborts when 512 or more classes have nearly equal logits", err), err
    assert main(["build", "--board", "native", "--model", str(flat)]) == 2
    assert "--no-check writes the bundle without checking it" in capsys.readouterr().err


def test_a_depthwise_conv_without_bias_crashes_tflm_and_is_reported(zoo, tmp_path, monkeypatch, capsys):
    """TFLM segfaults on a DEPTHWISE_CONV_2D whose optional bias is absent (the converter always writes
    one): one line naming the signal and the layer."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    monkeypatch.chdir(tmp_path)
    data = zoo["depthwise_separable"].read_bytes()
    flat = schema.ModelT.InitFromPackedBuf(data, 0)
    depthwise = next(op for op in flat.subgraphs[0].operators
                     if flat.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.DEPTHWISE_CONV_2D)
    depthwise.inputs = [depthwise.inputs[0], depthwise.inputs[1], -1]
    builder = flatbuffers.Builder(len(data))
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    (tmp_path / "no_bias.tflite").write_bytes(bytes(builder.Output()))
    code, _, err = verify(tmp_path, capsys, "--board", "native", "--model", "no_bias.tflite", "--vectors", "2")
    assert code == 2 and one_error_line(err), err
    assert re.search(r"crashed \(SIG[A-Z]+\) on this model \(it crashes on a DEPTHWISE_CONV_2D without a bias "
                     r"input \(layer \d+\)\)", err), err


RIOT_TFLM = "0.dev20240520175645"


def test_verify_against_riots_tflm_names_the_layer_where_the_versions_differ(zoo, tmp_path, monkeypatch, capsys):
    """RIOT's TFLM (2024-05) computes per-channel dense layers with the first channel's scale. The zoo's
    models have them (the converter's default): there RIOT's TFLM and the latest differ, first at a
    FULLY_CONNECTED, and verify --tflm riot reports that layer and fails, since the C backend computes
    today's bytes. With one scale per dense layer (the pipeline's default) all three agree."""
    from zoo import build_zoo

    monkeypatch.chdir(tmp_path)
    names = ("mlp", "concat_mul")  # dense layers only; hard-swish, a sigmoid gate and a dense head
    per_tensor = build_zoo(tmp_path, names, per_channel_dense=False)
    for name in names:
        code, out, err = verify(tmp_path, capsys, "--board", "native", "--model", str(zoo[name]), "--out",
                                f"per-channel/{name}", "--tflm", "riot", "--vectors", "10")
        report = json.loads((tmp_path / "per-channel" / name / "verify.json").read_text())
        versions, layer = report["tflm_versions"], report["first_divergent_layer"]
        assert code == 1 and report["tflm"]["version"] == versions["reference"] == RIOT_TFLM, (out, err)
        assert versions["byte_equal"] < 10 and versions["first_divergent_layer"]["op"] == "FULLY_CONNECTED"
        assert layer["layer"] == versions["first_divergent_layer"]["layer"]
        assert f"they first differ at layer {layer['layer']} (FULLY_CONNECTED)" in out
        assert f"differs from TFLM (tflite-micro {RIOT_TFLM}, host)" in err

        code, out, err = verify(tmp_path, capsys, "--board", "native", "--model", str(per_tensor[name]), "--out",
                                f"per-tensor/{name}", "--tflm", "riot", "--vectors", "10")
        report = json.loads((tmp_path / "per-tensor" / name / "verify.json").read_text())
        assert code == 0 and report["bit_exact"], (out, err)
        assert report["tflm_versions"]["byte_equal"] == 10 and "first_divergent_layer" not in report["tflm_versions"]
        assert "agree on 10 of 10 vectors" in out


def test_verify_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    code, _, err = verify(tmp_path, capsys, "--board", "native", "--bundle", "empty")
    assert code == 2 and err.count("\n") == 1 and "not a bundle (no readable manifest.json)" in err
    code, _, err = verify(tmp_path, capsys, "--board", "native", "--model", "missing.tflite")
    assert code == 2 and "missing.tflite" in err
    for args, message in [(["--vectors", "1000000000000"], "--vectors 1000000000000: give between 1 and 100,000"),
                          (["--vectors", "0"], "give between 1 and 100,000 vectors"),
                          (["--target", "bogus"], "unknown target 'bogus'"),
                          (["--target", "qemu"], "board native is the host; run it with the native target")]:
        code, _, err = verify(tmp_path, capsys, "--board", "native", "--model", "missing.tflite", *args)
        assert code == 2 and err.count("\n") == 1 and message in err, (args, err)


def test_a_bundle_for_another_board_is_refused(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--board", "nucleo-f767zi", "--model", str(zoo["mlp"]), "--out", "f767"]) == 0
    capsys.readouterr()
    code, _, err = verify(tmp_path, capsys, "--board", "rpi-pico", "--bundle", "f767")
    assert code == 2 and err.count("\n") == 1
    assert "f767: the bundle was built for board nucleo-f767zi, not rpi-pico" in err
    assert not (tmp_path / "f767" / "verify.json").exists()


@pytest.mark.skipif(not SHARED_MODELS.is_dir(), reason="the MLPerf Tiny models are not in ../shared/models")
@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite"])
def test_mlperf_tiny_models_are_bit_exact_on_cortex_m7(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = verify(tmp_path, capsys, "--board", "nucleo-f767zi", "--model", str(SHARED_MODELS / name),
                            "--vectors", "10")
    assert code == 0, (out, err)
