"""RunLayout: the artifact names existing runs have on disk, spelled in one place."""

from pathlib import Path

import pytest

from tinykd.core.artifacts import RunLayout, evaluation_file
from tinykd.core.config import PipelineConfig


def test_names_of_a_runs_artifacts():
    layout = RunLayout.for_name("quick", "runs")
    run = Path("runs/quick")
    assert layout.folder == run and layout.name == "quick" and layout.runs_dir == Path("runs")
    assert {
        "teacher": layout.teacher, "dataset": layout.dataset, "summary": layout.summary,
        "count_cv": layout.count_cv, "report_html": layout.report_html, "report_md": layout.report_md,
        "student": layout.student(), "student_nokd": layout.student(kd=False),
        "student_int8": layout.student_int8(), "student_nokd_int8": layout.student_int8(kd=False),
    } == {
        "teacher": run / "teacher.keras", "dataset": run / "dataset.json", "summary": run / "summary.json",
        "count_cv": run / "count_cv.json", "report_html": run / "report.html", "report_md": run / "report.md",
        "student": run / "student.keras", "student_nokd": run / "student_nokd.keras",
        "student_int8": run / "student_int8.tflite", "student_nokd_int8": run / "student_nokd_int8.tflite",
    }


def test_names_of_a_models_files_by_stem():
    layout = RunLayout(Path("runs/quick"))
    run = layout.folder
    assert layout.keras("teacher") == run / "teacher.keras"
    assert layout.history("student") == run / "student_history.json"
    assert layout.int8("student") == run / "student_int8.tflite"
    assert layout.float32("student") == run / "student_float32.tflite"
    assert layout.quantize_summary("student_nokd") == run / "student_nokd_quantize.json"
    assert layout.evaluation("student_int8") == run / "eval" / "student_int8"
    assert layout.evaluation_file("teacher", "summary") == run / "eval/teacher/summary.json"
    assert layout.evaluation_file("teacher", "confusion") == run / "eval/teacher/confusion.png"
    assert evaluation_file("out", "curves") == Path("out/curves.png")


@pytest.mark.parametrize("model", ["teacher.keras", "student.keras", "student_nokd_int8.tflite"])
def test_of_model_and_for_name_agree(model, tmp_path):
    layout = RunLayout.for_name("quick", tmp_path / "runs")
    path = layout.folder / model
    assert RunLayout.of_model(path) == layout
    assert RunLayout.of_model(str(path)) == layout, "a string path is the same run"
    assert RunLayout.for_name(RunLayout.of_model(path).name, RunLayout.of_model(path).runs_dir) == layout


def test_the_pipeline_config_gives_its_runs_layout():
    config = PipelineConfig(name="people", runs_dir="elsewhere")
    assert config.layout == RunLayout.for_name("people", "elsewhere")
    assert config.layout.student_int8() == Path("elsewhere/people/student_int8.tflite")
    assert RunLayout.of_model(config.layout.student_int8()) == config.layout


def test_the_layout_is_frozen():
    layout = RunLayout.for_name("quick")
    with pytest.raises(AttributeError):
        layout.folder = Path("other")
