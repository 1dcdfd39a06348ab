"""Strategy generation: plain English in, a validated strategy out.

One interface (:class:`Generator`), two implementations: the offline, deterministic
generator (the embedded default) and Gemini through ``google-genai`` (production).
"""

from .base import GeneratedStrategy, GenerationFailed, GenerationRefused, Generator, Parameter  # noqa: F401
