"""The task registry: every built-in synthetic task by name, with the paper's defaults."""

from __future__ import annotations

from .arithmetic import ADDITION, ADDITION_HINTS, ADDITION_HINTS_STUDY, ADDITION_STUDY, make_addition
from .base import InputSpace, ModelDefaults, TaskSpec
from .induction import INDUCTION
from .nlp import NLP_TASKS, NlpTask
from .rasp import DOUBLE_HIST, DYCK1, DYCK1_WALKS, DYCK2, DYCK2_WALKS, HIST, MOST_FREQ, REVERSE, SORT

__all__ = ["NLP_TASKS", "TASKS", "InputSpace", "ModelDefaults", "NlpTask", "TaskSpec", "UnknownTaskError", "get_task",
           "make_addition"]

TASKS: dict[str, TaskSpec] = {
    task.name: task
    for task in (
        REVERSE,
        HIST,
        DOUBLE_HIST,
        SORT,
        MOST_FREQ,
        DYCK1,
        DYCK2,
        DYCK1_WALKS,
        DYCK2_WALKS,
        INDUCTION,
        ADDITION,
        ADDITION_HINTS,
        ADDITION_STUDY,
        ADDITION_HINTS_STUDY,
    )
}


class UnknownTaskError(ValueError):
    """A task name that is not in the registry."""


def get_task(name: str) -> TaskSpec | NlpTask:
    """The registered task called `name`; raises UnknownTaskError listing the known names."""
    if name in NLP_TASKS:
        return NLP_TASKS[name]
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join([*TASKS, *NLP_TASKS])}") from None
