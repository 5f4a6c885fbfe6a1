"""Student training by knowledge distillation, built on `keras.distillation`.

loss = alpha * CE(labels, student) + (1 - alpha) * [T^2 * KL(softmax(teacher/T) || softmax(student/T))
                                                   + sum of weighted feature losses]

Teachers are Keras models (`.keras`) or ONNX models (`.onnx`, run with onnxruntime); several teachers
are averaged at the logit level. When the student trains without augmentation and without feature KD,
the teachers' logits are computed once per image and reused every epoch, so a KD epoch costs about
what a plain student epoch costs. Otherwise the teachers run inside every training step: a Keras
teacher as part of the step's graph, an ONNX teacher through onnxruntime called from it (a
`tf.numpy_function`; feature KD needs a Keras teacher, whose layers it names).
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from tinykd.core.artifacts import RunLayout
from tinykd.core.config import FeatureKD, StudentConfig
from tinykd.train.data import Dataset
from tinykd.core.errors import TinykdError
from tinykd.train.models import build_model, load_keras_model
from tinykd.train.train import adam, fit, make_batches, save_model, steps_per_epoch, train_classifier

log = logging.getLogger(__name__)

PREDICT_BATCH = 512


class OnnxTeacher:
    """An ONNX classifier run with onnxruntime; NHWC or NCHW image input, logits out."""

    def __init__(self, path: Path):
        import onnxruntime

        self.path = Path(path)
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise TinykdError(f"{self.path}: cannot load ONNX model ({exc})") from None
        model_input = self.session.get_inputs()[0]
        self.input_name, self.input_shape = model_input.name, model_input.shape

    def keras_model(self, input_shape, num_classes: int):
        """A Keras model whose forward pass runs this ONNX model (not differentiable, not saveable:
        a frozen teacher inside the training step)."""
        image = keras.Input(tuple(input_shape), name="image")
        return keras.Model(image, _OnnxLogits(self, num_classes)(image), name=f"onnx_{self.path.stem}")

    def logits(self, images: np.ndarray) -> np.ndarray:
        channels = images.shape[-1]
        nchw = len(self.input_shape) == 4 and self.input_shape[1] == channels and self.input_shape[3] != channels
        outputs = []
        for i in range(0, len(images), PREDICT_BATCH):
            batch = images[i:i + PREDICT_BATCH].astype(np.float32)
            if nchw:
                batch = batch.transpose(0, 3, 1, 2)
            try:
                outputs.append(np.asarray(self.session.run(None, {self.input_name: batch})[0]))
            except Exception as exc:
                raise TinykdError(f"{self.path}: ONNX teacher failed on input {batch.shape} ({exc})") from None
        return np.concatenate(outputs).reshape(len(images), -1)


class _OnnxLogits(keras.layers.Layer):
    """An ONNX teacher's logits as a layer: onnxruntime runs on each batch outside the TensorFlow graph."""

    def __init__(self, teacher: OnnxTeacher, num_classes: int, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.teacher, self.num_classes = teacher, num_classes
        self.supports_jit = False  # XLA cannot compile a call into Python

    def call(self, images):
        import tensorflow as tf

        logits = tf.numpy_function(self.teacher.logits, [images], tf.float32, stateful=False)
        logits.set_shape([images.shape[0], self.num_classes])
        return logits

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)


class KerasTeacher:
    """A trained Keras classifier that outputs logits."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.model = load_keras_model(self.path)

    def keras_model(self, input_shape, num_classes: int):
        """The model itself (the arguments matter to ONNX teachers only)."""
        return self.model

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self.model.predict(images, batch_size=PREDICT_BATCH, verbose=0)


def load_teacher(path: str | Path):
    """A teacher from a `.keras` or `.onnx` file."""
    path = Path(path)
    if not path.is_file():
        raise TinykdError(f"{path}: teacher model not found")
    if path.suffix == ".onnx":
        return OnnxTeacher(path)
    if path.suffix == ".keras":
        return KerasTeacher(path)
    raise TinykdError(f"{path}: a teacher must be a .keras or .onnx file")


def ensemble_logits(teachers: list, images: np.ndarray, num_classes: int) -> np.ndarray:
    """The teachers' logits averaged over the ensemble."""
    total = np.zeros((len(images), num_classes), np.float32)
    for teacher in teachers:
        logits = teacher.logits(images)
        if logits.shape != total.shape:
            raise TinykdError(f"{teacher.path}: teacher gives {logits.shape[1:]} outputs, "
                              f"the dataset has {num_classes} classes")
        total += logits
    return total / len(teachers)


