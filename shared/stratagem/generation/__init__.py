"""Strategy generation: plain English in, a validated strategy out.

One interface (:class:`Generator`), two implementations: the offline, deterministic
generator (the embedded default) and Gemini through ``google-genai`` (production).
"""

from .base import GeneratedStrategy, GenerationFailed, GenerationRefused, Generator, Parameter  # noqa: F401


def make_generator(settings) -> "Generator":  # noqa: F405 - settings: stratagem.settings.Settings
    """The configured generator: the offline one (default, no keys) or Gemini."""
    if settings.generator == "gemini":
        from .gemini import GeminiGenerator

        return GeminiGenerator.from_settings(settings.gemini)
    from .offline import OfflineGenerator

    return OfflineGenerator()
