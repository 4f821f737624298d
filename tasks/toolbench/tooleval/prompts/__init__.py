"""ToolEval's prompt templates as data (see the YAML files' headers for their source)."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROMPTS_DIR = Path(__file__).resolve().parent
REASON_PROPERTY = {"type": "string", "description": "explain your answer."}


@dataclass(frozen=True)
class FunctionPrompt:
    """One ToolEval function: the schema the judge must call and the user message asking it."""

    name: str
    description: str
    parameters: dict[str, Any]
    template: str
    sha256: str

    def schema(self, with_reason: bool = True) -> dict[str, Any]:
        """The function schema as ToolEval sends it: with ``return_reason`` a required
        ``reason`` string is added (``function_call(..., return_reason=True)``)."""
        parameters = copy.deepcopy(self.parameters)
        if with_reason:
            parameters.setdefault("required", []).append("reason")
            parameters.setdefault("properties", {})["reason"] = dict(REASON_PROPERTY)
        return {"name": self.name, "description": self.description, "parameters": parameters}

    def render(self, **fields: str) -> str:
        return self.template.format(**fields)


@dataclass(frozen=True)
class PromptSet:
    name: str
    request: dict[str, Any]
    functions: dict[str, FunctionPrompt]


def load_prompts(name_or_path: str = "tooleval_default") -> PromptSet:
    """A prompt file by name (``prompts/<name>.yaml``) or path; the templates' digests are checked."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROMPTS_DIR / f"{name_or_path}.yaml"
    data = yaml.safe_load(path.read_text())
    functions = {}
    for fname, spec in data["functions"].items():
        prompt = FunctionPrompt(name=fname, description=spec["description"], parameters=spec["parameters"],
                                template=spec["template"],
                                sha256=spec.get("sha256", ""))
        digest = hashlib.sha256(prompt.template.encode()).hexdigest()
        if prompt.sha256 and digest != prompt.sha256:
            raise ValueError(f"{path}: functions.{fname}.template does not match its sha256 "
                             f"({digest[:12]} != {prompt.sha256[:12]}); the wording must stay ToolEval's")
        functions[fname] = prompt
    return PromptSet(name=str(data.get("name", path.stem)), request=dict(data.get("request", {})), functions=functions)
