"""The top-level package: lazy exports that editors and `dir()` can see."""


def test_lazy_exports_are_listed_and_resolve_without_importing_torch_first():
    import subprocess
    import sys

    code = (
        "import sys, poseface, poseface.faces; assert 'torch' not in sys.modules; "
        "assert 'Restorer' in dir(poseface) and 'detect_faces' in dir(poseface.faces); "
        "[getattr(poseface, n) for n in poseface.__all__]; [getattr(poseface.faces, n) for n in poseface.faces.__all__]; "
        "assert set(poseface.__all__) == {'__version__', *poseface._EXPORTS}; "
        "assert set(poseface.faces.__all__) == set(poseface.faces._EXPORTS); print('ok')"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "ok"
    )
