"""From pixels to faces: detection, FER-like crops and the ``Detections`` container."""

from classmood.containers import Detections
from classmood.vision.crops import face_crops, square_boxes
from classmood.vision.detectors import DEFAULT_DETECTOR, create_detector

__all__ = ["DEFAULT_DETECTOR", "Detections", "create_detector", "face_crops", "square_boxes"]
