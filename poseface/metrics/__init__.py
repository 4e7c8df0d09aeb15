"""Evaluation metrics of the paper's tables (PSNR, SSIM, LPIPS, FID, NIQE) plus identity (IDS) and
landmark (LMD) distances, folder evaluation with reports, and the speed benchmark.

Images are uint8 RGB numpy arrays (H, W, 3) or batches (N, H, W, 3) unless stated.
"""

from poseface.metrics.fid import FIDInceptionV3, build_inception, frechet_distance, load_statistics, save_statistics
from poseface.metrics.folders import EvaluationResult, evaluate_folder, pair_folders
from poseface.metrics.identity import face_distances, identity_distance, landmark_distance
from poseface.metrics.lpips import LPIPS, build_lpips, lpips_distance
from poseface.metrics.niqe import niqe
from poseface.metrics.psnr_ssim import psnr, rgb_to_y, ssim
from poseface.metrics.suite import MetricOptions, build_metrics

__all__ = [
    "EvaluationResult",
    "FIDInceptionV3",
    "LPIPS",
    "MetricOptions",
    "build_inception",
    "build_lpips",
    "build_metrics",
    "evaluate_folder",
    "face_distances",
    "frechet_distance",
    "identity_distance",
    "landmark_distance",
    "load_statistics",
    "lpips_distance",
    "niqe",
    "pair_folders",
    "psnr",
    "rgb_to_y",
    "save_statistics",
    "ssim",
]
