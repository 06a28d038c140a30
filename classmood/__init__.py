"""classmood: apparent facial expressions in online-class video, aggregated into class mood."""

import os

# Decoder chatter ("moov atom not found", ...) would follow our one-line errors on stderr; the
# errors themselves say what is wrong. Set before any OpenCV import; users can override.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

__version__ = "0.1.0"
