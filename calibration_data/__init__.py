"""Calibration sets for INT8 quantization, in each model's own preprocessing."""
from calibration_data.calibration import (
    CalibrationSet,
    build_calibration_set,
    calibration_images,
    default_calibration_dir,
)
from calibration_data.images import list_images, read_image

__all__ = ["CalibrationSet", "build_calibration_set", "calibration_images", "default_calibration_dir", "list_images",
           "read_image"]
