"""classmood: apparent facial expressions in online-class video, aggregated into class mood."""

import os

# Decoder chatter ("moov atom not found", ...) would follow our one-line errors on stderr; the
# errors themselves say what is wrong. Set before any OpenCV import; users can override.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# ONNX Runtime's telemetry writes a device id and an event queue (interpreter path, OS, CPU model) to
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ as soon as it is imported; this variable, read at
# import, stops that. Forced, not a default: nothing is written that the user did not ask for.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"

__all__ = ["analyze", "stream"]


def __getattr__(name: str) -> object:
    """``classmood.analyze(path)`` and ``classmood.stream(source)`` without importing OpenCV/ORT up front."""
    if name == "analyze":
        from classmood.analysis.analyze import analyze

        return analyze
    if name == "stream":
        from classmood.pipeline import stream

        return stream
    raise AttributeError(f"module 'classmood' has no attribute {name!r}")