def make_distiller(teacher, student, alpha: float, temperature: float, features=(), optimizer="adam"):
    """A `keras.distillation.Distiller` with logit KD (T^2-scaled KL) and optional feature KD.

    Note: LogitsDistillation's default loss string "kl_divergence" resolves to a plain function, which
    skips the softmax and the T^2 factor; passing the `KLDivergence` class gives the textbook loss.
    """
    losses = [keras.distillation.LogitsDistillation(temperature=temperature, loss=keras.losses.KLDivergence())]
    weights = [1.0]
    for pair in features:
        losses.append(keras.distillation.FeatureDistillation(
            loss=_Reduced(pair.loss), teacher_layer_name=pair.teacher_layer, student_layer_name=pair.student_layer))
        weights.append(pair.weight)
    cls = _ProjectingDistiller if features else keras.distillation.Distiller
    distiller = cls(teacher=teacher, student=student, distillation_losses=losses,
                    distillation_loss_weights=weights, student_loss_weight=alpha)
    distiller.compile(optimizer=optimizer,
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                      metrics=["categorical_accuracy"])
    return distiller


class _Reduced(keras.losses.Loss):
    """A named loss function as a `Loss` object: Keras scales those (not plain functions) for the number
    of devices in a tf.distribute strategy, as it does the label and logit terms."""

    def __init__(self, name: str):
        super().__init__(name=name)
        self.function = keras.losses.get(name)

    def call(self, y_true, y_pred):
        return self.function(y_true, y_pred)


class _ProjectingDistiller(keras.distillation.Distiller):
    """Distiller whose student features pass through a learned projection to the teacher's shape.

    Feature maps are resized to the teacher's height and width and mapped to its channels by a 1x1
    convolution; vectors by a dense layer. Equal shapes pass unchanged. The projections train with the
    student and are not part of the saved student.
    """

    def _create_feature_extractor(self, model, layer_names):
        if model is not self.student or not layer_names:
            return super()._create_feature_extractor(model, layer_names)
        outputs = {"final_output": model.output}
        for loss in self.distillation_losses:
            name = getattr(loss, "student_layer_name", None)
            if name:
                feature = model.get_layer(name).output
                target = self.teacher.get_layer(loss.teacher_layer_name).output.shape
                outputs[name] = _project(feature, target, f"project_{name}")
        return keras.Model(model.inputs, outputs, name=f"{model.name}_projected_features")


def _project(feature, target_shape, name):
    if tuple(feature.shape[1:]) == tuple(target_shape[1:]):
        return feature
    if len(feature.shape) != len(target_shape):
        raise TinykdError(f"feature KD: cannot match student shape {tuple(feature.shape[1:])} "
                          f"to teacher shape {tuple(target_shape[1:])}; pick layers of the same rank")
    if len(target_shape) == 4:
        if tuple(feature.shape[1:3]) != tuple(target_shape[1:3]):
            feature = keras.layers.Resizing(target_shape[1], target_shape[2], name=f"{name}_resize")(feature)
        return keras.layers.Conv2D(target_shape[3], 1, name=f"{name}_conv")(feature)
    return keras.layers.Dense(target_shape[-1], name=f"{name}_dense")(feature)


def _default_feature_loss(pair: FeatureKD, teacher_model) -> FeatureKD:
    """"auto": mse on feature maps, cosine on hidden vectors."""
    if pair.loss != "auto":
        return pair
    try:
        rank = len(teacher_model.get_layer(pair.teacher_layer).output.shape)
    except ValueError:
        raise TinykdError(f"feature KD: the teacher has no layer {pair.teacher_layer!r}") from None
    return FeatureKD(pair.teacher_layer, pair.student_layer,
                     "mse" if rank == 4 else "cosine_similarity", pair.weight)


