"""Exporting reward nets out of Python: :func:`export_onnx` and :class:`ExportError`.

A stable import path; the code lives in :mod:`rewardnets.files.onnx_export`.
Exporting needs the ``export`` extra (``pip install 'rewardnets[export]'``).
"""

from rewardnets.files.onnx_export import REWARD_TYPES, ExportError, describe_inputs, export_onnx

__all__ = ["REWARD_TYPES", "ExportError", "describe_inputs", "export_onnx"]
