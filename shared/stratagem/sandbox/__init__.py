"""The sandbox: validation, restricted compilation and isolated execution of strategies.

Defence in depth, outermost last:

1. :mod:`.validator` - an AST allow-list with line/column findings (what users see first).
2. :mod:`.policy` - RestrictedPython compilation with our transformer (guards on every
   attribute, item, write and import; augmented assignment on items supported safely).
3. :mod:`.guards` - the runtime guards and curated modules the compiled code gets.
4. :mod:`.worker` / :mod:`.pool` - each run in a fresh process forked from a clean, warm
   zygote: empty environment, rlimits (memory, CPU, file size), seccomp (no files, no
   network, no processes), per-call wall-clock limit, plain JSON out.
"""

from .validator import Finding, validate  # noqa: F401
