"""Tasks: one module (or package) each, with data, prompt, tools and reward."""
