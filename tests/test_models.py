import keras
import numpy as np
import pytest

from tinykd.core.errors import TinykdError
from tinykd.train.models import ARCHITECTURES, build_model


IMAGE_ARCHITECTURES = sorted(n for n, a in ARCHITECTURES.items() if len(a.example_input) == 3)
SEQUENCE_ARCHITECTURES = sorted(n for n, a in ARCHITECTURES.items() if len(a.example_input) == 2)
VECTOR_ARCHITECTURES = sorted(n for n, a in ARCHITECTURES.items() if len(a.example_input) == 1)


@pytest.mark.parametrize("name, shape", [(n, s) for n in IMAGE_ARCHITECTURES
                                         for s in [(48, 48, 1), (32, 32, 3), (12, 12, 1), (49, 10, 1)]]
                         + [(n, s) for n in SEQUENCE_ARCHITECTURES for s in [(128, 3), (16, 1)]]
                         + [(n, s) for n in VECTOR_ARCHITECTURES for s in [(20,), (64, 3), (12, 12, 1)]])
def test_every_architecture_emits_logits(name, shape):
    model = build_model(name, shape, 7)
    out = model.predict(np.random.default_rng(0).random((2,) + shape, np.float32), verbose=0)
    assert out.shape == (2, 7)
    assert model.layers[-1].get_config().get("activation", "linear") == "linear", "logits, not softmax"
    assert not np.allclose(out.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", [n for n, a in ARCHITECTURES.items() if n != "classic_student"])
def test_width_knob_scales_parameters(name):
    shape = ARCHITECTURES[name].example_input
    narrow = build_model(name, shape, 10, width=0.5).count_params()
    wide = build_model(name, shape, 10, width=2.0).count_params()
    assert narrow < build_model(name, shape, 10).count_params() < wide


@pytest.mark.parametrize("name", [n for n, a in ARCHITECTURES.items() if a.role == "student"])
def test_every_student_has_a_depth_knob_that_adds_layers(name):
    shape = ARCHITECTURES[name].example_input
    base, deeper = build_model(name, shape, 10), build_model(name, shape, 10, depth=2)
    assert ARCHITECTURES[name].deepens
    assert len(deeper.layers) > len(base.layers) and deeper.count_params() > base.count_params()
    assert deeper.output_shape == (None, 10)


def test_depth_is_refused_where_there_is_none():
    with pytest.raises(TinykdError, match="architecture 'cnn_teacher' has no depth setting"):
        build_model("cnn_teacher", (48, 48, 1), 10, depth=1)
    with pytest.raises(TinykdError, match="depth must not be negative"):
        build_model("tiny_conv", (48, 48, 1), 10, depth=-1)


def test_classic_student_is_conv8_pool_dense16_dense10():
    model = build_model("classic_student", (48, 48, 1), 10)
    kinds = [(type(layer).__name__, getattr(layer, "filters", None) or getattr(layer, "units", None))
             for layer in model.layers[1:]]
    assert kinds == [("Conv2D", 8), ("MaxPooling2D", None), ("Flatten", None), ("Dense", 16), ("Dense", 10)]


def test_teacher_has_batch_norm_dropout_and_l2():
    model = build_model("cnn_teacher", (48, 48, 1), 10)
    types = {type(layer).__name__ for layer in model.layers}
    assert {"BatchNormalization", "Dropout"} <= types
    conv = model.get_layer("block1_conv")
    assert isinstance(conv.kernel_regularizer, keras.regularizers.L2)
    assert conv.kernel_regularizer.l2 == pytest.approx(1e-4)


def test_unknown_architecture_lists_known():
    with pytest.raises(TinykdError, match="unknown architecture 'big'.*cnn_teacher.*tiny_dsconv"):
        build_model("big", (48, 48, 1), 10)


def test_too_small_input_is_a_clear_error():
    with pytest.raises(TinykdError, match="'classic_student' cannot take \\(2, 2, 1\\) inputs"):
        build_model("classic_student", (2, 2, 1), 10)


def test_ds_cnn_student_has_the_keyword_spotting_size():
    """MLPerf Tiny's DS-CNN on 49x10 MFCCs with 12 classes: about 25k parameters."""
    model = build_model("ds_cnn_student", (49, 10, 1), 12)
    assert 24_000 < model.count_params() < 26_000
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("DepthwiseConv2D") == 4 and "AveragePooling2D" in kinds
    assert model.get_layer("stem_conv").kernel_size == (10, 4)


@pytest.mark.parametrize("name, shape, message", [
    ("conv1d_student", (48, 48, 1), "want \\(length, channels\\) sequences"),
    ("ds_cnn_student", (128, 3), "wants \\(time, frequency, channels\\) features"),
])
def test_an_input_of_the_wrong_rank_is_a_clear_error(name, shape, message):
    with pytest.raises(TinykdError, match=f"'{name}' cannot take .* inputs: .*{message}"):
        build_model(name, shape, 4)
