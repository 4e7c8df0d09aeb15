"""Ctrl-C during training: stop at the end of the step, where the state is whole and can be checkpointed."""

from __future__ import annotations

import logging
import signal
import threading

logger = logging.getLogger("poseface.train")


class DeferredInterrupt:
    """The first Ctrl-C only asks the run to stop after the current step (and its checkpoint); a second one
    interrupts at once, without a checkpoint. A no-op outside the main thread (signals cannot be set there)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("Ctrl-C: stopping after this step (press again to stop at once, without a checkpoint)")

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
