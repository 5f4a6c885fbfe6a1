import keras
import numpy as np
import pytest

from tinykd.core.errors import TinykdError
from tinykd.train.models import ARCHITECTURES, build_model


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("shape", [(48, 48, 1), (32, 32, 3), (12, 12, 1)])
def test_every_architecture_emits_logits(name, shape):
    model = build_model(name, shape, 7)
    out = model.predict(np.random.default_rng(0).random((2,) + shape, np.float32), verbose=0)
    assert out.shape == (2, 7)
    assert model.layers[-1].get_config().get("activation", "linear") == "linear", "logits, not softmax"
    assert not np.allclose(out.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", [n for n, a in ARCHITECTURES.items() if n != "classic_student"])
def test_width_knob_scales_parameters(name):
    narrow = build_model(name, (32, 32, 1), 10, width=0.5).count_params()
    wide = build_model(name, (32, 32, 1), 10, width=2.0).count_params()
    assert narrow < build_model(name, (32, 32, 1), 10).count_params() < wide


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
