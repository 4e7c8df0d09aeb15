"""The model zoo: every pretrained file PoseFace knows, in one registry.

`poseface weights list` prints it, `poseface weights get NAME` fetches one entry into the weights
folder (`--weights-dir`, else `$POSEFACE_HOME`, else `$TORCH_HOME/poseface`, else
`~/.cache/torch/poseface`), and `--weights NAME` in `restore` / `evaluate` resolves a name to that
local file. The modules that use a file take its `WeightsSpec` from here (`spec("vgg19")`), so a URL
or checksum is written down once. The README's "Models" table is `markdown_table()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from poseface.errors import PoseFaceError
from poseface.weights import WeightsSpec, cache_dir, verify_local

ASSETS = Path(__file__).resolve().parent / "assets"
GPEN_RELEASE = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models"  # links in yangxy/GPEN's README
GPEN_LICENCE = "GPEN: academic and non-commercial use only"
TORCHVISION_LICENCE = "BSD-3-Clause (torchvision)"
# sha256 of poseface/assets/poseface-small-utkface.safetensors as released; `poseface export` prints it for a new model
BUNDLED_SHA256 = "e66a566c77aa47fc140d66036a7db6f243d47109823ffe9609b91d12ebf3c7f5"


@dataclass(frozen=True)
class ZooEntry:
    """One known pretrained file: what it is for and where it comes from, around its `WeightsSpec`."""

    name: str  # the zoo name users type: `poseface weights get NAME`, `--weights NAME`
    spec: WeightsSpec  # file name, URL, checksums
    purpose: str  # what PoseFace uses it for
    licence: str  # the publisher's terms, as they state them
    size: str = ""  # download size as the publisher states it; "" = not stated
    source: str = ""  # page that links the file, where that is not `spec.url` itself
    packaged: bool = False  # ships inside the package (poseface/assets), nothing to download

    def local_path(self, weights_dir: Path | None = None) -> Path:
        """Where the file lives (or will live) on this machine."""
        return ASSETS / self.spec.name if self.packaged else (weights_dir or cache_dir()) / self.spec.name

    def where_from(self) -> str:
        if self.packaged:
            return f"ships with poseface (poseface/assets/{self.spec.name})"
        return self.spec.url or self.source


def _gpen(name: str, purpose: str) -> ZooEntry:
    what = f"GPEN's {name}.pth"
    return ZooEntry(
        name,
        WeightsSpec(f"{name}.pth", f"{GPEN_RELEASE}/{name}.pth", "", what),
        purpose,
        GPEN_LICENCE,
        source="https://github.com/yangxy/GPEN#usage",
    )


ZOO: tuple[ZooEntry, ...] = (
    ZooEntry(
        "poseface-small-utkface",
        WeightsSpec("poseface-small-utkface.safetensors", "", BUNDLED_SHA256, "the bundled model"),
        "restore (default model): small 128 px CPU-trained demonstration model",
        "non-commercial research (trained on UTKFace); see poseface/assets/poseface-small-utkface.md",
        packaged=True,
    ),
    _gpen("GPEN-BFR-512", "restore / train init (--init-gpen): GPEN's 512 px generator"),
    _gpen("GPEN-BFR-512-D", "train init (--init-gpen-d): GPEN-BFR-512's discriminator"),
    _gpen("GPEN-BFR-256", "restore / train init (--init-gpen): GPEN's 256 px generator"),
    _gpen("GPEN-BFR-256-D", "train init (--init-gpen-d): GPEN-BFR-256's discriminator"),
    ZooEntry(
        "vgg19",
        WeightsSpec(
            "vgg19-dcbb9e9d.pth",
            "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            "",
            "VGG19 ImageNet weights (torchvision)",
            "set losses.feature_matching: 0",
            hash_prefix="dcbb9e9d",
        ),
        "loss: feature matching (eq. 14), losses.vgg_weights",
        TORCHVISION_LICENCE,
        size="548.1 MB",
    ),
    ZooEntry(
        "arcface-ir-se50",
        WeightsSpec(
            "model_ir_se50.pth",
            f"{GPEN_RELEASE}/model_ir_se50.pth",
            "",
            "ArcFace IR-SE50 weights (GPEN's model_ir_se50.pth, linked from the yangxy/GPEN README)",
            "set losses.face_preserving: 0 (or losses.arcface: resnet18)",
        ),
        "loss: face preserving (eq. 15), losses.arcface: ir_se50; evaluate --arcface-weights",
        f"from GPEN's release ({GPEN_LICENCE})",
        source="https://github.com/yangxy/GPEN#usage",
    ),
    ZooEntry(
        "arcface-resnet18",
        WeightsSpec(
            "arcface_resnet18.pth",
            "https://github.com/TencentARC/GFPGAN/releases/download/v0.1.0/arcface_resnet18.pth",
            "",
            "ArcFace ResNet18 weights (GFPGAN's arcface_resnet18.pth)",
            "set losses.face_preserving: 0",
        ),
        "loss: face preserving, losses.arcface: resnet18; evaluate --arcface-weights",
        "Apache-2.0 (GFPGAN)",
    ),
    ZooEntry(
        "lpips-alex",
        WeightsSpec(
            "alexnet-owt-7be5be79.pth",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "",
            "AlexNet ImageNet weights (torchvision) for LPIPS",
            "leave lpips out of --metrics",
            hash_prefix="7be5be79",
        ),
        "metric: LPIPS backbone (--lpips-net alex; the linear heads ship in poseface/assets/metrics)",
        TORCHVISION_LICENCE,
    ),
    ZooEntry(
        "lpips-vgg16",
        WeightsSpec(
            "vgg16-397923af.pth",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            "",
            "VGG16 ImageNet weights (torchvision) for LPIPS",
            "leave lpips out of --metrics",
            hash_prefix="397923af",
        ),
        "metric: LPIPS backbone (--lpips-net vgg)",
        TORCHVISION_LICENCE,
    ),
    ZooEntry(
        "fid-inception",
        WeightsSpec(
            "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            "",
            "FID Inception-v3 weights (pytorch-fid)",
            "leave fid out of --metrics",
            hash_prefix="6726825d",
        ),
        "metric: FID feature extractor (--fid-weights)",
        "Apache-2.0 (pytorch-fid)",
    ),
)


def names() -> list[str]:
    return [entry.name for entry in ZOO]


def find(name: str) -> ZooEntry | None:
    """The entry called `name` (case-insensitive), else None."""
    wanted = name.lower()
    return next((entry for entry in ZOO if entry.name.lower() == wanted), None)


def entry(name: str) -> ZooEntry:
    """The entry called `name`, else a one-line error listing every name."""
    found = find(name)
    if found is None:
        raise PoseFaceError(f"{name}: not a known model; known: {', '.join(names())} (`poseface weights list`)")
    return found


def spec(name: str) -> WeightsSpec:
    return entry(name).spec


def missing_message(item: ZooEntry, dest: Path) -> str:
    """One line: how to get `item` to `dest` (the command, or the URL to fetch by hand)."""
    if item.spec.url:
        return (
            f"{dest}: {item.name} is not downloaded; run `poseface weights get {item.name}` or fetch {item.spec.url} by hand and "
            "put it there"
        )
    return f"{dest}: {item.name} is not here; get it from {item.source} and put it there"


def weights_file(value: str | os.PathLike, weights_dir: Path | None = None) -> Path:
    """A `--weights` value as a file: an existing path as it is, a zoo name as its checked local file.

    A zoo name that is not downloaded is a one-line error with the command and the URL; anything
    else is returned as a path for the caller's own "no such file" message.
    """
    path = Path(value).expanduser()
    found = None if path.exists() else find(str(value))
    if found is None:
        return path
    local = found.local_path(weights_dir)
    if not local.is_file():
        raise PoseFaceError(missing_message(found, local))
    verify_local(local, found.spec)
    return local


def size_of(item: ZooEntry, weights_dir: Path | None = None, local: bool = True) -> str:
    """The local file's size where it is here (or packaged), else the publisher's, else '?'."""
    path = item.local_path(weights_dir)
    if (local or item.packaged) and path.is_file():
        return f"{path.stat().st_size / 1e6:.1f} MB"
    return item.size or "?"


def checksum_cell(item: ZooEntry) -> str:
    spec_ = item.spec
    if spec_.sha256:
        return spec_.sha256
    if spec_.hash_prefix:
        return f"{spec_.hash_prefix} (prefix)"
    return "unverified"


def rows(weights_dir: Path | None = None, with_local: bool = True) -> list[list[str]]:
    """The table `weights list` prints: one row per entry."""
    header = ["name", "for", "source", "size", "licence", "sha256"] + (["local"] if with_local else [])
    table = [header]
    for item in ZOO:
        row = [
            item.name,
            item.purpose,
            item.where_from(),
            size_of(item, weights_dir, with_local),
            item.licence,
            checksum_cell(item),
        ]
        if with_local:
            local = item.local_path(weights_dir)
            row.append(str(local) if local.is_file() else "no")
        table.append(row)
    return table


def markdown_table() -> str:
    """The README's "Models" table (no machine-specific columns)."""
    table = rows(with_local=False)
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in table[1:]]
    return "\n".join(lines)
