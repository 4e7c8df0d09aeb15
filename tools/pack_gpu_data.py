"""Pack curated training faces, the validation split, their landmarks and dlib's face ResNet for a GPU machine.

    python tools/pack_gpu_data.py --keep runs/keep.json --landmarks runs/utkface_landmarks.json [--out gpu-data]

The GPU machine receives a copy of the repository (64 MiB in all) and has no internet and no
`face_recognition_models`, so what training needs travels in one ignored folder (`--out`, added to
.git/info/exclude, never committed):

    faces.tar         every validation-split face, then kept training faces sharpest first (the keep
                      list's order) until `--budget-mib` is reached; each resized to `--size` px
                      (poseface's own resize_to_square) and stored as JPEG `--quality`, under its
                      source name, so `poseface.data.dataset.in_validation_split` splits it as before
    landmarks.json    the landmarks file with every point mapped to the `--size` px image
    dlib_face_recognition_resnet_model_v1.dat   losses.dlib_weights (identity and feature matching)
    manifest.json     counts, sizes and the settings used

The data set is then `--set data.source=gpu-data/faces.tar --set data.landmarks=gpu-data/landmarks.json
--set losses.dlib_weights=gpu-data/dlib_face_recognition_resnet_model_v1.dat` (no keep list: only kept
faces are packed).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from poseface.data.curate import load_keep_list  # noqa: E402
from poseface.data.dataset import in_validation_split  # noqa: E402
from poseface.data.imageops import resize_to_square  # noqa: E402
from poseface.data.landmarks import _source_to_output, load_landmarks  # noqa: E402
from poseface.data.sources import open_source  # noqa: E402
from poseface.errors import PoseFaceError  # noqa: E402
from poseface.faces import dlib_models  # noqa: E402

TAR_OVERHEAD = 1024  # a member's header and padding, at most
LANDMARK_BYTES = 1300  # one face's entry in landmarks.json (68 points at 2 decimals), about


def encode_jpeg(image: np.ndarray, quality: int, label: str) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise PoseFaceError(f"{label}: could not be encoded as JPEG")
    return data.tobytes()


def ordered_names(source_names: list[str], keep_path: Path, val_fraction: float) -> list[str]:
    """Validation-split names first (sorted), then the keep list's training names in its (sharpest-first) order."""
    present = set(source_names)
    val = [n for n in source_names if in_validation_split(n, val_fraction)]
    document = json.loads(keep_path.read_text())
    kept = set(load_keep_list(keep_path))
    ranked = [n for n, _ in document.get("ranking", [])] or sorted(kept)
    train = [n for n in ranked if n in kept and n in present and not in_validation_split(n, val_fraction)]
    if not train:
        raise PoseFaceError(f"{keep_path}: none of its kept names is in the source; was it made from this data set?")
    return val + train


def scaled_entry(entry: dict, size: int) -> dict:
    """A landmarks entry re-expressed on the `size` px image that resize_to_square makes of its source."""
    scaled = {"size": [size, size], **{k: v for k, v in entry.items() if k not in ("size", "points")}}
    if "points" in entry:
        points = _source_to_output(np.asarray(entry["points"], dtype=np.float64), tuple(entry["size"]), size)
        scaled["points"] = np.round(points, 2).tolist()
    return scaled


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    archive.addfile(info, io.BytesIO(data))


def ignore_folder(folder: Path) -> None:
    """Add the folder (relative to the repository) to .git/info/exclude, once."""
    try:
        exclude = Path(
            subprocess.run(
                ["git", "rev-parse", "--path-format=absolute", "--git-path", "info/exclude"],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        print(f"{folder}: not in a git checkout; not added to .git/info/exclude")
        return
    pattern = f"/{folder.resolve().relative_to(REPO.resolve()).as_posix()}/"
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    if pattern not in lines:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text("\n".join([*lines, pattern]) + "\n")


def pack(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve().is_relative_to(REPO.resolve()):
        ignore_folder(out)
    dlib_source = Path(args.dlib_weights) if args.dlib_weights else dlib_models.model_path(dlib_models.FACE_RECOGNITION)
    dlib_copy = out / dlib_models.FACE_RECOGNITION
    shutil.copyfile(dlib_source, dlib_copy)
    budget = int(args.budget_mib * 2**20) - dlib_copy.stat().st_size
    source = open_source(args.source)
    landmarks = load_landmarks(args.landmarks)
    names = ordered_names(source.names, Path(args.keep), args.val_fraction)[: args.limit]
    faces, no_face, used, counts = {}, {}, 0, {"val": 0, "train": 0}
    with tarfile.open(out / "faces.tar", "w", format=tarfile.GNU_FORMAT) as archive:
        for name in names:
            image = source.read_or_skip(source.index_of(name))
            if image is None:
                continue
            data = encode_jpeg(resize_to_square(image, args.size), args.quality, source.label(source.index_of(name)))
            cost = len(data) + TAR_OVERHEAD + LANDMARK_BYTES
            is_val = in_validation_split(name, args.val_fraction)
            if used + cost > budget and not is_val:
                break
            add_member(archive, name, data)
            used += cost
            counts["val" if is_val else "train"] += 1
            if name in landmarks.get("faces", {}):
                faces[name] = scaled_entry(landmarks["faces"][name], args.size)
            elif name in landmarks.get("no_face", {}):
                no_face[name] = scaled_entry(landmarks["no_face"][name], args.size)
    document = {key: landmarks[key] for key in ("format", "version", "predictor") if key in landmarks}
    document.update(source=str(out / "faces.tar"), faces=faces, no_face=no_face, unreadable=[])
    (out / "landmarks.json").write_text(json.dumps(document, separators=(",", ":")))
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file() and p.name != "manifest.json"}
    manifest = {
        "source": str(args.source),
        "keep_list": str(args.keep),
        "size": args.size,
        "jpeg_quality": args.quality,
        "val_fraction": args.val_fraction,
        "faces": counts,
        "with_landmarks": len(faces),
        "bytes": files,
        "total_mib": round(sum(files.values()) / 2**20, 2),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "utkface-faces.tar"))
    parser.add_argument("--keep", required=True, help="keep list from `poseface curate` (its ranking orders the faces)")
    parser.add_argument("--landmarks", required=True, help="landmarks JSON from `poseface landmarks` on --source")
    parser.add_argument("--out", default=str(REPO / "gpu-data"), help="output folder (ignored by git)")
    parser.add_argument("--size", type=int, default=128, help="the model size in px")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality")
    parser.add_argument("--budget-mib", type=float, default=40.0, help="the whole folder, dlib's model included")
    parser.add_argument("--val-fraction", type=float, default=0.02, help="data.val_fraction of the training config")
    parser.add_argument(
        "--dlib-weights", help="dlib_face_recognition_resnet_model_v1.dat (default: face_recognition_models')"
    )
    parser.add_argument("--limit", type=int, help="pack at most this many faces (tiny test packs)")
    args = parser.parse_args()
    try:
        manifest = pack(args)
    except PoseFaceError as exc:
        print(f"pack_gpu_data: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.out}: {manifest['faces']['train']} training + {manifest['faces']['val']} validation faces at "
        f"{args.size} px ({manifest['with_landmarks']} with landmarks), {manifest['total_mib']} MiB in all"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
