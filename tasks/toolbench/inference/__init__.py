"""ReAct (CoT@n) and DFSDT over the virtual API server, many queries at once on Ray.

``search.py`` (settings, one step -> tree nodes), ``dfsdt.py``, ``react.py``: each query's
search is a generator that yields LLM and API calls; ``driver.py`` batches them across
queries; ``policy.py`` (+ ``hf_policy.py``, ``openai_policy.py``) answer the LLM calls;
``runner.py`` (:func:`run_evaluation`) runs a query file over a Ray cluster, resumably, and
writes ToolBench's answer files. See docs/toolbench.md.
"""
