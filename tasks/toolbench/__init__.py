"""ToolBench (ToolLLM) data, rendering and evaluation pieces for SFT and DFSDT.

Data side (this package's top level; see docs/toolbench.md "## SFT data"):

- :mod:`.formats` — typed readers for every ToolBench / StableToolBench file
- :mod:`.names` — ToolBench's name standardisation (``function_name``)
- :mod:`.schema` — API record -> OpenAI function schema, ``FINISH_FUNCTION``
- :mod:`.tooldocs` — tool documents rebuilt from StableToolBench's queries

Sub-packages ``server``, ``inference``, ``tooleval`` and ``retriever`` (the virtual API
server, DFSDT search, ToolEval, the API retriever) build on these.

Nothing heavy is imported here: the sub-packages import the modules they need.
"""