def distill_student(config: StudentConfig, dataset: Dataset, teacher_paths: list[Path],
                    out_dir: Path, seed: int = 0, kd: bool = True) -> Path:
    """Train the student with KD from the teachers (or on labels alone when kd is False).

    Writes `student.keras` + `student_history.json` (or `student_nokd.*` without KD) into out_dir.
    """
    keras.utils.set_random_seed(seed)
    student = build_model(config.architecture, dataset.input_shape, dataset.num_classes, config.width, config.depth)
    stem = RunLayout.student_stem(kd)
    what = f"with KD from {len(teacher_paths)} teacher(s)" if kd else "on labels alone (no KD)"
    log.info(f"training student {config.architecture} ({student.count_params():,} parameters) "
             f"{what} for {config.epochs} epochs")
    if not kd:
        history = train_classifier(student, dataset, config.epochs, config.batch_size,
                                   config.learning_rate, seed=seed, augment=config.augment)
    else:
        teachers = [load_teacher(p) for p in teacher_paths]
        if not teachers:
            raise TinykdError("distillation needs at least one teacher")
        live = config.augment or bool(config.features)
        history = (_distill_live if live else _distill_cached)(config, dataset, student, teachers, seed)
        history.update(alpha=config.alpha, temperature=config.temperature,
                       teachers=[str(t.path) for t in teachers], teacher_logits="live" if live else "cached")
    history.update(architecture=config.architecture, parameters=int(student.count_params()), kd=kd)
    return save_model(student, history, Path(out_dir), stem)


def _optimizer(config: StudentConfig, dataset: Dataset):
    return adam(config.learning_rate, config.epochs, steps_per_epoch(len(dataset.x_train), config.batch_size))


def cached_distiller(student, num_classes: int, alpha: float, temperature: float, optimizer="adam"):
    """A Distiller fed ((images, teacher_logits), labels): its teacher is an identity on the cached
    logits and its student the real student applied to the images."""
    image = keras.Input(tuple(student.input_shape[1:]), name="image")
    cached = keras.Input((num_classes,), name="teacher_logits")
    teacher = keras.Model([image, cached], cached, name="cached_teacher")
    wrapped = keras.Model([image, cached], student(image), name="student_on_images")
    return make_distiller(teacher, wrapped, alpha, temperature, optimizer=optimizer)


def _distill_cached(config, dataset, student, teachers, seed):
    """KD on teacher logits computed once per image and reused every epoch."""
    log.info("computing the teachers' logits once for all training images")
    train_logits = ensemble_logits(teachers, dataset.x_train, dataset.num_classes)
    val_logits = ensemble_logits(teachers, dataset.x_val, dataset.num_classes)
    return distill_on_logits(config, dataset, student, train_logits, val_logits, seed)


def distill_on_logits(config: StudentConfig, dataset: Dataset, student, train_logits: np.ndarray,
                      val_logits: np.ndarray, seed: int = 0) -> dict:
    """KD on given teacher logits, one row per training and validation image (`tinykd tune` computes them
    once for a whole search); returns the history."""
    distiller = cached_distiller(student, dataset.num_classes, config.alpha, config.temperature,
                                 _optimizer(config, dataset))
    train = make_batches(dataset.x_train, dataset.y_train, dataset.num_classes, config.batch_size,
                         seed=seed, extra=train_logits)
    val = make_batches(dataset.x_val, dataset.y_val, dataset.num_classes, 512, shuffle=False, extra=val_logits)
    return fit(distiller, student, train, val, config.epochs)


def _distill_live(config, dataset, student, teachers, seed):
    """KD with the teachers inside each step: needed for augmentation and for feature KD."""
    if config.features and len(teachers) > 1:
        raise TinykdError("feature KD takes exactly one teacher (layer names refer to it)")
    onnx = [t for t in teachers if isinstance(t, OnnxTeacher)]
    if onnx and config.features:
        raise TinykdError(f"{onnx[0].path}: feature KD needs a Keras teacher (its layers are named); "
                          "an ONNX teacher gives logits only")
    if onnx:  # a wrong input or output shape fails here, with the file named, not inside a training step
        ensemble_logits(onnx, dataset.x_train[:2], dataset.num_classes)
    models = [t.keras_model(dataset.input_shape, dataset.num_classes) for t in teachers]
    if len(models) == 1:
        teacher = models[0]
    else:
        image = keras.Input(dataset.input_shape, name="image")
        teacher = keras.Model(image, keras.layers.Average()([m(image) for m in models]), name="teacher_ensemble")
    features = [_default_feature_loss(pair, teacher) for pair in config.features]
    try:
        distiller = make_distiller(teacher, student, config.alpha, config.temperature, features,
                                   optimizer=_optimizer(config, dataset))
    except ValueError as exc:
        raise TinykdError(f"distillation setup: {exc}") from None
    train = make_batches(dataset.x_train, dataset.y_train, dataset.num_classes, config.batch_size,
                         augment=config.augment, seed=seed)
    val = make_batches(dataset.x_val, dataset.y_val, dataset.num_classes, 512, shuffle=False)
    return fit(distiller, student, train, val, config.epochs)
