"""The task API: what a task supplies, shared parts of tasks, and the registry."""

from orchestrator.task.base import Demonstration, Problem, Source, Task, problem_meta
from orchestrator.task.registry import build_task, task_classes

__all__ = ["Demonstration", "Problem", "Source", "Task", "build_task", "problem_meta", "task_classes"]
