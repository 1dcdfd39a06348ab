"""Contract tests: the declaration (infra/stack.toml), the code, the Terraform, the deploy
plan and the API description agree. Nothing here touches Google Cloud."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # ``infra`` is a top-level package of the repository, not installed
    sys.path.insert(0, str(ROOT))
