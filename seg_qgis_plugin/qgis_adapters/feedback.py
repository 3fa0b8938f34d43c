"""QGIS feedback objects as the core's Progress protocol (set_progress, is_canceled)."""
from __future__ import annotations

from typing import Optional


class FeedbackProgress:
    """Adapts a QgsFeedback (QgsProcessingFeedback included) to core.progress.Progress.

    start/end map the core's 0..100 onto a slice of the QGIS bar, so one algorithm can run several
    core steps (e.g. 0..80 segmenting, 80..100 rasterizing) on one bar.
    """

    def __init__(self, feedback, start: float = 0.0, end: float = 100.0):
        self.feedback = feedback
        self.start, self.end = float(start), float(end)

    def set_progress(self, percent: float) -> None:
        if self.feedback is not None:
            self.feedback.setProgress(self.start + (self.end - self.start) * max(0.0, min(float(percent), 100.0)) / 100.0)

    def is_canceled(self) -> bool:
        return self.feedback is not None and self.feedback.isCanceled()

    def slice(self, start: float, end: float) -> "FeedbackProgress":
        """A progress for a sub-step covering start..end percent of this one."""
        span = self.end - self.start
        return FeedbackProgress(self.feedback, self.start + span * start / 100.0, self.start + span * end / 100.0)


def feedback_progress(feedback: Optional[object]) -> FeedbackProgress:
    return FeedbackProgress(feedback)
