"""Every Seg algorithm runs in the background (no FlagNoThreading), offers the one shared BACKEND
enum with classic (no downloads) first and default, and runs in a Processing background task:
twice in a row (pyproj crashed from a pool thread's second task on), progress reaching the task."""
import pytest

from seg_qgis_plugin.demo.series import write_series

TASK_LIMIT_MS = 120000


def seg_algorithms():
    from qgis.core import QgsApplication

    return [alg for alg in QgsApplication.processingRegistry().algorithms() if alg.provider().id() == "seg"]


def test_no_algorithm_asks_for_the_main_thread(processing_registered):
    from qgis.core import QgsProcessingAlgorithm

    algorithms = seg_algorithms()
    assert len(algorithms) >= 13
    for alg in algorithms:
        assert not alg.flags() & QgsProcessingAlgorithm.Flag.FlagNoThreading, alg.id()


def test_every_backend_enum_is_the_shared_one_with_classic_by_default(processing_registered):
    from seg_qgis_plugin.processing.algorithms.base import BACKENDS

    assert BACKENDS[0] == "classic"
    with_backend = []
    for alg in seg_algorithms():
        definition = alg.parameterDefinition("BACKEND")
        if definition is None:
            continue
        with_backend.append(alg.id())
        assert definition.options() == list(BACKENDS), alg.id()
        assert definition.defaultValue() in (0, "0"), alg.id()
    assert {"seg:prelabel", "seg:propagatelabels"} <= set(with_backend)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return write_series(str(tmp_path_factory.mktemp("threads_ts")))


def test_driftmap_runs_in_background_tasks_twice(processing_registered, series, tmp_path):
    for run in (1, 2):  # the second task in a fresh pool thread is where pyproj used to crash
        outcome, steps = run_in_background_task("seg:driftmap", {"RASTERS": list(series.rasters[:2]), "TILE": 100,
                                                                 "OUTPUT": str(tmp_path / f"drift{run}.gpkg")})
        assert outcome.get("ok"), f"run {run}: {outcome}"
        assert outcome["results"]["FLAGGED"] >= 0 and steps and max(steps) > 0


def test_an_error_in_the_background_is_one_sentence(processing_registered, series, tmp_path):
    outcome, _ = run_in_background_task("seg:driftmap", {"RASTERS": [series.rasters[0]], "OUTPUT": str(tmp_path / "one.gpkg")})
    assert outcome and outcome["ok"] is False


def run_in_background_task(algorithm_id, parameters):
    """processing's own background task (QgsProcessingAlgRunnerTask), waited for in an event loop."""
    from qgis.core import (
        QgsApplication,
        QgsProcessingAlgRunnerTask,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProject,
    )
    from qgis.PyQt.QtCore import QEventLoop, QTimer

    alg = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    context.setProject(QgsProject.instance())
    steps = []
    feedback.progressChanged.connect(steps.append)
    task = QgsProcessingAlgRunnerTask(alg, parameters, context, feedback)
    outcome = {}
    loop = QEventLoop()

    def done(ok, results):
        outcome.update(ok=ok, results=results)
        loop.quit()

    task.executed.connect(done)
    QgsApplication.taskManager().addTask(task)
    QTimer.singleShot(TASK_LIMIT_MS, loop.quit)
    if not outcome:
        loop.exec_()
    return outcome, steps
